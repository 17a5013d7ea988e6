"""S9.3: the account max loss — an evaluation or funded account's "threshold", which unlike
S5's limits no reset clears.

The durable part is the starting balance and the peak the threshold trails; the threshold itself
follows from them, ``max_loss`` M, the mode and the optional stop S:

- ``static``: ``start_balance − M``, fixed;
- ``intraday_trailing``: ``peak − M``, the peak being the highest equity ever seen, ticks included;
- ``eod_trailing``: ``peak − M``, the peak being the highest balance after a daily reset's
  mark-to-market (S5.8), so it moves only at daily resets;
- with a stop S the threshold never rises above ``start_balance + S`` (S = 0 stops trailing at
  the starting balance; no stop is ``None``).

The breach is ``equity ≤ threshold``, judged on the lowest equity since the last evaluation so
that a spike through the threshold counts (S5.2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum


class MaxLossMode(StrEnum):
    STATIC = "static"
    INTRADAY = "intraday_trailing"
    EOD = "eod_trailing"


@dataclass(frozen=True, slots=True)
class Threshold:
    """What the threshold is computed from and what must survive a restart: the evaluation's
    ``start_balance`` and the ``peak`` it trails (which starts at ``start_balance``)."""

    start_balance: Decimal
    peak: Decimal


def started(start_balance: Decimal) -> Threshold:
    """A new evaluation: the peak starts at the starting balance (S9.3)."""
    return Threshold(start_balance, start_balance)


def threshold(
    state: Threshold, max_loss: Decimal, mode: MaxLossMode, stop: Decimal | None
) -> Decimal:
    """The equity at or below which the account is breached."""
    base = state.start_balance if mode is MaxLossMode.STATIC else state.peak
    level = base - max_loss
    if stop is not None:
        level = min(level, state.start_balance + stop)
    return level


def on_equity(state: Threshold, mode: MaxLossMode, equity_high: Decimal) -> Threshold:
    """Intraday trailing: the peak rises to ``equity_high`` (the highest equity since the last
    evaluation, ticks included) when it is higher. Other modes, or no new high, return
    ``state`` itself."""
    if mode is MaxLossMode.INTRADAY and equity_high > state.peak:
        return replace(state, peak=equity_high)
    return state


def on_daily_reset(state: Threshold, mode: MaxLossMode, balance: Decimal) -> Threshold:
    """End-of-day trailing: at a daily reset the peak rises to ``balance`` (after the reset's
    mark-to-market) when it is higher. Other modes, or no new high, return ``state`` itself."""
    if mode is MaxLossMode.EOD and balance > state.peak:
        return replace(state, peak=balance)
    return state


def breached(equity_low: Decimal, level: Decimal) -> bool:
    """Whether the lowest equity since the last evaluation reached the threshold ``level``."""
    return equity_low <= level


def room(equity_low: Decimal, level: Decimal) -> Decimal:
    """The distance to the threshold: the money that may still be lost before the breach."""
    return equity_low - level


__all__ = [
    "MaxLossMode",
    "Threshold",
    "breached",
    "on_daily_reset",
    "on_equity",
    "room",
    "started",
    "threshold",
]
