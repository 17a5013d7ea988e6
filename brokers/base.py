"""The interface every broker adapter implements, and the events it reports.

The engine talks to a broker through one :class:`BrokerSession` per connection (one login, one
token, one or more accounts). Requests never block waiting for the broker's answer: every outcome
(acceptance, rejection, fill, cancel, snapshot, session loss) comes back later as a
:class:`BrokerEvent` through the session's sink, exactly as a remote broker's would. The actors
therefore cannot tell the paper broker from a real one.

Quantities are signed integers (buy > 0, sell < 0); prices are :class:`~decimal.Decimal`.

Working orders (S8): limit, stop and stop-limit orders with a time in force; a bracket is an
entry whose stop-loss and take-profit legs (one cancelling the other) work once it fills, for its
filled quantity (Tradovate ``placeOSO``); a standalone OCO pair is two orders of which the first
to fill cancels the other (``placeOCO``). The broker reports each order as it is accepted
(:class:`OrderAccepted`, legs included, linked by broker order id), changed
(:class:`OrderUpdated`: modified, or a leg made active by its entry's fill), filled
(:class:`Fill`) and ended (:class:`OrderDone`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class OrderType(StrEnum):
    MARKET = "market"
    LIQUIDATE = "liquidate"  # close whatever is open in the contract when it executes
    LIMIT = "limit"  # fills at its price or better (S8.10)
    STOP = "stop"  # becomes a market order once ``last`` reaches its stop
    STOP_LIMIT = "stop_limit"  # becomes a limit at its price once ``last`` reaches its stop

    @property
    def working(self) -> bool:
        """Whether an order of this type rests at the broker until the market reaches it."""
        return self in _RESTING


_RESTING = frozenset({OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT})


class TimeInForce(StrEnum):
    DAY = "day"  # ends at the close of the trading day
    GTC = "gtc"  # good till cancelled


class LegRole(StrEnum):
    """Which leg of a bracket or of an OCO pair an order is."""

    STOP = "stop"  # the stop-loss
    TARGET = "target"  # the take-profit


def check_terms(order_type: OrderType, price: Decimal | None, stop: Decimal | None) -> str | None:
    """What is wrong with an order's prices for its type, or ``None``: a limit needs ``price``,
    a stop needs ``stop``, a stop-limit both; a market order or a liquidation neither. Prices
    must be positive and finite."""
    needs_price = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    needs_stop = order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    for name, value, needed in (("price", price, needs_price), ("stop", stop, needs_stop)):
        if needed and value is None:
            return f"a {order_type.value} order needs a {name}"
        if not needed and value is not None:
            return f"a {order_type.value} order has no {name}"
        if value is not None and (not value.is_finite() or value <= 0):
            return f"{name} {value} is not a positive price"
    return None


@dataclass(frozen=True, slots=True)
class LegRequest:
    """A bracket's leg or an OCO pair's second order, sent with the order it belongs to. Its
    side is the entry's opposite for a bracket leg and the first order's own for an OCO pair;
    its quantity follows the order it belongs to."""

    client_order_id: str
    role: LegRole
    order_type: OrderType  # limit, stop or stop_limit
    price: Decimal | None = None
    stop: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order the engine sends. ``client_order_id`` is deterministic from its cause (S2.6).

    A working order (limit, stop, stop-limit) carries its prices and time in force. With
    ``bracket`` it is a bracket's entry and the legs work once it fills, for its filled quantity;
    with ``oco`` it and that order form a standalone OCO pair (``role`` names its own leg)."""

    client_order_id: str
    account: str
    symbol: str
    qty: int  # signed; ignored for a liquidation
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    stop: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    bracket: tuple[LegRequest, ...] = ()
    oco: LegRequest | None = None
    role: LegRole | None = None

    def client_order_ids(self) -> tuple[str, ...]:
        """Every client order id this request places: its own and its legs'."""
        legs = self.bracket if self.oco is None else (*self.bracket, self.oco)
        return (self.client_order_id, *(leg.client_order_id for leg in legs))


@dataclass(frozen=True, slots=True)
class ModifyRequest:
    """A change to a working order: its total quantity (unsigned, never below what has filled),
    its price or its stop price; ``None`` keeps a value as it is."""

    account: str
    broker_order_id: str
    client_order_id: str | None = None
    qty: int | None = None
    price: Decimal | None = None
    stop: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    """The broker order ids of what one request of an account's owner placed at a broker that
    takes them (the paper broker, the local Tradovate server): a working order (``entry``) with
    its bracket's legs, or a standalone OCO pair (``entry`` is then ``None``)."""

    entry: str | None
    stop: str | None = None
    target: str | None = None


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
    price: Decimal | None = None
    stop: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    role: LegRole | None = None  # a bracket's or an OCO pair's leg
    parent: str | None = None  # a bracket leg: its entry's broker order id
    oco: str | None = None  # the broker order id of the order it cancels when it fills
    active: bool = True  # a bracket leg works only once its entry fills (then OrderUpdated)
    # The broker ids of the orders placed with this one and reported right after it (a
    # bracket entry's legs, an OCO pair's second order), when the broker knows them here.
    legs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderUpdated:
    """A working order changed at the broker: modified (quantity, price, stop), or a bracket
    leg made active, or resized, by its entry's fill. ``qty`` is the signed quantity still
    working, ``filled`` the unsigned quantity filled so far."""

    connection: str
    account: str
    client_order_id: str | None
    broker_order_id: str
    symbol: str
    qty: int
    price: Decimal | None = None
    stop: Decimal | None = None
    active: bool = True
    filled: int = 0


@dataclass(frozen=True, slots=True)
class ModifyRejected:
    """The broker refused a modification; the order stands as it was."""

    connection: str
    account: str
    broker_order_id: str
    client_order_id: str | None
    reason: str


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
    price: Decimal | None = None
    stop: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    role: LegRole | None = None
    parent: str | None = None
    oco: str | None = None
    active: bool = True
    filled: int = 0  # unsigned quantity filled so far


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
    filled: int = 0  # unsigned quantity filled


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
    | OrderUpdated
    | ModifyRejected
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
        """Send an order (a bracket or an OCO pair with its legs, in one request);
        ``OrderAccepted`` (one per order placed) or ``OrderRejected`` (one per client order id
        of the request), then ``Fill``/``OrderUpdated``/``OrderDone`` events follow."""

    def place_orders(self, orders: Sequence[OrderRequest]) -> None:
        """Send a login's batch of orders in one call, in their order: the events of each are
        those of :meth:`place_order`. An adapter that can hand a batch over at once (one
        wake-up of its I/O loop, one lock) overrides this; the default places them in turn."""
        for order in orders:
            self.place_order(order)

    @abstractmethod
    def modify_order(self, request: ModifyRequest) -> None:
        """Change a working order; ``OrderUpdated`` or ``ModifyRejected`` follows."""

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
