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


def figures(
    book: Book, price: PriceOf, ranges: Mapping[str, tuple[Decimal, Decimal]] | None = None
) -> Figures:
    """Price the book at the last prices, or across ``ranges`` (low, high) where given."""
    low = high = ZERO
    for symbol, holding in book.positions.items():
        span = ranges.get(symbol) if ranges else None
        last = price(symbol)
        prices = span if span is not None else (last, last) if last is not None else None
        if prices is None:
            continue
        values = [(p - holding.reference) * holding.qty * holding.point_value for p in prices]
        if last is not None and span is not None:
            values.append((last - holding.reference) * holding.qty * holding.point_value)
        low += min(values)
        high += max(values)
    return Figures(low, high, book.realized_daily, book.realized_weekly, book.balance)


def breached(
    fig: Figures, high_water: Decimal, limits: Mapping[str, Decimal], off: frozenset[Trigger]
) -> list[Trigger]:
    """The S5.2 triggers that fire, in table order. A limit unset, 0, or switched off by a
    manual unlock (``off``) never fires."""
    fired: list[Trigger] = []

    def armed(trigger: Trigger) -> Decimal | None:
        value = limits.get(trigger.value)
        return value if value and trigger not in off else None

    if (d := armed(Trigger.DAILY_LOSS)) is not None and fig.daily_low <= -d:
        fired.append(Trigger.DAILY_LOSS)
    if (p := armed(Trigger.DAILY_PROFIT)) is not None and fig.daily_high >= p:
        fired.append(Trigger.DAILY_PROFIT)
    if (t := armed(Trigger.TRAILING)) is not None and high_water - fig.equity_low >= t:
        fired.append(Trigger.TRAILING)
    if (w := armed(Trigger.WEEKLY_LOSS)) is not None and fig.weekly_low <= -w:
        fired.append(Trigger.WEEKLY_LOSS)
    if (q := armed(Trigger.WEEKLY_PROFIT)) is not None and fig.weekly_high >= q:
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
) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    """For each held contract, the prices at or beyond which the triggers must be evaluated
    again: ``(low, high)``, ``None`` for no bound.

    The room left before each limit is shared equally between the contracts held, so while no
    contract reaches its bound the combined move of all of them cannot reach a limit either.
    The high-water mark is a bound on the favourable side whatever the limits (it is a figure
    of its own, and moves the trailing drawdown), so an account at its high-water re-evaluates
    on every new high. ``floor``: an equity at or below which the account breaches (S9.3's
    threshold); ``ceiling``: an equity at which a figure moves (an intraday threshold's
    peak)."""
    held = {s: h for s, h in book.positions.items() if h.qty}
    priced = {s: h for s, h in held.items() if price(s) is not None}
    # A contract held without a price yet: its first tick, whatever it is, must be evaluated.
    bands: dict[str, tuple[Decimal | None, Decimal | None]] = {
        s: (ANY_PRICE, None) for s in held if s not in priced
    }
    if not priced:
        return bands
    fig = figures(book, price)
    adverse: list[Decimal] = []  # money that may be lost before a limit
    favourable: list[Decimal] = []  # money that may be gained before a limit or a new high

    def armed(trigger: Trigger) -> Decimal | None:
        value = limits.get(trigger.value)
        return value if value and trigger not in off else None

    if (d := armed(Trigger.DAILY_LOSS)) is not None:
        adverse.append(fig.daily_low + d)
    if (w := armed(Trigger.WEEKLY_LOSS)) is not None:
        adverse.append(fig.weekly_low + w)
    if (t := armed(Trigger.TRAILING)) is not None:
        adverse.append(t - (high_water - fig.equity_low))
    if floor is not None:
        adverse.append(fig.equity_low - floor)
    # The high-water mark is a figure of every account (S5.1), limits or not: a new high must
    # be seen, so it bounds the favourable side.
    favourable.append(high_water - fig.equity_high)
    if ceiling is not None:
        favourable.append(ceiling - fig.equity_high)
    if (p := armed(Trigger.DAILY_PROFIT)) is not None:
        favourable.append(p - fig.daily_high)
    if (q := armed(Trigger.WEEKLY_PROFIT)) is not None:
        favourable.append(q - fig.weekly_high)
    share = len(held)
    for symbol, holding in priced.items():
        last = price(symbol)
        assert last is not None
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
