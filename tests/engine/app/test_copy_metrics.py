"""Copy latency and slippage in the metrics (S10.5), observed from the records' listeners on the
real engine: from a leader fill's arrival to each copy order sent and to its first fill, and each
copy fill's slippage in ticks against the leader's price, adverse positive."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from engine.app.metrics import EngineMetrics
from tests.conftest import ES, MakeEngine, Rig


def samples(metrics: EngineMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def observed(rig: Rig) -> EngineMetrics:
    metrics = EngineMetrics(rig.clock.monotonic_ns)
    rig.engine.records.listeners.append(metrics.record)
    metrics.watch(rig.engine)
    return metrics


def test_s10_5_copy_latency_and_slippage_are_observed(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(tmp_path)
    metrics = observed(rig)
    rig.price(ES, Decimal("5000.25"))
    rig.broker.hold("f1")
    rig.trade("LEAD", 2)
    rig.advance(0.3)
    rig.price(ES, Decimal("5000.75"))  # F1's held copy fills 2 ticks worse, 0.3 s later
    rig.broker.release("f1")
    rig.idle()
    rig.trade("LEAD", -2)  # both copies sell at the leader's price: 0 ticks
    got = samples(metrics)
    latency = "mimik_copy_latency_seconds"
    assert got[(f"{latency}_count", (("until", "order_sent"),))] == 4
    assert got[(f"{latency}_count", (("until", "fill_received"),))] == 4
    assert got[(f"{latency}_sum", (("until", "order_sent"),))] == 0  # the clock stood still
    assert abs(got[(f"{latency}_sum", (("until", "fill_received"),))] - 0.3) < 1e-6
    assert got[(f"{latency}_bucket", (("le", "0.25"), ("until", "fill_received")))] == 3
    slip = "mimik_copy_slippage_ticks"
    assert got[(f"{slip}_count", ())] == 4  # (no _sum: its buckets go below zero)
    assert got[(f"{slip}_bucket", (("le", "-0.5"),))] == 0
    assert got[(f"{slip}_bucket", (("le", "0.0"),))] == 3
    assert got[(f"{slip}_bucket", (("le", "1.0"),))] == 3
    assert got[(f"{slip}_bucket", (("le", "2.0"),))] == 4


def test_s10_5_fills_of_other_orders_are_not_copies(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(tmp_path)
    metrics = observed(rig)
    rig.trade("F1", 1)  # the owner's own trade
    rig.engine.flatten_account("F1")  # a liquidation
    rig.idle()
    got = samples(metrics)
    assert got.get(("mimik_copy_slippage_ticks_count", ()), 0) == 0
    assert got.get(("mimik_copy_latency_seconds_count", (("until", "fill_received"),)), 0) == 0
