"""The read model of the S10.5 reports: each follower's trading day, from the store's rows
(``engine/storage/reports.py``) and the contract table's tick sizes. Called on a worker thread
(``ApiContext.read``)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from brokers.instruments import SymbolError
from engine.api.report_schemas import FollowerDayOut, LatencyOut, ReportOut, SlippageOut
from engine.core.engine import Engine
from engine.core.topology import UnknownId
from engine.domain.reports import FollowerDay, Latency, Slippage, day_window
from engine.storage.reports import Reports

CENT = Decimal("0.01")
MILLISECOND = timedelta(milliseconds=1)


def _ms(span: timedelta | None) -> float | None:
    return None if span is None else round(span / MILLISECOND, 3)


def _ticks(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def latency_out(latency: Latency) -> LatencyOut:
    return LatencyOut(
        count=latency.count,
        p50_ms=_ms(latency.p50),
        p95_ms=_ms(latency.p95),
        max_ms=_ms(latency.max),
    )


def slippage_out(slippage: Slippage) -> SlippageOut:
    return SlippageOut(
        fills=slippage.fills,
        contracts=slippage.contracts,
        mean_ticks=_ticks(slippage.mean),
        worst_ticks=_ticks(slippage.worst),
    )


def follower_day_out(day: FollowerDay, group: str | None) -> FollowerDayOut:
    return FollowerDayOut(
        account=day.account,
        group=group,
        copies=day.copies,
        filled=day.filled,
        skips=day.skips,
        rejections=day.rejections,
        to_order=latency_out(day.to_order),
        to_fill=latency_out(day.to_fill),
        slippage=slippage_out(day.slippage),
        drift_episodes=day.drift_episodes,
        missed_copies=day.missed_copies,
    )


def report(engine: Engine, day: date, account: str | None = None) -> ReportOut:
    """Trading day ``day`` of every follower (those following now, and any other that copied
    in it), or of ``account`` only — one the engine does not know and the store has no records
    of: 404."""
    topology = engine.topology_snapshot()
    groups = {m.account: g.id for g in topology.groups.values() for m in g.members}

    def tick(symbol: str) -> Decimal | None:
        try:
            return engine.contracts.tick_size(symbol)
        except SymbolError:
            return None

    reports = Reports(engine.store)
    if account is not None and account not in topology.accounts and not reports.known(account):
        raise UnknownId(f"unknown account {account!r}")
    days = reports.day(day, tick, account=account, followers=groups)
    start, end = day_window(day)
    return ReportOut(
        day=day.isoformat(),
        start=start.isoformat(),
        end=end.isoformat(),
        followers=[follower_day_out(d, groups.get(d.account)) for d in days],
    )


__all__ = ["report"]
