"""How far an account stands from each of its S5.2 limits, in money: what the Cockpit's account
row and ``status`` show beside the figures.

Pure and exact (Decimal throughout): the API computes it from an account's published figures
and its risk actor's view, so every reader shows the same distances.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from engine.domain.risk_rules import S5_TRIGGERS, Trigger

ZERO = Decimal(0)
NEAR_SHARE = Decimal("0.2")  # within 20 % of a limit is near it


class Standing(StrEnum):
    OK = "ok"
    NEAR = "near"  # within 20 % of the limit (amber)
    BREACHED = "breached"  # at the limit or past it (red)
    HALTED = "halted"  # the account is LIQUIDATE_ONLY or LOCKED (red)
    OFF = "off"  # switched off until its reset by a manual unlock (S5.7): it cannot fire


@dataclass(frozen=True, slots=True)
class LimitDistance:
    """One limit that is set: its value, the money left before it is hit (0 or less: hit) and
    how the account stands against it."""

    limit: Trigger
    value: Decimal
    distance: Decimal
    standing: Standing


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """The S5.1 figures the limits are measured on."""

    daily_pnl: Decimal
    weekly_pnl: Decimal
    equity: Decimal
    high_water: Decimal


def distance_to(limit: Trigger, value: Decimal, fig: AccountFigures) -> Decimal:
    """Money left before ``limit`` set at ``value`` is hit (S5.2): more loss the account can
    take before a loss limit, more profit before a profit target, and how far equity is above
    the trailing drawdown's floor (the high-water mark less the drawdown)."""
    match limit:
        case Trigger.DAILY_LOSS:
            return fig.daily_pnl + value
        case Trigger.DAILY_PROFIT:
            return value - fig.daily_pnl
        case Trigger.TRAILING:
            # An equity above the last published high-water mark is the new mark.
            return value - (max(fig.high_water, fig.equity) - fig.equity)
        case Trigger.WEEKLY_LOSS:
            return fig.weekly_pnl + value
        case Trigger.WEEKLY_PROFIT:
            return value - fig.weekly_pnl
        case Trigger.MAX_LOSS:
            raise ValueError("the account's max loss is measured against its threshold (S9.3)")


def limit_distances(
    fig: AccountFigures,
    limits: Mapping[str, object],
    *,
    off: Collection[str] = (),
    halted: bool = False,
) -> list[LimitDistance]:
    """Each limit set (unset or 0 is off, S5.2), in table order. ``off``: the triggers a manual
    unlock switched off; ``halted``: the account is LIQUIDATE_ONLY or LOCKED."""
    out: list[LimitDistance] = []
    for trigger in S5_TRIGGERS:
        value = limits.get(trigger.value)
        if not isinstance(value, Decimal) or not value:
            continue
        distance = distance_to(trigger, value, fig)
        if trigger.value in off:
            standing = Standing.OFF
        elif distance <= ZERO:
            standing = Standing.BREACHED
        elif halted:
            standing = Standing.HALTED
        elif distance <= value * NEAR_SHARE:
            standing = Standing.NEAR
        else:
            standing = Standing.OK
        out.append(LimitDistance(trigger, value, distance, standing))
    return out


__all__ = [
    "NEAR_SHARE",
    "AccountFigures",
    "LimitDistance",
    "Standing",
    "distance_to",
    "limit_distances",
]
