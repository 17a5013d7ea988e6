"""The paper broker's bookkeeping: net positions with average entry prices, and resting orders.

Nothing here locks or emits events; :mod:`brokers.paper.broker` owns the lock and the sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from brokers.base import (
    LegRole,
    OrderAccepted,
    OrderType,
    OrderUpdated,
    PositionInfo,
    TimeInForce,
    WorkingOrder,
)


class PaperBrokerError(Exception):
    """A programming error in a call to the paper broker (unknown account, zero quantity, ...)."""


@dataclass(slots=True)
class Position:
    qty: int
    avg_price: Decimal


@dataclass(slots=True)
class PaperOrder:
    """An order resting at the paper broker: a working order (limit, stop, stop-limit, a
    bracket's leg, an OCO pair's order), a held engine order, or a manual resting order."""

    broker_order_id: str
    client_order_id: str | None
    connection: str
    account: str
    symbol: str
    qty: int  # signed remaining quantity; 0 for a liquidation
    order_type: OrderType
    price: Decimal | None = None
    stop: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    role: LegRole | None = None
    parent: str | None = None  # a bracket leg: its entry's broker order id
    oco: str | None = None  # the order it cancels when it fills (and that cancels it)
    active: bool = True  # a bracket leg works once its entry has filled
    filled: int = 0  # unsigned quantity filled so far
    triggered: bool = False  # a stop-limit whose stop was reached: a limit at its price now

    def working(self) -> WorkingOrder:
        return WorkingOrder(
            broker_order_id=self.broker_order_id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            qty=self.qty,
            order_type=self.order_type,
            price=self.price,
            stop=self.stop,
            tif=self.tif,
            role=self.role,
            parent=self.parent,
            oco=self.oco,
            active=self.active,
            filled=self.filled,
        )

    def accepted(self, legs: tuple[str, ...] = ()) -> OrderAccepted:
        """The event of its acceptance; ``legs``: the orders placed with it."""
        return OrderAccepted(
            self.connection,
            self.account,
            self.client_order_id,
            self.broker_order_id,
            self.symbol,
            self.qty,
            self.order_type,
            price=self.price,
            stop=self.stop,
            tif=self.tif,
            role=self.role,
            parent=self.parent,
            oco=self.oco,
            active=self.active,
            legs=legs,
        )

    def updated(self) -> OrderUpdated:
        """The event of a change: modified, or a leg activated or resized."""
        return OrderUpdated(
            self.connection,
            self.account,
            self.client_order_id,
            self.broker_order_id,
            self.symbol,
            self.qty,
            price=self.price,
            stop=self.stop,
            active=self.active,
            filled=self.filled,
        )


def apply_fill(position: Position | None, qty: int, price: Decimal) -> Position | None:
    """The position after a fill of ``qty`` at ``price``; ``None`` when flat.

    Adding moves the average (weighted by quantity), reducing keeps it, crossing zero starts the
    new side at the fill price.
    """
    if qty == 0:
        raise PaperBrokerError("a fill of 0 contracts")
    if position is None or position.qty == 0:
        return Position(qty, price)
    new_qty = position.qty + qty
    if new_qty == 0:
        return None
    if (position.qty > 0) == (qty > 0):  # adding to the position
        held, added = abs(position.qty), abs(qty)
        avg = (position.avg_price * held + price * added) / (held + added)
        return Position(new_qty, avg)
    if (new_qty > 0) == (position.qty > 0):  # reducing, same side left
        return Position(new_qty, position.avg_price)
    return Position(new_qty, price)  # crossed zero


class Book:
    """Positions per (account, symbol) and the working orders, in the order they were accepted."""

    def __init__(self) -> None:
        self._positions: dict[str, dict[str, Position]] = {}
        self._working: dict[str, PaperOrder] = {}
        # The working orders of each account, and the working legs of each bracket entry, in
        # the same (acceptance) order: every fill asks for its order's legs and every cancel
        # for its account's orders, and a scan of the whole book for each would make a
        # fan-out cost the square of its size.
        self._of_account: dict[str, dict[str, PaperOrder]] = {}
        self._legs: dict[str, dict[str, PaperOrder]] = {}

    # --- positions --------------------------------------------------------------------------------

    def position(self, account: str, symbol: str) -> int:
        pos = self._positions.get(account, {}).get(symbol)
        return pos.qty if pos is not None else 0

    def fill(self, account: str, symbol: str, qty: int, price: Decimal) -> None:
        by_symbol = self._positions.setdefault(account, {})
        after = apply_fill(by_symbol.get(symbol), qty, price)
        if after is None:
            by_symbol.pop(symbol, None)
            if not by_symbol:
                del self._positions[account]
        else:
            by_symbol[symbol] = after

    def positions(self, account: str) -> dict[str, PositionInfo]:
        return {
            symbol: PositionInfo(pos.qty, pos.avg_price)
            for symbol, pos in sorted(self._positions.get(account, {}).items())
        }

    def all_positions(self) -> dict[str, dict[str, Position]]:
        """Every non-zero position, by account and symbol (copies: for the state file)."""
        return {
            account: {symbol: Position(pos.qty, pos.avg_price) for symbol, pos in held.items()}
            for account, held in self._positions.items()
        }

    def set_position(self, account: str, symbol: str, qty: int, avg_price: Decimal) -> None:
        """Put a position back as it was (loading the state file); 0 leaves it flat."""
        if qty == 0:
            return
        self._positions.setdefault(account, {})[symbol] = Position(qty, avg_price)

    # --- working orders ---------------------------------------------------------------------------

    def add_working(self, order: PaperOrder) -> None:
        """Add ``order`` (its account and ``parent`` set already: they never change)."""
        self._working[order.broker_order_id] = order
        _index(self._of_account, order.account, order)
        if order.parent is not None:
            _index(self._legs, order.parent, order)

    def get_working(self, broker_order_id: str) -> PaperOrder | None:
        return self._working.get(broker_order_id)

    def remove_working(self, broker_order_id: str) -> PaperOrder | None:
        order = self._working.pop(broker_order_id, None)
        if order is not None:
            _unindex(self._of_account, order.account, broker_order_id)
            if order.parent is not None:
                _unindex(self._legs, order.parent, broker_order_id)
        return order

    def all_working(self) -> list[PaperOrder]:
        """Every working order, in the order they were accepted."""
        return list(self._working.values())

    def legs_of(self, entry: str) -> list[PaperOrder]:
        """The working legs of the bracket whose entry is ``entry``."""
        legs = self._legs.get(entry)
        return [] if legs is None else list(legs.values())

    def working_of(self, account: str, symbol: str | None = None) -> list[PaperOrder]:
        orders = self._of_account.get(account, {}).values()
        return [order for order in orders if symbol is None or order.symbol == symbol]


def _index(index: dict[str, dict[str, PaperOrder]], key: str, order: PaperOrder) -> None:
    index.setdefault(key, {})[order.broker_order_id] = order


def _unindex(index: dict[str, dict[str, PaperOrder]], key: str, broker_order_id: str) -> None:
    orders = index[key]
    del orders[broker_order_id]
    if not orders:
        del index[key]
