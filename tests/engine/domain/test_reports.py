"""S10.5's figures: the trading day the S5.8 resets define, nearest-rank percentiles, slippage
in ticks with its sign by side, and one follower's day from its rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from engine.domain.reports import (
    CopyFill,
    CopyTrace,
    Latency,
    NotATradingDay,
    day_window,
    days_window,
    follower_day,
    percentile,
    slippage_of,
    slippage_ticks,
    trading_day,
)

D = Decimal
MS = timedelta(milliseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- the trading day (S5.8) -----------------------------------------------------------------------


def test_s10_5_a_trading_day_ends_at_the_17_00_chicago_reset() -> None:
    # Tuesday 2026-01-06, winter (CST): the reset is at 23:00 UTC.
    assert trading_day(utc(2026, 1, 6, 22, 59, 59)) == date(2026, 1, 6)
    assert trading_day(utc(2026, 1, 6, 23, 0)) == date(2026, 1, 7)  # the reset begins the next
    assert day_window(date(2026, 1, 6)) == (utc(2026, 1, 5, 23), utc(2026, 1, 6, 23))


def test_s10_5_monday_begins_on_sunday_evening_and_daylight_saving_moves_the_hour() -> None:
    assert day_window(date(2026, 1, 5)) == (utc(2026, 1, 4, 23), utc(2026, 1, 5, 23))
    assert trading_day(utc(2026, 1, 4, 23, 30)) == date(2026, 1, 5)
    # Summer (CDT): 22:00 UTC.
    assert day_window(date(2026, 7, 7)) == (utc(2026, 7, 6, 22), utc(2026, 7, 7, 22))
    # The Sunday day is the weekend, from Friday's reset.
    assert day_window(date(2026, 1, 4)) == (utc(2026, 1, 2, 23), utc(2026, 1, 4, 23))


def test_s10_5_no_trading_day_ends_on_a_saturday() -> None:
    with pytest.raises(NotATradingDay, match="2026-01-03 is a Saturday"):
        day_window(date(2026, 1, 3))
    assert trading_day(utc(2026, 1, 3, 12)) == date(2026, 1, 4)


def test_s10_5_a_range_of_days_is_every_trading_day_in_it() -> None:
    assert days_window(date(2026, 1, 5), date(2026, 1, 9)) == (
        utc(2026, 1, 4, 23),
        utc(2026, 1, 9, 23),
    )
    one = days_window(date(2026, 1, 6), date(2026, 1, 6))
    assert one == day_window(date(2026, 1, 6))
    # A Saturday at either end adds nothing: Saturday to Sunday is Sunday's day.
    assert days_window(date(2026, 1, 3), date(2026, 1, 4)) == day_window(date(2026, 1, 4))
    assert days_window(date(2026, 1, 2), date(2026, 1, 3)) == day_window(date(2026, 1, 2))
    start, end = days_window(date(2026, 1, 3), date(2026, 1, 3))
    assert start == end  # a Saturday alone: nothing
    with pytest.raises(ValueError, match="2026-01-07 is after 2026-01-06"):
        days_window(date(2026, 1, 7), date(2026, 1, 6))


# -- figures ---------------------------------------------------------------------------------------


def test_s10_5_percentiles_are_nearest_rank() -> None:
    values = [i * MS for i in range(1, 101)]
    assert percentile(values, 50) == 50 * MS
    assert percentile(values, 95) == 95 * MS
    assert percentile([3 * MS], 95) == 3 * MS
    assert percentile([2 * MS, 1 * MS], 50) == 1 * MS
    assert percentile([], 50) is None
    latency = Latency.of([5 * MS, -1 * MS, 9 * MS])  # a copy sent in the leader's instant: 0
    assert latency == Latency(3, 5 * MS, 9 * MS, 9 * MS)
    assert Latency.of([]) == Latency(0, None, None, None)


def test_s10_5_slippage_is_adverse_positive_for_the_followers_side() -> None:
    tick = D("0.25")
    assert slippage_ticks(2, D("5000.50"), D("5000.00"), tick) == 2  # bought higher: adverse
    assert slippage_ticks(2, D("4999.75"), D("5000.00"), tick) == -1  # bought lower: better
    assert slippage_ticks(-1, D("4999.50"), D("5000.00"), tick) == 2  # sold lower: adverse
    assert slippage_ticks(-1, D("5000.25"), D("5000.00"), tick) == -1
    assert slippage_ticks(1, D("5000.10"), D("5000.00"), tick) == D("0.4")  # exact


def test_s10_5_slippage_mean_is_per_contract_and_worst_is_the_worst_fill() -> None:
    now = utc(2026, 1, 6, 15)
    tick = D("0.25")
    traces = [
        CopyTrace(now, (CopyFill(now, 3, D("5000.25")),), now, D("5000"), tick),  # +1 x 3
        CopyTrace(now, (CopyFill(now, -1, D("4999")),), now, D("5000"), tick),  # +4 x 1
        CopyTrace(now, (CopyFill(now, 1, D("1")),), None, None, tick),  # no leader fill: out
        CopyTrace(now, (CopyFill(now, 1, D("1")),), now, D("2"), None),  # no tick: out
    ]
    slip = slippage_of(traces)
    assert (slip.fills, slip.contracts, slip.mean, slip.worst) == (2, 4, D("1.75"), D(4))
    assert slippage_of([]).mean is None


def test_s10_5_a_followers_day_from_its_rows() -> None:
    leader = utc(2026, 1, 6, 15)
    tick = D("0.25")
    traces = [
        CopyTrace(leader + 2 * MS, (CopyFill(leader + 40 * MS, 1, D("5000.25")),), leader,
                  D("5000"), tick),
        CopyTrace(leader + 4 * MS, (), leader, D("5000"), tick),  # not filled
        CopyTrace(leader + 9 * MS, (CopyFill(leader + 20 * MS, -1, D("5000")),), None, None,
                  tick),  # its leader fill is no longer in the store
    ]  # fmt: skip
    day = follower_day(
        "F1",
        date(2026, 1, 6),
        copies=4,
        filled=2,
        counts={"skip": 2, "rejection": 1, "drift": 1, "missed_copy": 3, "copy": 9},
        traces=traces,
    )
    assert (day.copies, day.filled, day.skips, day.rejections) == (4, 2, 2, 1)
    assert (day.drift_episodes, day.missed_copies) == (1, 3)
    assert day.to_order == Latency(2, 2 * MS, 4 * MS, 4 * MS)
    assert day.to_fill == Latency(1, 40 * MS, 40 * MS, 40 * MS)
    assert (day.slippage.fills, day.slippage.mean, day.slippage.worst) == (1, 1, 1)
