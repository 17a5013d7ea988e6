"""One order as the adapter knows it from Tradovate's pieces (:mod:`.orders`): side, quantity,
terms from its latest ``orderVersion``, status, links (a bracket leg's entry, an OCO sibling),
what has filled, and whether the engine has heard of it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from brokers.base import LegRole, OrderType, TimeInForce, WorkingOrder
from brokers.tradovate.entities import SUSPENDED, TvOrder, TvOrderVersion
from brokers.tradovate.working import order_type_of, role_of, tif_of


@dataclass
class Tracked:
    order_id: int
    account: str
    symbol: str
    side: int
    client_order_id: str | None = None
    order_type: OrderType = OrderType.MARKET
    qty: int | None = None  # signed quantity ordered; None until known; 0 for a liquidation
    filled: int = 0
    status: str = "Working"
    accepted: bool = False
    finished: bool = False
    price: Decimal | None = None
    stop: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    role: LegRole | None = None
    parent: int | None = None  # a bracket leg's entry
    oco: int | None = None  # the order it cancels when it fills
    version: int = -1  # the id of the orderVersion its terms are from

    def remaining(self) -> int:
        if self.order_type is OrderType.LIQUIDATE or self.qty is None:
            return 0
        return self.qty - self.side * self.filled

    @property
    def active(self) -> bool:
        return self.status != SUSPENDED

    def terms(self) -> tuple[object, ...]:
        return (self.qty, self.order_type, self.price, self.stop, self.tif, self.active)

    def link(self, order: TvOrder) -> None:
        self.parent = order.parent_id if order.parent_id is not None else self.parent
        self.oco = order.oco_id if order.oco_id is not None else self.oco

    def apply(self, version: TvOrderVersion) -> None:
        self.version = version.id
        self.qty = self.side * version.qty
        self.order_type = order_type_of(version.order_type, self.order_type)
        self.price, self.stop = version.price, version.stop_price
        if version.time_in_force:
            self.tif = tif_of(version.time_in_force)

    def working_order(self) -> WorkingOrder:
        return WorkingOrder(
            str(self.order_id),
            self.client_order_id,
            self.symbol,
            self.remaining(),
            self.order_type,
            self.price,
            self.stop,
            self.tif,
            self.role_or_guess(),
            None if self.parent is None else str(self.parent),
            None if self.oco is None else str(self.oco),
            self.active,
            self.filled,
        )

    def role_or_guess(self) -> LegRole | None:
        """Its role as placed, or (an order placed by hand) from its type when it is linked."""
        if self.role is not None or (self.parent is None and self.oco is None):
            return self.role
        return role_of(self.order_type)
