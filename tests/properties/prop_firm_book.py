"""An account's prop-firm keys (SEMANTICS S9) and its book, as the property checks of
:mod:`tests.properties.prop_firm_model` read them — on their own, not through the engine's code:
the weights and the cap of S9.2, the commission of S9.1, the session closes of S9.4, and the
worst case of a book of positions and resting orders that S9.2 bounds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from brokers.base import WorkingOrder
from brokers.instruments import SymbolError, split_symbol
from engine.domain.order_ids import OrderKind, kind_of
from engine.domain.resets import CHICAGO
from engine.domain.risk_profile import RiskValue

# S9.2: a micro weighs 0.1, any other contract 1 (the machine sets no contract_weights).
MICRO_ROOTS = frozenset({"MES", "MNQ", "M2K", "MYM", "MCL", "MGC"})
RESET_AT = time(17, 0)  # S5.8: the daily reset, Chicago time
FRIDAY = 4


def weight(symbol: str) -> Decimal:
    try:
        root = split_symbol(symbol).root
    except SymbolError:
        root = symbol
    return Decimal("0.1") if root in MICRO_ROOTS else Decimal(1)


def used(positions: Mapping[str, int]) -> Decimal:
    """S9.2's ``Σ |position| × weight``."""
    return sum((abs(q) * weight(s) for s, q in positions.items()), Decimal(0))


def sign(value: int) -> int:
    return (value > 0) - (value < 0)


def closing_part(position: int, qty: int) -> int:
    """The part of ``qty`` that moves ``position`` toward zero, never through it."""
    if position == 0 or sign(qty) != -sign(position):
        return 0
    return sign(qty) * min(abs(qty), abs(position))


# --- an account's keys, as the checker follows them ---------------------------------------------


@dataclass(frozen=True)
class Keys:
    """One account's S9 keys in force (its scenario ``risk`` table and every ``set_risk`` since;
    the harness has no profiles), read as SEMANTICS says: ``0`` and ``"off"`` turn a key off."""

    values: Mapping[str, RiskValue] = field(default_factory=dict)

    def with_(self, changes: Iterable[tuple[str, RiskValue]]) -> Keys:
        return Keys({**self.values, **dict(changes)})

    @property
    def cap(self) -> Decimal | None:
        value = self.values.get("max_contracts")
        return value if isinstance(value, Decimal) and value > 0 else None

    @property
    def blackout(self) -> str:
        value = self.values.get("blackout", "off")
        return value if isinstance(value, str) else "off"

    @property
    def flatten_at(self) -> time | None:
        value = self.values.get("flatten_at")
        if not isinstance(value, str) or value == "off":
            return None
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))

    def commission(self, symbol: str) -> Decimal:
        """S9.1: the root's own value in ``commissions`` wins over ``commission``."""
        table = self.values.get("commissions")
        if isinstance(table, Mapping):
            root = split_symbol(symbol).root
            if root in table:
                return Decimal(table[root])
        value = self.values.get("commission")
        return value if isinstance(value, Decimal) else Decimal(0)


def session_closes(after: datetime, until: datetime, at: time) -> list[tuple[datetime, datetime]]:
    """S9.4: each session close in ``(after, until]`` — ``at`` Chicago time on a Monday to
    Friday — with the daily reset that clears its lock (17:00 the same day, S5.8)."""
    found: list[tuple[datetime, datetime]] = []
    day: date = after.astimezone(CHICAGO).date()
    while True:
        close = datetime.combine(day, at, tzinfo=CHICAGO)
        if close > until:
            return found
        if day.weekday() <= FRIDAY and close > after:
            found.append((close, datetime.combine(day, RESET_AT, tzinfo=CHICAGO)))
        day += timedelta(days=1)


# --- an account's book as an order sent in the step found it ------------------------------------


@dataclass
class Book:
    """S2.2's ``P`` by symbol (the position with the engine's market orders on their way; a
    liquidation takes it to zero) and the engine's resting orders that could still open (its
    mirrors, not a bracket's exits; an OCO pair once, as the larger) as (buys, sells)."""

    p: dict[str, int]
    resting: dict[str, list[int]]

    def opening(self, symbol: str, qty: int) -> int:
        return qty - closing_part(self.p.get(symbol, 0), qty)

    def worst(self, symbol: str) -> int:
        """The largest ``|position|`` the symbol reaches were its resting orders of one side all
        filled."""
        p = self.p.get(symbol, 0)
        buys, sells = self.resting.get(symbol, [0, 0])
        return max(abs(p + buys), abs(p - sells))

    def beyond(self, symbol: str, qty: int, cap: Decimal) -> Decimal | None:
        """The weighted exposure the order would reach were every resting order on its side
        filled with it (every other symbol at its worst), when above ``cap`` (or when the
        account is above it already); ``None`` within."""
        opening = self.opening(symbol, qty)
        if not opening:
            return None
        others = sum(
            (self.worst(s) * weight(s) for s in self.p.keys() | self.resting.keys() if s != symbol),
            Decimal(0),
        )
        unit = weight(symbol)
        p = self.p.get(symbol, 0)
        if others + abs(p) * unit > cap:
            return others + abs(p) * unit
        buys, sells = self.resting.get(symbol, [0, 0])
        held = abs(p + closing_part(p, qty)) + (buys if qty > 0 else sells)
        reach = others + (held + abs(opening)) * unit
        return reach if reach > cap else None

    def send(self, symbol: str, qty: int, *, liquidation: bool, resting: bool) -> None:
        if liquidation:
            self.p[symbol] = 0
        elif resting:
            sides = self.resting.setdefault(symbol, [0, 0])
            sides[0 if qty > 0 else 1] += abs(qty)
        else:
            self.p[symbol] = self.p.get(symbol, 0) + qty


def resting_mirrors(
    orders: Iterable[WorkingOrder], only: set[str] | None = None
) -> dict[str, list[int]]:
    """The engine's active mirrors that are not a bracket's exits (``only``: of these client
    order ids), as (buys, sells) by symbol; the two orders of an OCO pair count once."""
    mine = [
        o
        for o in orders
        if kind_of(o.client_order_id) is OrderKind.MIRROR
        and o.parent is None
        and o.active
        and o.qty
        and (only is None or o.client_order_id in only)
    ]
    by_id = {o.broker_order_id: o for o in mine}
    out: dict[str, list[int]] = {}
    seen: set[str] = set()
    for order in mine:
        if order.broker_order_id in seen:
            continue
        size = order.qty
        sibling = by_id.get(order.oco or "")
        if sibling is not None and sign(sibling.qty) == sign(size):
            seen.add(sibling.broker_order_id)
            size = sign(size) * max(abs(size), abs(sibling.qty))
        sides = out.setdefault(order.symbol, [0, 0])
        sides[0 if size > 0 else 1] += abs(size)
    return out
