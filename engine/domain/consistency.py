"""S9.6: consistency, reported only — how much of the account's total profit since the
evaluation began its best trading day made.

``best_day_share`` = best day's profit / total profit, over every trading day's net P&L since
``start_balance``'s day, today's included, when the total is positive. With ``consistency_pct``
C, today's profit that makes the share exceed C is worth a warning; no order is blocked.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

HUNDRED = Decimal(100)


def best_day_share(days: Iterable[Decimal], today: Decimal) -> Decimal | None:
    """The best day's P&L over the total P&L, ``days`` being the closed trading days' net P&L
    and ``today`` the current day's; None when the total is not positive."""
    every = [*days, today]
    total = sum(every, Decimal(0))
    if total <= 0:
        return None
    return max(every) / total


def consistency_breached(days: Iterable[Decimal], today: Decimal, pct: Decimal) -> bool:
    """Whether today's profit makes the account inconsistent: today is a profit, today is the
    best day, and the best day's share of the total profit exceeds ``pct`` percent."""
    closed = list(days)
    if today <= 0 or any(day > today for day in closed):
        return False
    share = best_day_share(closed, today)
    return share is not None and share * HUNDRED > pct


__all__ = ["best_day_share", "consistency_breached"]
