"""The paper broker's bookkeeping: net positions with average entry prices, and resting orders.

Nothing here locks or emits events; :mod:`brokers.paper.broker` owns the lock and the sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from brokers.base import OrderType, PositionInfo, WorkingOrder


class PaperBrokerError(Exception):
    """A programming error in a call to the paper broker (unknown account, zero quantity, ...)."""


@dataclass(slots=True)
class Position:
    qty: int
    avg_price: Decimal


@dataclass(slots=True)
class PaperOrder:
    """An order resting at the paper broker (held engine order or manual working order)."""

    broker_order_id: str
    client_order_id: str | None
    connection: str
    account: str
    symbol: str
    qty: int  # signed remaining quantity; 0 for a liquidation
    order_type: OrderType

    def working(self) -> WorkingOrder:
        return WorkingOrder(
            broker_order_id=self.broker_order_id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            qty=self.qty,
            order_type=self.order_type,
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
        self._working[order.broker_order_id] = order

    def get_working(self, broker_order_id: str) -> PaperOrder | None:
        return self._working.get(broker_order_id)

    def remove_working(self, broker_order_id: str) -> PaperOrder | None:
        return self._working.pop(broker_order_id, None)

    def all_working(self) -> list[PaperOrder]:
        """Every working order, in the order they were accepted."""
        return list(self._working.values())

    def working_of(self, account: str, symbol: str | None = None) -> list[PaperOrder]:
        return [
            order
            for order in self._working.values()
            if order.account == account and (symbol is None or order.symbol == symbol)
        ]
