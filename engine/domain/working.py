"""A working order as the engine shows it: the account's view, the API and the Cockpit list
each order resting at the broker, and for a mirror (S8) the leader order it mirrors."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class WorkingLine:
    broker_order_id: str | None
    client_order_id: str | None
    symbol: str
    qty: int  # signed quantity still working
    order_type: str  # "market", "liquidate", "limit", "stop", "stop_limit"
    price: Decimal | None = None
    stop: Decimal | None = None
    role: str | None = None  # "stop" or "target" for a bracket's or an OCO pair's leg
    active: bool = True  # False for a bracket leg whose entry has not filled
    mirrors: str | None = None  # the leader's broker order id this order mirrors (S8)
