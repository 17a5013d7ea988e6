"""Positions with average entry price, and P&L in exact decimal arithmetic (S5.1)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(slots=True)
class Position:
    """A net position in one contract. ``reference`` is the price P&L is measured from: the
    average entry price, or the last daily-reset mark (S5.8)."""

    qty: int = 0
    reference: Decimal = ZERO

    def apply(self, qty: int, price: Decimal, point_value: Decimal) -> Decimal:
        """Apply a signed fill; return the realized P&L it produces (money)."""
        if qty == 0:
            raise ValueError("a fill of zero contracts")
        realized = ZERO
        if self.qty == 0 or (self.qty > 0) == (qty > 0):
            total = self.qty + qty
            self.reference = (self.reference * abs(self.qty) + price * abs(qty)) / abs(total)
            self.qty = total
            return realized
        closed = min(abs(qty), abs(self.qty))
        direction = 1 if self.qty > 0 else -1
        realized = (price - self.reference) * closed * direction * point_value
        remaining = self.qty + qty
        if remaining == 0:
            self.qty, self.reference = 0, ZERO
        elif (remaining > 0) != (self.qty > 0):
            self.qty, self.reference = remaining, price
        else:
            self.qty = remaining
        return realized

    def unrealized(self, last: Decimal | None, point_value: Decimal) -> Decimal:
        if self.qty == 0 or last is None:
            return ZERO
        return (last - self.reference) * self.qty * point_value
