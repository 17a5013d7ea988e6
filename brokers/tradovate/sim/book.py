"""The local server's records: users, accounts, contracts, orders, fills, positions.

Each record renders itself as the JSON entity Tradovate sends (``entity()``); the extra fields
the server needs (remaining quantity, client order id, held) stay off the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


class SimError(Exception):
    """A control the local server cannot carry out (unknown account, no price, an order it
    refuses, ...); the message says which and why."""


def stamp(instant: datetime) -> str:
    """Tradovate's timestamp form: ISO 8601 in UTC with a ``Z``."""
    return instant.isoformat().replace("+00:00", "Z")


@dataclass
class SimUser:
    id: int
    name: str

    def entity(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": "Active"}


@dataclass
class SimAccount:
    id: int
    name: str
    user_id: int
    balance: Decimal
    realized: Decimal = Decimal(0)
    week_realized: Decimal = Decimal(0)

    def entity(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "userId": self.user_id,
            "accountType": "Customer",
            "active": True,
            "clearingHouseId": 1,
            "riskCategoryId": 1,
            "autoLiqProfileId": 1,
            "marginAccountType": "Speculator",
            "legalStatus": "Individual",
            "archived": False,
        }

    def cash_entity(self, open_pnl: Decimal) -> dict[str, Any]:
        total = self.balance + self.realized
        return {
            "id": self.id,
            "accountId": self.id,
            "totalCashValue": total,
            "realizedPnL": self.realized,
            "weekRealizedPnL": self.week_realized,
            "openPnL": open_pnl,
            "netLiq": total + open_pnl,
        }


@dataclass
class SimContract:
    id: int
    name: str
    root: str
    product_id: int
    value_per_point: Decimal
    tick_size: Decimal

    def entity(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "contractMaturityId": self.id + 50_000}

    def product_entity(self) -> dict[str, Any]:
        return {
            "id": self.product_id,
            "name": self.root,
            "valuePerPoint": self.value_per_point,
            "tickSize": self.tick_size,
            "currencyId": 1,
            "productType": "Futures",
            "status": "Verified",
        }


@dataclass
class SimOrder:
    id: int
    account_id: int
    contract_id: int
    side: int  # +1 buy, -1 sell
    qty: int  # ordered, > 0 (0 for a liquidation of a flat position)
    order_type: str  # Market, Limit, Stop, StopLimit
    timestamp: datetime
    cl_ord_id: str | None = None
    automated: bool = False
    liquidation: bool = False
    price: Decimal | None = None
    stop_price: Decimal | None = None
    status: str = "Working"  # Suspended: a bracket leg waiting for its entry's fill
    filled: int = 0
    command_id: int = 0
    text: str = ""
    tif: str = "Day"  # Day or GTC
    parent_id: int | None = None  # a bracket leg: its entry
    oco_id: int | None = None  # the order this one cancels when it fills
    triggered: bool = False  # a stop-limit whose stop was reached: a limit now
    version_id: int = 0  # the current orderVersion (a new one per modification)

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def working(self) -> bool:
        """Working at the market (a suspended bracket leg is not, yet)."""
        return self.status == "Working"

    @property
    def live(self) -> bool:
        """Not ended: working, or a bracket leg suspended until its entry fills."""
        return self.status in ("Working", "Suspended")

    def entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "id": self.id,
            "accountId": self.account_id,
            "contractId": self.contract_id,
            "timestamp": stamp(self.timestamp),
            "action": "Buy" if self.side > 0 else "Sell",
            "ordStatus": self.status,
            "admin": False,
        }
        if self.parent_id is not None:
            entity["parentId"] = self.parent_id
        if self.oco_id is not None:
            entity["ocoId"] = self.oco_id
        return entity

    def execution_entity(self, report_id: int, exec_type: str, at: datetime) -> dict[str, Any]:
        """An ``executionReport``: what happened to the order (``execType``) and where it stands."""
        return {
            "id": report_id,
            "commandId": self.command_id,
            "accountId": self.account_id,
            "contractId": self.contract_id,
            "timestamp": stamp(at),
            "orderId": self.id,
            "execType": exec_type,
            "ordStatus": self.status,
            "action": "Buy" if self.side > 0 else "Sell",
            "cumQty": self.filled,
            "leavesQty": max(self.remaining, 0) if self.live else 0,
        }

    def version_entity(self) -> dict[str, Any]:
        version: dict[str, Any] = {
            "id": self.version_id or self.id,
            "orderId": self.id,
            "orderQty": self.qty,
            "orderType": self.order_type,
            "timeInForce": self.tif,
        }
        if self.price is not None:
            version["price"] = self.price
        if self.stop_price is not None:
            version["stopPrice"] = self.stop_price
        return version

    def command_entity(self) -> dict[str, Any]:
        command: dict[str, Any] = {
            "id": self.command_id,
            "orderId": self.id,
            "timestamp": stamp(self.timestamp),
            "commandType": "New",
            "commandStatus": "RiskPassed",
            "isAutomated": self.automated,
        }
        if self.cl_ord_id is not None:
            command["clOrdId"] = self.cl_ord_id
        return command


@dataclass
class SimFill:
    id: int
    order_id: int
    account_id: int
    contract_id: int
    side: int
    qty: int
    price: Decimal
    timestamp: datetime
    active: bool = True  # False once withdrawn (a correction)

    def entity(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "orderId": self.order_id,
            "contractId": self.contract_id,
            "timestamp": stamp(self.timestamp),
            "tradeDate": {
                "year": self.timestamp.year,
                "month": self.timestamp.month,
                "day": self.timestamp.day,
            },
            "action": "Buy" if self.side > 0 else "Sell",
            "qty": self.qty,
            "price": self.price,
            "active": self.active,
            "finallyPaired": 0,
        }


@dataclass
class SimPosition:
    id: int
    account_id: int
    contract_id: int
    net_pos: int = 0
    net_price: Decimal = Decimal(0)
    bought: int = 0
    sold: int = 0
    timestamp: datetime | None = None

    def apply(self, qty: int, price: Decimal, value_per_point: Decimal) -> Decimal:
        """Add a signed fill; returns the realized P&L it closed."""
        if qty > 0:
            self.bought += qty
        else:
            self.sold -= qty
        before = self.net_pos
        after = before + qty
        realized = Decimal(0)
        if before == 0 or (before > 0) == (qty > 0):  # opening or adding
            held, added = abs(before), abs(qty)
            self.net_price = (self.net_price * held + price * added) / (held + added)
        else:
            closed = min(abs(before), abs(qty))
            direction = 1 if before > 0 else -1
            realized = (price - self.net_price) * closed * direction * value_per_point
            if after != 0 and (after > 0) != (before > 0):  # crossed zero
                self.net_price = price
        if after == 0:
            self.net_price = Decimal(0)
        self.net_pos = after
        return realized

    def entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "id": self.id,
            "accountId": self.account_id,
            "contractId": self.contract_id,
            "netPos": self.net_pos,
            "bought": self.bought,
            "sold": self.sold,
            "prevPos": 0,
        }
        if self.net_pos:
            entity["netPrice"] = self.net_price
        if self.timestamp is not None:
            entity["timestamp"] = stamp(self.timestamp)
        return entity
