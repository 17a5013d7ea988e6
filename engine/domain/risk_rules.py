"""S5.1 figures, the five S5.2 triggers, and the breach prices that make a tick a comparison.

Pure functions over an account's book and market prices; the RiskActor calls them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

ZERO = Decimal(0)
ANY_PRICE = Decimal("Infinity")  # a lower bound every price reaches


class Trigger(StrEnum):
    DAILY_LOSS = "daily_loss_limit"
    DAILY_PROFIT = "daily_profit_target"
    TRAILING = "trailing_drawdown"
    WEEKLY_LOSS = "weekly_loss_limit"
    WEEKLY_PROFIT = "weekly_profit_target"
    MAX_LOSS = "max_loss"  # S9.3, evaluated by the risk actor against its threshold


DAILY_TRIGGERS = frozenset({Trigger.DAILY_LOSS, Trigger.DAILY_PROFIT, Trigger.TRAILING})
WEEKLY_TRIGGERS = frozenset({Trigger.WEEKLY_LOSS, Trigger.WEEKLY_PROFIT})
# The five S5.2 triggers, in table order, and their limits' names.
S5_TRIGGERS = tuple(t for t in Trigger if t is not Trigger.MAX_LOSS)
LIMIT_NAMES = tuple(t.value for t in S5_TRIGGERS)

DESCRIPTIONS = {
    Trigger.DAILY_LOSS: "daily loss limit",
    Trigger.DAILY_PROFIT: "daily profit target",
    Trigger.TRAILING: "trailing drawdown",
    Trigger.WEEKLY_LOSS: "weekly loss limit",
    Trigger.WEEKLY_PROFIT: "weekly profit target",
    Trigger.MAX_LOSS: "account max loss",
}


class Holding(Protocol):
    """An open position as priced here (qty, reference price, point value)."""

    @property
    def qty(self) -> int: ...
    @property
    def reference(self) -> Decimal: ...
    @property
    def point_value(self) -> Decimal: ...


class Book(Protocol):
    """An account's book as priced here (actors.messages.risk.AccountChanged)."""

    @property
    def positions(self) -> Mapping[str, Holding]: ...
    @property
    def realized_daily(self) -> Decimal: ...
    @property
    def realized_weekly(self) -> Decimal: ...
    @property
    def balance(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class Figures:
    """S5.1 figures at the worst and best prices seen (equal when priced at one tick)."""

    unrealized_low: Decimal
    unrealized_high: Decimal
    realized_daily: Decimal
    realized_weekly: Decimal
    balance: Decimal

    @property
    def daily_low(self) -> Decimal:
        return self.realized_daily + self.unrealized_low

    @property
    def daily_high(self) -> Decimal:
        return self.realized_daily + self.unrealized_high

    @property
    def weekly_low(self) -> Decimal:
        return self.realized_weekly + self.unrealized_low

    @property
    def weekly_high(self) -> Decimal:
        return self.realized_weekly + self.unrealized_high

    @property
    def equity_low(self) -> Decimal:
        return self.balance + self.daily_low

    @property
    def equity_high(self) -> Decimal:
        return self.balance + self.daily_high


PriceOf = Callable[[str], Decimal | None]
_NAMES = {t: t.value for t in Trigger}  # each limit's name, read once


def figures(
    book: Book, price: PriceOf, ranges: Mapping[str, tuple[Decimal, Decimal]] | None = None
) -> Figures:
    """Price the book at the last prices, or across ``ranges`` (low, high) where given."""
    low = high = ZERO
    for symbol, holding in book.positions.items():
        span = ranges.get(symbol) if ranges else None
        last = price(symbol)
        if span is None:  # at one price: its worst and best are the same
            if last is not None:
                value = (last - holding.reference) * holding.qty * holding.point_value
                low += value
                high += value
            continue
        values = [(p - holding.reference) * holding.qty * holding.point_value for p in span]
        if last is not None:
            values.append((last - holding.reference) * holding.qty * holding.point_value)
        low += min(values)
        high += max(values)
    return Figures(low, high, book.realized_daily, book.realized_weekly, book.balance)


def _armed(
    limits: Mapping[str, Decimal], off: frozenset[Trigger], trigger: Trigger
) -> Decimal | None:
    """A limit that fires: set, not 0, and not switched off by a manual unlock (``off``)."""
    value = limits.get(_NAMES[trigger])
    return value if value and trigger not in off else None


def breached(
    fig: Figures, high_water: Decimal, limits: Mapping[str, Decimal], off: frozenset[Trigger]
) -> list[Trigger]:
    """The S5.2 triggers that fire, in table order. A limit unset, 0, or switched off by a
    manual unlock (``off``) never fires."""
    fired: list[Trigger] = []
    if not limits:  # none set: none fires
        return fired
    if (d := _armed(limits, off, Trigger.DAILY_LOSS)) is not None and fig.daily_low <= -d:
        fired.append(Trigger.DAILY_LOSS)
    if (p := _armed(limits, off, Trigger.DAILY_PROFIT)) is not None and fig.daily_high >= p:
        fired.append(Trigger.DAILY_PROFIT)
    if (t := _armed(limits, off, Trigger.TRAILING)) is not None and (
        high_water - fig.equity_low >= t
    ):
        fired.append(Trigger.TRAILING)
    if (w := _armed(limits, off, Trigger.WEEKLY_LOSS)) is not None and fig.weekly_low <= -w:
        fired.append(Trigger.WEEKLY_LOSS)
    if (q := _armed(limits, off, Trigger.WEEKLY_PROFIT)) is not None and fig.weekly_high >= q:
        fired.append(Trigger.WEEKLY_PROFIT)
    return fired


def breach_prices(
    book: Book,
    price: PriceOf,
    high_water: Decimal,
    limits: Mapping[str, Decimal],
    off: frozenset[Trigger],
    *,
    floor: Decimal | None = None,
    ceiling: Decimal | None = None,
    fig: Figures | None = None,
) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    """For each held contract, the prices at or beyond which the triggers must be evaluated
    again: ``(low, high)``, ``None`` for no bound.

    The room left before each limit is shared equally between the contracts held, so while no
    contract reaches its bound the combined move of all of them cannot reach a limit either.
    The high-water mark is a bound on the favourable side whatever the limits (it is a figure
    of its own, and moves the trailing drawdown), so an account at its high-water re-evaluates
    on every new high. ``floor``: an equity at or below which the account breaches (S9.3's
    threshold); ``ceiling``: an equity at which a figure moves (an intraday threshold's
    peak). ``fig``: the book's :func:`figures` at the last prices, when the caller has them."""
    held = {s: h for s, h in book.positions.items() if h.qty}
    if not held:
        return {}
    last_of = {s: price(s) for s in held}
    # A contract held without a price yet: its first tick, whatever it is, must be evaluated.
    bands: dict[str, tuple[Decimal | None, Decimal | None]] = {
        s: (ANY_PRICE, None) for s, last in last_of.items() if last is None
    }
    if len(bands) == len(held):
        return bands
    if fig is None:
        fig = figures(book, price)
    adverse: list[Decimal] = []  # money that may be lost before a limit
    favourable: list[Decimal] = []  # money that may be gained before a limit or a new high
    if limits:
        if (d := _armed(limits, off, Trigger.DAILY_LOSS)) is not None:
            adverse.append(fig.daily_low + d)
        if (w := _armed(limits, off, Trigger.WEEKLY_LOSS)) is not None:
            adverse.append(fig.weekly_low + w)
        if (t := _armed(limits, off, Trigger.TRAILING)) is not None:
            adverse.append(t - (high_water - fig.equity_low))
    if floor is not None:
        adverse.append(fig.equity_low - floor)
    # The high-water mark is a figure of every account (S5.1), limits or not: a new high must
    # be seen, so it bounds the favourable side.
    favourable.append(high_water - fig.equity_high)
    if ceiling is not None:
        favourable.append(ceiling - fig.equity_high)
    if limits:
        if (p := _armed(limits, off, Trigger.DAILY_PROFIT)) is not None:
            favourable.append(p - fig.daily_high)
        if (q := _armed(limits, off, Trigger.WEEKLY_PROFIT)) is not None:
            favourable.append(q - fig.weekly_high)
    share = len(held)
    for symbol, holding in held.items():
        last = last_of[symbol]
        if last is None:
            continue
        per_point = abs(holding.qty) * holding.point_value
        down = min(adverse) / share / per_point if adverse else None
        up = min(favourable) / share / per_point if favourable else None
        if holding.qty > 0:
            low = None if down is None else last - max(down, ZERO)
            high = None if up is None else last + max(up, ZERO)
        else:
            low = None if up is None else last - max(up, ZERO)
            high = None if down is None else last + max(down, ZERO)
        bands[symbol] = (low, high)
    return bands
