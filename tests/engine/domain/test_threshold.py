"""S9.3: the account max loss threshold — static, intraday trailing and end-of-day trailing,
the stop that ends the trailing, and the breach at ``equity ≤ threshold``."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.threshold import (
    MaxLossMode,
    Threshold,
    breached,
    on_daily_reset,
    on_equity,
    room,
    started,
    threshold,
)

D = Decimal
START = D(50000)
M = D(2000)


def test_s9_3_modes_are_spelled_as_in_the_profile() -> None:
    assert [m.value for m in MaxLossMode] == ["static", "intraday_trailing", "eod_trailing"]
    assert MaxLossMode("eod_trailing") is MaxLossMode.EOD


def test_s9_3_the_peak_starts_at_the_start_balance() -> None:
    assert started(START) == Threshold(START, START)


def test_s9_3_static_is_fixed_at_start_balance_minus_m() -> None:
    state = started(START)
    assert threshold(state, M, MaxLossMode.STATIC, None) == D(48000)
    state = on_equity(state, MaxLossMode.STATIC, D(53000))
    state = on_daily_reset(state, MaxLossMode.STATIC, D(53000))
    assert state == started(START)
    assert threshold(state, M, MaxLossMode.STATIC, None) == D(48000)
    # a peak restored from elsewhere does not move a static threshold
    assert threshold(Threshold(START, D(60000)), M, MaxLossMode.STATIC, None) == D(48000)


def test_s9_3_eod_trailing_over_three_days() -> None:
    """Start 50,000, M 2,000, stop 0: the threshold trails the balance after each daily reset's
    mark-to-market, never the intraday equity, and stops at the starting balance."""
    mode, stop = MaxLossMode.EOD, D(0)
    state = started(START)
    assert threshold(state, M, mode, stop) == D(48000)

    # day 1: equity touches 51,000 during the day, closes at 50,900
    state = on_equity(state, mode, D(51000))
    assert threshold(state, M, mode, stop) == D(48000)
    state = on_daily_reset(state, mode, D(50900))
    assert state.peak == D(50900)
    assert threshold(state, M, mode, stop) == D(48900)

    # day 2: intraday high 51,800 moves nothing; the close at 51,200 does
    state = on_equity(state, mode, D(51800))
    assert threshold(state, M, mode, stop) == D(48900)
    state = on_daily_reset(state, mode, D(51200))
    assert threshold(state, M, mode, stop) == D(49200)

    # day 3: closes at 52,600 — peak − M would be 50,600, the stop holds it at 50,000
    state = on_daily_reset(state, mode, D(52600))
    assert state.peak == D(52600)
    assert threshold(state, M, mode, stop) == D(50000)

    # day 4: a losing day lowers no peak
    same = on_daily_reset(state, mode, D(51000))
    assert same is state
    assert threshold(state, M, mode, stop) == D(50000)
    # without the stop the threshold would have kept trailing
    assert threshold(state, M, mode, None) == D(50600)


def test_s9_3_intraday_trailing_follows_every_tick() -> None:
    """Equity ticks 50,000 → 50,250 → 50,100 → 50,700 → 49,900: the peak is the highest equity
    ever seen, ticks included; the threshold never comes back down."""
    mode = MaxLossMode.INTRADAY
    state = started(START)
    levels = []
    for equity in ("50000", "50250", "50100", "50700", "49900"):
        state = on_equity(state, mode, D(equity))
        levels.append(threshold(state, M, mode, None))
    assert levels == [D(48000), D(48250), D(48250), D(48700), D(48700)]
    assert state.peak == D(50700)
    # a daily reset does not move an intraday peak
    assert on_daily_reset(state, mode, D(55000)) is state


def test_s9_3_intraday_trailing_a_spike_high_counts() -> None:
    """The highest equity between two evaluations raises the peak even when the last tick has
    come back down (S5.2: every price since the last evaluation)."""
    state = on_equity(started(START), MaxLossMode.INTRADAY, D("50312.50"))
    assert threshold(state, M, MaxLossMode.INTRADAY, None) == D("48312.50")


def test_s9_3_intraday_trailing_with_a_stop() -> None:
    mode, stop = MaxLossMode.INTRADAY, D(100)
    state = started(START)
    state = on_equity(state, mode, D(52050))
    assert threshold(state, M, mode, stop) == D(50050)
    state = on_equity(state, mode, D(52200))
    assert threshold(state, M, mode, stop) == D(50100)
    state = on_equity(state, mode, D(60000))
    assert threshold(state, M, mode, stop) == D(50100)


def test_s9_3_a_stop_does_not_raise_a_lower_threshold() -> None:
    state = started(START)
    for mode in MaxLossMode:
        assert threshold(state, M, mode, D(0)) == D(48000)


@pytest.mark.parametrize("mode", list(MaxLossMode))
def test_s9_3_unchanged_state_is_the_same_object(mode: MaxLossMode) -> None:
    state = Threshold(START, D(51000))
    assert on_equity(state, mode, D(50500)) is state
    assert on_equity(state, mode, D(51000)) is state
    assert on_daily_reset(state, mode, D(50500)) is state
    assert on_daily_reset(state, mode, D(51000)) is state


def test_s9_3_only_the_own_mode_moves_the_peak() -> None:
    state = started(START)
    assert on_equity(state, MaxLossMode.EOD, D(51000)) is state
    assert on_equity(state, MaxLossMode.INTRADAY, D(51000)) == Threshold(START, D(51000))
    assert on_daily_reset(state, MaxLossMode.INTRADAY, D(51000)) is state
    assert on_daily_reset(state, MaxLossMode.EOD, D(51000)) == Threshold(START, D(51000))


def test_s9_3_breach_at_or_below_the_threshold() -> None:
    level = D(48000)
    assert not breached(D("48000.01"), level)
    assert breached(D(48000), level)
    assert breached(D("47999.99"), level)


def test_s9_3_room_is_the_money_left_before_the_breach() -> None:
    assert room(D("49250.75"), D(48000)) == D("1250.75")
    assert room(D(48000), D(48000)) == D(0)
    assert room(D(47900), D(48000)) == D(-100)
