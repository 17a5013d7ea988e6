"""S10.5: a follower's trading day in figures — its copies, skips and rejections, how long its
copies took, what they paid against the leader, its drift episodes and missed copies.

Pure: the store's queries (``engine/storage/reports.py``) gather the rows, this module turns
them into figures. The trading day is the one the S5.8 resets define: the day ``D`` runs from
the reset before it to the 17:00 America/Chicago reset on ``D`` — Monday's begins on Sunday at
17:00 — and no trading day ends on a Saturday (no reset falls on one). Prices are exact
(``Decimal``); only what is shown is rounded.

Copy latency is measured from the leader fill's arrival (its row in the fills table, written
as the engine took it) to the copy order being sent (its ledger row) and to the copy's first
fill arriving. The leader's row is written just after its fan-out began, so a copy sent in the
same instant can show as sent a hair before it: such a span counts as zero. Percentiles are
nearest-rank: each is a latency that happened. Slippage is the follower fill's price minus the
leader fill's, in the follower contract's ticks, positive when adverse for the follower's side
(a buy that paid more, a sell that got less); its mean is per contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from engine.domain.resets import CHICAGO, RESET_TIME, next_reset, resets_after

SATURDAY = 5
ZERO_SPAN = timedelta(0)


class NotATradingDay(ValueError):
    """A date no trading day ends on (a Saturday): the message says why."""


# -- the trading day ----------------------------------------------------------------------------


def trading_day(instant: datetime) -> date:
    """The trading day ``instant`` belongs to: the Chicago date of the reset that ends it (an
    instant exactly at a reset begins the next day)."""
    return next_reset(instant).at.astimezone(CHICAGO).date()


def _close(day: date) -> datetime:
    """17:00 Chicago time on ``day``, as an instant (a reset, on any day but a Saturday)."""
    return datetime.combine(day, RESET_TIME, tzinfo=CHICAGO).astimezone(UTC)


def _reset_before(instant: datetime) -> datetime:
    """The last reset strictly before ``instant``."""
    last = None
    for reset in resets_after(instant - timedelta(days=4)):
        if reset.at >= instant:
            break
        last = reset.at
    assert last is not None  # there is a reset on at least five days of any seven
    return last


def day_window(day: date) -> tuple[datetime, datetime]:
    """The instants of trading day ``day``: ``start`` ≤ t < ``end``, in UTC."""
    if day.weekday() == SATURDAY:
        raise NotATradingDay(
            f"{day.isoformat()} is a Saturday: no trading day ends on it (the Friday 17:00 "
            "Chicago reset ends Friday's, the Sunday one Sunday's)"
        )
    end = next_reset(_close(day) - timedelta(microseconds=1)).at
    return _reset_before(end), end


def days_window(first: date, last: date) -> tuple[datetime, datetime]:
    """The instants of the trading days from ``first`` to ``last``, both included: from the
    start of the first trading day ending on or after ``first`` to the end of the last one
    ending on or before ``last`` (a Saturday at either end adds nothing). Empty (``start`` ≥
    ``end``) when no trading day lies between them."""
    if last < first:
        raise ValueError(f"{first.isoformat()} is after {last.isoformat()}")
    first_end = next_reset(_close(first) - timedelta(microseconds=1)).at
    start = _reset_before(first_end)
    last_close = _close(last)
    end = last_close if last.weekday() != SATURDAY else _reset_before(last_close)
    return start, max(start, end)


# -- figures ------------------------------------------------------------------------------------


def percentile(values: Sequence[timedelta], pct: int) -> timedelta | None:
    """The nearest-rank ``pct``-th percentile of ``values`` (``None`` for none): the smallest
    value at least ``pct`` per cent of them do not exceed."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-pct * len(ordered) // 100))
    return ordered[rank - 1]


def slippage_ticks(qty: int, price: Decimal, leader_price: Decimal, tick: Decimal) -> Decimal:
    """A follower fill of ``qty`` (signed) at ``price`` against the leader fill it copies at
    ``leader_price``, in ticks of ``tick``: positive when adverse for the follower's side."""
    side = 1 if qty > 0 else -1
    return (price - leader_price) * side / tick


