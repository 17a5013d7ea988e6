"""Prometheus metrics, observed from outside the actors: fan-out latency, orders by outcome,
rejections by reason (S5.4, S5.5), breaches (S5.3), connection states, restarts, mailbox depth."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from brokers.base import Fill
from engine.app.metrics import EngineMetrics, breach_reason, rejection_reason
from tests.conftest import ES, START, MakeEngine, Rig


def _samples(metrics: EngineMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(metrics: EngineMetrics, name: str, **labels: str) -> float:
    return _samples(metrics).get((name, tuple(sorted(labels.items()))), 0.0)


def _observed(rig: Rig) -> EngineMetrics:
    metrics = EngineMetrics(rig.clock.monotonic_ns)
    rig.engine.records.listeners.append(metrics.record)
    metrics.watch(rig.engine)
    return metrics


def test_labels_are_a_small_fixed_set() -> None:
    assert rejection_reason("order +1 ESZ6 rejected: Account is LOCKED — no trades allowed.") == (
        "locked"
    )
    assert (
        rejection_reason(
            "order +1 ESZ6 rejected: Account is in LIQUIDATE_ONLY mode — only closing trades"
            " allowed."
        )
        == "liquidate_only"
    )
    assert rejection_reason("broker rejected copy order +1 ESZ6: no quote") == "broker"
    assert breach_reason("daily loss limit breached (risk_breach_daily): ...") == (
        "risk_breach_daily"
    )


def test_orders_by_outcome(tmp_path: Path, make_engine: MakeEngine) -> None:
    rig = make_engine(tmp_path, "threads")
    metrics = _observed(rig)
    fill = Fill("lead", "LEAD", "X1", "B1", None, ES, 1, Decimal(5000), START, True)
    metrics.broker_event(fill)  # what the live run's ObservedBroker shows it
    rig.trade("LEAD", 1)
    assert _value(metrics, "mimik_orders_total", kind="copy", outcome="sent") == 2
    assert _value(metrics, "mimik_orders_total", kind="copy", outcome="filled") == 2
    assert _value(metrics, "mimik_orders_in_flight") == 0


def test_fanout_histogram(tmp_path: Path, make_engine: MakeEngine) -> None:
    rig = make_engine(tmp_path, "threads")
    metrics = _observed(rig)
    original = rig.broker.session

    # Observe the broker's events as the live run does (ObservedBroker), for this rig's broker.
    def observed(connection, accounts, sink):  # type: ignore[no-untyped-def]
        def both(event):  # type: ignore[no-untyped-def]
            metrics.broker_event(event)
            sink(event)

        return original(connection, accounts, both)

    rig.broker.session = observed  # type: ignore[method-assign]
    rig.restart()
    rig.engine.records.listeners.append(metrics.record)
    rig.trade("LEAD", 2)
    assert _value(metrics, "mimik_fanout_latency_seconds_count") == 2
    assert _value(metrics, "mimik_broker_fills_total") >= 3


def test_rejections_breaches_and_states(tmp_path: Path, make_engine: MakeEngine) -> None:
    rig = make_engine(tmp_path, "threads")
    metrics = _observed(rig)
    rig.engine.lock("F1")
    rig.trade("LEAD", 1)
    assert _value(metrics, "mimik_rejections_total", reason="locked") == 1
    rig.engine.set_risk("F2", {"daily_loss_limit": Decimal(50)})
    rig.price(ES, Decimal(4990))  # F2 holds +1 ES: -500
    assert _value(metrics, "mimik_breaches_total", reason="risk_breach_daily") == 1
    assert _value(metrics, "mimik_connection_state", connection="f1", state="connected") == 1
    rig.broker.drop("f1")
    rig.idle()
    assert _value(metrics, "mimik_connection_state", connection="f1", state="disconnected") == 1
    assert _value(metrics, "mimik_connection_state", connection="f1", state="connected") == 0
    assert _value(metrics, "mimik_actor_restarts_total") == 0
    depths = {k[1]: v for k, v in _samples(metrics).items() if k[0] == "mimik_mailbox_depth"}
    assert depths  # one sample per actor thread, all idle now
    assert all(labels[0][0] == "thread" and value == 0 for labels, value in depths.items())


def test_restarts_are_counted(tmp_path: Path, make_engine: MakeEngine) -> None:
    rig = make_engine(tmp_path, "threads")
    metrics = _observed(rig)
    rig.engine.inject_failure("account", "F1")
    rig.idle()
    assert _value(metrics, "mimik_actor_restarts_total") == 1
    assert _value(metrics, "mimik_activity_entries_total", kind="restart", level="error") == 1


def test_a_listener_never_raises() -> None:
    metrics = EngineMetrics(lambda: 0)
    metrics.record("order_status", ("x",))  # malformed: ignored
    metrics.record("activity", object())
    metrics.broker_event(object())  # type: ignore[arg-type]


def test_s10_3_missed_copies_by_account_and_positions_without_prices(
    tmp_path: Path, make_engine: MakeEngine
) -> None:
    rig = make_engine(tmp_path, "threads")
    metrics = _observed(rig)
    rig.broker.hold("f1")
    rig.trade("LEAD", 1)
    rig.advance(5)
    assert _value(metrics, "mimik_missed_copies_total", account="F1") == 1
    assert _value(metrics, "mimik_missed_copies_total", account="F2") == 0
    assert _value(metrics, "mimik_positions_without_prices", account="F2") == 0
    rig.advance(25)  # 30 s without a price: LEAD and F2 hold ES, F1's copy is still held
    assert _value(metrics, "mimik_positions_without_prices", account="F2") == 1
    assert _value(metrics, "mimik_positions_without_prices", account="LEAD") == 1
    assert _value(metrics, "mimik_positions_without_prices", account="F1") == 0
    rig.price(ES, Decimal(5001))
    assert _value(metrics, "mimik_positions_without_prices", account="F2") == 0


def test_s10_1_a_drift_gauge_per_follower_and_symbol(
    tmp_path: Path, make_engine: MakeEngine
) -> None:
    """The open drift episode of a follower, signed; no sample inside drift_grace or once it
    is cleared."""
    rig = make_engine(tmp_path, "threads")
    metrics = _observed(rig)
    rig.price(ES, Decimal(5000))
    rig.trade("LEAD", 1)
    rig.trade("F1", 2)  # its owner buys 2 more at its broker
    rig.advance(4)
    assert ("mimik_follower_drift", (("account", "F1"), ("symbol", ES))) not in _samples(metrics)
    rig.advance(1)
    rig.idle()
    assert _value(metrics, "mimik_follower_drift", account="F1", symbol=ES) == 2
    assert ("mimik_follower_drift", (("account", "F2"), ("symbol", ES))) not in _samples(metrics)
    rig.trade("F1", -2)
    assert ("mimik_follower_drift", (("account", "F1"), ("symbol", ES))) not in _samples(metrics)
