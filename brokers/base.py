"""The interface every broker adapter implements, and the events it reports.

The engine talks to a broker through one :class:`BrokerSession` per connection (one login, one
token, one or more accounts). Requests never block waiting for the broker's answer: every outcome
(acceptance, rejection, fill, cancel, snapshot, session loss) comes back later as a
:class:`BrokerEvent` through the session's sink, exactly as a remote broker's would. The actors
therefore cannot tell the paper broker from a real one.

Quantities are signed integers (buy > 0, sell < 0); prices are :class:`~decimal.Decimal`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class OrderType(StrEnum):
    MARKET = "market"
    LIQUIDATE = "liquidate"  # close whatever is open in the contract when it executes


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order the engine sends. ``client_order_id`` is deterministic from its cause (S2.6)."""

    client_order_id: str
    account: str
    symbol: str
    qty: int  # signed; ignored for a liquidation
    order_type: OrderType = OrderType.MARKET


# --- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    connection: str
    account: str
    client_order_id: str | None
    broker_order_id: str
    symbol: str
    qty: int  # signed; 0 for a liquidation (its size is known only when it fills)
    order_type: OrderType


@dataclass(frozen=True, slots=True)
class OrderRejected:
    connection: str
    account: str
    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution. ``client_order_id`` is ``None`` for a trade the engine did not place."""

    connection: str
    account: str
    fill_id: str
    broker_order_id: str
    client_order_id: str | None
    symbol: str
    qty: int  # signed, never 0
    price: Decimal
    time: datetime
    order_done: bool  # no quantity of the order is left working


@dataclass(frozen=True, slots=True)
class OrderDone:
    """An order left the book without (further) fills: cancelled, or a liquidation of nothing."""

    connection: str
    account: str
    client_order_id: str | None
    broker_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    last: Decimal
    time: datetime


@dataclass(frozen=True, slots=True)
class WorkingOrder:
    broker_order_id: str
    client_order_id: str | None
    symbol: str
    qty: int  # signed remaining quantity; 0 for a liquidation
    order_type: OrderType


@dataclass(frozen=True, slots=True)
class PositionInfo:
    qty: int
    avg_price: Decimal


class OrderStatus(StrEnum):
    """Where an order the broker knows of stands (for orders of unknown outcome, S2.6)."""

    WORKING = "working"  # accepted, quantity left
    FILLED = "filled"  # executed in full
    CANCELLED = "cancelled"  # left the book without (further) fills
    REJECTED = "rejected"  # refused by the broker


@dataclass(frozen=True, slots=True)
class OrderReport:
    """One order of the trading day the broker knows by its client order id."""

    client_order_id: str
    broker_order_id: str | None
    status: OrderStatus


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """An account as the broker sees it. ``orders`` lists every order of the trading day the
    broker knows by client order id, whatever its status: an engine order absent from it never
    reached the broker (S2.6)."""

    positions: Mapping[str, PositionInfo]
    working: tuple[WorkingOrder, ...]
    balance: Decimal | None = None
    orders: tuple[OrderReport, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The broker's view of every account of a connection, in answer to a snapshot request."""

    connection: str
    request_id: str
    accounts: Mapping[str, AccountSnapshot] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SnapshotFailed:
    """A snapshot request got no usable answer: an error, a penalty ticket, a time-out, a
    refused or a partial answer. Unknown is not flat (S3.5): the engine decides nothing from
    it and asks again."""

    connection: str
    request_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class FillCorrected:
    """The broker withdrew or corrected a fill it had reported (Tradovate: a fill pushed again
    as ``Updated`` with ``active: false``). The engine's book of ``account`` no longer matches
    the broker's: it is logged as an error and the account is reconciled from a fresh snapshot.
    The fill is never counted twice."""

    connection: str
    account: str
    fill_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PricesUnavailable:
    """The broker refused or lost the price feed of ``symbol`` (a market-data subscription it
    refused): an account holding ``symbol`` is blind there, its risk guard cannot see its P&L
    (S10.3 ``stale_prices``). Reported once per outage; :class:`PricesRestored` ends it."""

    connection: str
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class PricesRestored:
    """The price feed of ``symbol`` works again after :class:`PricesUnavailable`."""

    connection: str
    symbol: str


@dataclass(frozen=True, slots=True)
class SessionLost:
    """The session dropped (broker or network outage)."""

    connection: str
    reason: str


@dataclass(frozen=True, slots=True)
class SessionRestored:
    """The session is back up (the broker or network outage ended)."""

    connection: str


@dataclass(frozen=True, slots=True)
class TokenExpired:
    connection: str


@dataclass(frozen=True, slots=True)
class TokenIssued:
    """A fresh token from the OAuth flow. ``token`` never reaches a log or a record."""

    connection: str
    token: str = field(repr=False)
    expires_at: datetime | None = None


BrokerEvent = (
    OrderAccepted
    | OrderRejected
    | Fill
    | OrderDone
    | Quote
    | Snapshot
    | SnapshotFailed
    | FillCorrected
    | PricesUnavailable
    | PricesRestored
    | SessionLost
    | SessionRestored
    | TokenExpired
    | TokenIssued
)
EventSink = Callable[[BrokerEvent], None]


class BrokerSession(ABC):
    """One login at the broker. Every method returns at once; outcomes arrive as events."""

    @abstractmethod
    def place_order(self, order: OrderRequest) -> None:
        """Send an order; ``OrderAccepted``/``OrderRejected`` then ``Fill`` events follow."""

    @abstractmethod
    def cancel_working(
        self, account: str, symbol: str | None, broker_order_ids: tuple[str, ...] = ()
    ) -> None:
        """Cancel working orders of ``account``: in ``symbol`` if given, only those ids if given."""

    @abstractmethod
    def request_snapshot(self, request_id: str) -> None:
        """Ask for positions and working orders of every account; a ``Snapshot`` follows."""

    @abstractmethod
    def close(self) -> None:
        """The engine ends the session (taken offline, deleted, shutdown). No events follow."""

    @abstractmethod
    def open(self) -> None:
        """The engine (re)opens the session; events flow again."""


class AuthorizationError(Exception):
    """An OAuth step failed; the message says why, in words fit for the user (no secrets)."""


class Broker(ABC):
    """A broker adapter: hands out one session per connection."""

    @abstractmethod
    def session(self, connection: str, accounts: tuple[str, ...], sink: EventSink) -> BrokerSession:
        """Create the session of ``connection``; its events go to ``sink`` (which never blocks)."""

    # -- OAuth re-authorization (S1.2) -----------------------------------------------------------
    # The engine owns the single-use ``state`` values and the callback; the broker builds its
    # authorize URL and exchanges the code. On success the connection's session receives
    # ``TokenIssued`` (which moves the connection to ``connected``).

    def authorize_url(self, connection: str, state: str, redirect_uri: str) -> str:
        """The URL to send the user's browser to, to authorize ``connection``."""
        raise AuthorizationError(f"{type(self).__name__} has no OAuth authorization")

    async def exchange_code(self, connection: str, code: str, redirect_uri: str) -> None:
        """Exchange an authorization ``code`` for a token of ``connection``; raises
        :class:`AuthorizationError` when the broker refuses it."""
        raise AuthorizationError(f"{type(self).__name__} has no OAuth authorization")
