"""The distance to each S5.2 limit, in money, and how the account stands against it: near
within 20 % of the limit, breached at it (S5.2's "exactly at" counts), halted while
LIQUIDATE_ONLY or LOCKED, off while a manual unlock keeps the trigger off (S5.7)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.limit_distances import (
    AccountFigures,
    LimitDistance,
    Standing,
    distance_to,
    limit_distances,
)
from engine.domain.risk_rules import S5_TRIGGERS, Trigger

D = Decimal


def figures(
    daily: str = "0", weekly: str = "0", equity: str = "50000", high_water: str = "50000"
) -> AccountFigures:
    return AccountFigures(D(daily), D(weekly), D(equity), D(high_water))


def one(fig: AccountFigures, limit: Trigger, value: str) -> LimitDistance:
    [found] = limit_distances(fig, {limit.value: D(value)})
    return found


def test_no_limit_set_shows_nothing() -> None:
    """S5.2: a limit unset or 0 is off."""
    assert limit_distances(figures(daily="-900"), {}) == []
    assert limit_distances(figures(daily="-900"), {"daily_loss_limit": D(0)}) == []


def test_every_limit_in_table_order() -> None:
    limits = {t.value: D(1000) for t in reversed(S5_TRIGGERS)}
    found = limit_distances(figures(), limits)
    assert [d.limit for d in found] == list(S5_TRIGGERS)
    assert all(d.distance == D(1000) and d.standing is Standing.OK for d in found)


@pytest.mark.parametrize(
    ("limit", "fig", "distance"),
    [
        # S5.2 daily loss: daily_pnl ≤ −D — the loss the account can still take
        (Trigger.DAILY_LOSS, figures(daily="-359.37"), "640.63"),
        (Trigger.DAILY_LOSS, figures(daily="250"), "1250"),
        # daily profit: daily_pnl ≥ P
        (Trigger.DAILY_PROFIT, figures(daily="359.37"), "640.63"),
        (Trigger.DAILY_PROFIT, figures(daily="-100"), "1100"),
        # trailing drawdown: high_water − equity ≥ T — equity above the floor high_water − T
        (Trigger.TRAILING, figures(equity="49700", high_water="50200"), "500"),
        # equity above a high-water mark not yet published is the new mark
        (Trigger.TRAILING, figures(equity="50300", high_water="50200"), "1000"),
        # weekly loss and profit, on weekly_pnl
        (Trigger.WEEKLY_LOSS, figures(daily="-10", weekly="-400.10"), "599.90"),
        (Trigger.WEEKLY_PROFIT, figures(daily="-10", weekly="400.10"), "599.90"),
    ],
)
def test_distance_in_money(limit: Trigger, fig: AccountFigures, distance: str) -> None:
    assert distance_to(limit, D(1000), fig) == D(distance)
    assert one(fig, limit, "1000").distance == D(distance)


@pytest.mark.parametrize(
    ("limit", "fig"),
    [
        (Trigger.DAILY_LOSS, figures(daily="-800")),
        (Trigger.DAILY_PROFIT, figures(daily="800")),
        (Trigger.TRAILING, figures(equity="49200", high_water="50000")),
        (Trigger.WEEKLY_LOSS, figures(weekly="-800")),
        (Trigger.WEEKLY_PROFIT, figures(weekly="800")),
    ],
)
def test_exactly_20_percent_away_is_near(limit: Trigger, fig: AccountFigures) -> None:
    at = one(fig, limit, "1000")
    assert (at.distance, at.standing) == (D(200), Standing.NEAR)
    # a cent further away is not near
    away = one(fig, limit, "1000.01")
    assert (away.distance, away.standing) == (D("200.01"), Standing.OK)


@pytest.mark.parametrize(
    ("limit", "at", "past"),
    [
        (Trigger.DAILY_LOSS, figures(daily="-1000"), figures(daily="-1000.01")),
        (Trigger.DAILY_PROFIT, figures(daily="1000"), figures(daily="1000.01")),
        (
            Trigger.TRAILING,
            figures(equity="49000", high_water="50000"),
            figures(equity="48999.99", high_water="50000"),
        ),
        (Trigger.WEEKLY_LOSS, figures(weekly="-1000"), figures(weekly="-1000.01")),
        (Trigger.WEEKLY_PROFIT, figures(weekly="1000"), figures(weekly="1000.01")),
    ],
)
def test_at_the_limit_is_breached(limit: Trigger, at: AccountFigures, past: AccountFigures) -> None:
    """S5.2: "exactly at" counts."""
    hit = one(at, limit, "1000")
    assert (hit.distance, hit.standing) == (D(0), Standing.BREACHED)
    beyond = one(past, limit, "1000")
    assert (beyond.distance, beyond.standing) == (D("-0.01"), Standing.BREACHED)
    # a cent short of it is near, not breached
    short = one(at, limit, "1000.01")
    assert (short.distance, short.standing) == (D("0.01"), Standing.NEAR)


def test_halted_account_is_red_on_every_limit() -> None:
    """S5.3/S5.7: LIQUIDATE_ONLY or LOCKED (a manual lock far from any limit, say)."""
    found = limit_distances(
        figures(daily="-1000"),
        {"daily_loss_limit": D(1000), "daily_profit_target": D(500)},
        halted=True,
    )
    assert [(d.limit, d.distance, d.standing) for d in found] == [
        (Trigger.DAILY_LOSS, D(0), Standing.BREACHED),
        (Trigger.DAILY_PROFIT, D(1500), Standing.HALTED),
    ]


def test_trigger_switched_off_by_an_unlock_is_off() -> None:
    """S5.7: after a manual unlock the trigger stays off until its reset; it cannot fire."""
    found = limit_distances(
        figures(daily="-1200"),
        {"daily_loss_limit": D(1000), "weekly_loss_limit": D(5000)},
        off=("daily_loss_limit",),
    )
    assert [(d.limit, d.distance, d.standing) for d in found] == [
        (Trigger.DAILY_LOSS, D(-200), Standing.OFF),
        (Trigger.WEEKLY_LOSS, D(5000), Standing.OK),
    ]


def test_exact_decimal_arithmetic() -> None:
    """No float on the way: a tenth of a cent stays a tenth of a cent."""
    hit = one(figures(daily="-799.999"), Trigger.DAILY_LOSS, "1000")
    assert (hit.distance, hit.standing) == (D("200.001"), Standing.OK)