@dataclass(frozen=True, slots=True)
class Latency:
    """A latency's spread over a day's copies: how many were measured, p50, p95, worst."""

    count: int
    p50: timedelta | None
    p95: timedelta | None
    max: timedelta | None

    @classmethod
    def of(cls, spans: Sequence[timedelta]) -> Latency:
        spans = [max(ZERO_SPAN, s) for s in spans]
        worst = max(spans, default=None)
        return cls(len(spans), percentile(spans, 50), percentile(spans, 95), worst)


@dataclass(frozen=True, slots=True)
class Slippage:
    """Slippage in ticks over a day's copy fills: per contract on average, and the worst fill."""

    fills: int
    contracts: int
    mean: Decimal | None
    worst: Decimal | None


@dataclass(frozen=True, slots=True)
class CopyFill:
    """One fill of a copy order: when the engine took it, its signed quantity and price."""

    time: datetime
    qty: int
    price: Decimal


@dataclass(frozen=True, slots=True)
class CopyTrace:
    """One copy order of a follower and what the reports measure of it. ``leader_received``
    and ``leader_price`` are ``None`` where the store no longer has the leader's fill (pruned,
    or written before fills were recorded); ``tick`` where its contract is not in the table."""

    sent: datetime
    fills: tuple[CopyFill, ...]
    leader_received: datetime | None = None
    leader_price: Decimal | None = None
    tick: Decimal | None = None


@dataclass(frozen=True, slots=True)
class FollowerDay:
    """S10.5: one follower's trading day."""

    account: str
    day: date
    copies: int  # copy and mirror orders sent
    filled: int  # of them, those with a fill
    skips: int
    rejections: int
    to_order: Latency  # leader fill received -> copy order sent
    to_fill: Latency  # leader fill received -> the copy's first fill received
    slippage: Slippage
    drift_episodes: int
    missed_copies: int


def slippage_of(traces: Sequence[CopyTrace]) -> Slippage:
    fills, contracts, total = 0, 0, Decimal(0)
    worst: Decimal | None = None
    for trace in traces:
        if trace.leader_price is None or not trace.tick:
            continue
        for fill in trace.fills:
            ticks = slippage_ticks(fill.qty, fill.price, trace.leader_price, trace.tick)
            fills += 1
            contracts += abs(fill.qty)
            total += ticks * abs(fill.qty)
            worst = ticks if worst is None else max(worst, ticks)
    mean = total / contracts if contracts else None
    return Slippage(fills, contracts, mean, worst)


def follower_day(
    account: str,
    day: date,
    *,
    copies: int,
    filled: int,
    counts: Mapping[str, int],
    traces: Sequence[CopyTrace],
) -> FollowerDay:
    """The figures of ``account``'s trading day ``day``: ``copies`` orders sent and how many
    of them ``filled``, ``counts`` of its activity entries by kind, and ``traces`` of its
    copy orders of leader fills."""
    measured = [t for t in traces if t.leader_received is not None]
    to_order = [t.sent - t.leader_received for t in measured if t.leader_received]
    to_fill = [
        t.fills[0].time - t.leader_received for t in measured if t.fills and t.leader_received
    ]
    return FollowerDay(
        account=account,
        day=day,
        copies=copies,
        filled=filled,
        skips=counts.get("skip", 0),
        rejections=counts.get("rejection", 0),
        to_order=Latency.of(to_order),
        to_fill=Latency.of(to_fill),
        slippage=slippage_of(traces),
        drift_episodes=counts.get("drift", 0),
        missed_copies=counts.get("missed_copy", 0),
    )


__all__ = [
    "CopyFill",
    "CopyTrace",
    "FollowerDay",
    "Latency",
    "NotATradingDay",
    "Slippage",
    "day_window",
    "days_window",
    "follower_day",
    "percentile",
    "slippage_of",
    "slippage_ticks",
    "trading_day",
]
