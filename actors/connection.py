"""ConnectionActor: one broker login (S1).

Owns the connection state (``connected`` / ``reauth_required`` / ``disconnected``) and the S1.4
transition table, the broker session, and every request to the broker. Broker events come in
here and go to the account they concern. A state change is told to every account under the
connection, so a disconnect pauses exactly those accounts and nothing else.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

import structlog

from actors import addresses
from actors.failure import InjectedFailure, fail
from actors.risk_messages import Evaluate
from brokers.base import (
    BrokerSession,
    Fill,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderRequest,
    SessionLost,
    SessionRestored,
    Snapshot,
    TokenExpired,
    TokenIssued,
)
from engine.market import TicksPending
from engine.records import Kind, LedgerRow, Level
from engine.runtime.base import ActorContext

log = structlog.get_logger("actors.connection")


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    REAUTH_REQUIRED = "reauth_required"
    DISCONNECTED = "disconnected"


class ConnectionEvent(StrEnum):
    DISCONNECT = "disconnect"
    TAKE_OFFLINE = "take_offline"
    RECONNECT = "reconnect"
    EXPIRE_TOKEN = "expire_token"
    REAUTHORIZE = "reauthorize"


C, R, D = ConnectionState.CONNECTED, ConnectionState.REAUTH_REQUIRED, ConnectionState.DISCONNECTED
E = ConnectionEvent

# S1.4: (state, event) -> next state. A pair not listed is a no-op (recorded as info).
# "reconnect" from disconnected lands in reauth_required when the token expired meanwhile.
TRANSITIONS: dict[tuple[ConnectionState, ConnectionEvent], ConnectionState] = {
    (C, E.DISCONNECT): D,
    (C, E.TAKE_OFFLINE): D,
    (C, E.EXPIRE_TOKEN): R,
    (C, E.REAUTHORIZE): C,
    (D, E.TAKE_OFFLINE): D,
    (D, E.RECONNECT): C,
    (D, E.EXPIRE_TOKEN): D,
    (D, E.REAUTHORIZE): C,
    (R, E.TAKE_OFFLINE): D,
    (R, E.REAUTHORIZE): C,
}


# --- messages this actor receives ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """An order that passed its account's risk gate, with what the ledger needs to know."""

    request: OrderRequest
    kind: str
    cause: str


@dataclass(frozen=True, slots=True)
class PlaceOrders:
    orders: tuple[Placement, ...]


@dataclass(frozen=True, slots=True)
class CancelWorking:
    account: str
    symbol: str | None = None
    broker_order_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TakeOffline:
    pass


@dataclass(frozen=True, slots=True)
class Reconnect:
    pass


@dataclass(frozen=True, slots=True)
class StartSession:
    """Sent once after the tree is built: open the session and learn the broker's positions.
    ``reconcile`` says whether this start counts as the connection returning (S3.1)."""

    reconcile: bool


@dataclass(frozen=True, slots=True)
class SetBands:
    """From a risk actor: the prices at which ``account`` must be evaluated again (S5.2)."""

    account: str
    bands: Mapping[str, tuple[Decimal | None, Decimal | None]]


@dataclass(frozen=True, slots=True)
class ResyncAccount:
    """From the supervisor: a restarted account needs the broker's positions and orders."""

    account: str


@dataclass(frozen=True, slots=True)
class AttachAccount:
    account: str


@dataclass(frozen=True, slots=True)
class DetachAccount:
    account: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The connection is deleted or the engine stops: close the session, send nothing more."""


# --- messages this actor tells its accounts ------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateChanged:
    connection: str
    state: ConnectionState


@dataclass(frozen=True, slots=True)
class OrderNotSent:
    client_order_id: str
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class Synced:
    """The broker's positions and working orders for one account, after a (re)connect."""

    snapshot: object  # brokers.base.AccountSnapshot
    cause: str
    reconcile: bool
    start: bool = False  # the engine's start, when every connection returns at once


@dataclass(frozen=True, slots=True)
class EventsPending:
    """The session's inbox has events: take them, in order."""


class SessionInbox:
    """The broker session's events in the order the broker sent them, one stream per login,
    as a broker's websocket is. The broker pushes from whatever thread it runs on; the
    connection actor takes them in order and hands each on — so a snapshot is never handled
    ahead of a fill the broker sent before it, nor behind one it sent after. It outlives a
    restart of the connection actor: what was pushed is taken by the new one."""

    def __init__(self, nudge: Callable[[], None]) -> None:
        self._nudge = nudge
        self._lock = threading.Lock()
        self._events: deque[object] = deque()
        self._pending = False

    def push(self, event: object) -> None:
        with self._lock:
            self._events.append(event)
            if self._pending:
                return
            self._pending = True
        self._nudge()

    def take(self) -> list[object]:
        with self._lock:
            events = list(self._events)
            self._events.clear()
            self._pending = False
        return events


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    id: str
    state: ConnectionState
    offline: bool
    token_expired: bool
    reconnects: int


class ConnectionActor:
    def __init__(
        self,
        ctx: ActorContext,
        settings: ConnectionSettings,
        accounts: list[str],
        open_session: Callable[[str, tuple[str, ...]], BrokerSession],
        inbox: SessionInbox,
    ) -> None:
        self.ctx = ctx
        self.id = settings.id
        self.state = settings.state
        self.offline = settings.offline
        self.token_expired = settings.token_expired
        self.reconnects = settings.reconnects
        self.accounts = list(accounts)
        self.inbox = inbox
        self.session = open_session(self.id, tuple(accounts))
        if self.offline:
            self.session.close()  # taken offline by the user: no session until reconnected
        self._open_session = open_session
        self._pending_syncs: dict[str, tuple[bool, bool]] = {}  # request -> (reconcile, start)
        self._outgoing: list[Placement] = []
        self._closed = False
        # symbol -> account -> (low, high): prices at which the account's risk re-evaluates
        self.bands: dict[str, dict[str, tuple[Decimal | None, Decimal | None]]] = {}

    # -- dispatch ------------------------------------------------------------------------------

    def receive(self, message: object) -> None:
        match message:
            case EventsPending():
                for event in self.inbox.take():
                    self.receive(event)
            case InjectedFailure():
                fail(f"connection {self.id}")
            case ResyncAccount():
                if self.state is C:
                    self._request_snapshot(reconcile=False)
            case Fill() | OrderAccepted() | OrderRejected() | OrderDone():
                self.ctx.tell(addresses.account(message.account), message)
            case TicksPending():
                self._ticks()
            case SetBands():
                self._set_bands(message)
            case PlaceOrders():
                self._place(message.orders)
            case CancelWorking():
                if self.state is C and not self._closed:
                    self.session.cancel_working(
                        message.account, message.symbol, message.broker_order_ids
                    )
            case Snapshot():
                self._snapshot(message)
            case SessionLost():
                self._event(E.DISCONNECT, message.reason)
            case SessionRestored():
                # The broker saying the session is up is news only if we thought it down.
                if not self.offline and self.state is not C:
                    self._event(E.RECONNECT, "session restored")
            case TokenExpired():
                self._event(E.EXPIRE_TOKEN, "token expired")
            case TokenIssued():
                self._event(E.REAUTHORIZE, "re-authorized with a fresh token")
            case TakeOffline():
                self._event(E.TAKE_OFFLINE, "taken offline by the user")
            case Reconnect():
                if self.state is not D:
                    self._event(E.RECONNECT, "reconnect requested by the user")  # a no-op
                    return
                self.offline = False
                self._persist()
                self.session.open()  # the broker's SessionRestored drives the transition
            case StartSession(reconcile=reconcile):
                if self.state is C:
                    self.session.open()
                    self._request_snapshot(reconcile=reconcile, start=True)
            case AttachAccount() | DetachAccount():
                self._membership(message)
            case Shutdown():
                self._closed = True
                self.session.close()
            case _:
                log.warning("unknown message", connection=self.id, message=repr(message))

    def _membership(self, message: AttachAccount | DetachAccount) -> None:
        account = message.account
        if isinstance(message, AttachAccount):
            if account not in self.accounts:
                self.accounts.append(account)
            return
        if account in self.accounts:
            self.accounts.remove(account)
        for symbol in list(self.bands):
            self._unband(symbol, account)

    # -- S1.4 ----------------------------------------------------------------------------------

    def _event(self, event: ConnectionEvent, why: str) -> None:
        before = self.state
        after = TRANSITIONS.get((before, event))
        if event is E.EXPIRE_TOKEN:
            self.token_expired = True
        if after is None:
            self.ctx.records.activity(
                Level.INFO,
                Kind.STATE_CHANGE,
                f"connection {self.id}: {event.value} while {before.value} changes nothing",
                connection=self.id,
            )
            self._persist()
            return
        if event is E.RECONNECT and self.token_expired:
            after = R
        if event is E.REAUTHORIZE:
            self.token_expired = False
        if after is C:
            self.offline = False  # back by reauthorize too: no longer taken offline
        if event is E.TAKE_OFFLINE:
            self.offline = True
            self.session.close()
        self.state = after
        self._persist()
        if after is C and before is not C:
            self.session.open()
        if after is not before:
            self.ctx.records.activity(
                Level.INFO if after is C else Level.WARNING,
                Kind.STATE_CHANGE,
                f"connection {self.id}: {before.value} → {after.value} ({why})",
                connection=self.id,
            )
            for account in self.accounts:
                self.ctx.tell(addresses.account(account), StateChanged(self.id, after))
        if after is C and before is not C:
            self._request_snapshot(reconcile=True)  # S1.3: every return triggers S3

    def _persist(self, *, wait: bool = False) -> None:
        row = (
            self.state.value,
            int(self.offline),
            int(self.token_expired),
            self.reconnects,
            self.id,
        )

        def update(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE connections SET state = ?, offline = ?, token_expired = ?, reconnects = ?"
                " WHERE id = ?",
                row,
            )

        self.ctx.records.store.write(update, wait=wait)

    # -- reconciliation trigger (S3.1) -----------------------------------------------------------

    def _request_snapshot(self, *, reconcile: bool, start: bool = False) -> None:
        self.reconnects += 1
        # Committed before anything is sent for this return: the number names its
        # reconciliation orders (S2.6), and a restart must never reuse it.
        self._persist(wait=True)
        request_id = f"{self.id}#{self.reconnects}"
        self._pending_syncs[request_id] = (reconcile, start)
        self.session.request_snapshot(request_id)

    def _snapshot(self, snapshot: Snapshot) -> None:
        pending = self._pending_syncs.pop(snapshot.request_id, None)
        if pending is None or self.state is not C:
            return
        reconcile, start = pending
        for account in self.accounts:
            data = snapshot.accounts.get(account)
            if data is not None:
                self.ctx.tell(
                    addresses.account(account), Synced(data, snapshot.request_id, reconcile, start)
                )

    # -- ticks (S5.2): a comparison per account, not a P&L computation -------------------------

    def _set_bands(self, message: SetBands) -> None:
        for symbol in list(self.bands):
            if symbol not in message.bands:
                self._unband(symbol, message.account)
        for symbol, band in message.bands.items():
            watched = symbol in self.bands
            self.bands.setdefault(symbol, {})[message.account] = band
            if not watched:
                self.ctx.market.watch(self.id, self.ctx.address, symbol, on=True)

    def _unband(self, symbol: str, account: str) -> None:
        accounts = self.bands.get(symbol)
        if accounts is None:
            return
        accounts.pop(account, None)
        if not accounts:
            del self.bands[symbol]
            self.ctx.market.watch(self.id, self.ctx.address, symbol, on=False)

    def _ticks(self) -> None:
        for symbol, (low_seen, high_seen) in self.ctx.market.take(self.id).items():
            for account, (low, high) in self.bands.get(symbol, {}).items():
                if (low is not None and low_seen <= low) or (
                    high is not None and high_seen >= high
                ):
                    self.ctx.tell(
                        addresses.risk(account), Evaluate({symbol: (low_seen, high_seen)})
                    )

    # -- orders ----------------------------------------------------------------------------------

    def _place(self, orders: tuple[Placement, ...]) -> None:
        if self.state is not C or self._closed:
            reason = f"connection {self.id} is {self.state.value}"
            for placement in orders:
                request = placement.request
                self.ctx.tell(
                    addresses.account(request.account),
                    OrderNotSent(request.client_order_id, request.symbol, reason),
                )
            return
        if not self._outgoing:
            self.ctx.defer(self._flush)
        self._outgoing.extend(orders)

    def _flush(self) -> None:
        """Make a batch of intents durable in one transaction, then send them (S2.6)."""
        batch, self._outgoing = self._outgoing, []
        if not batch:
            return
        self.ctx.records.orders_sending(
            [
                LedgerRow(
                    p.request.client_order_id,
                    p.request.account,
                    self.id,
                    p.request.symbol,
                    p.request.qty,
                    p.request.order_type.value,
                    p.kind,
                    p.cause,
                )
                for p in batch
            ]
        )
        for placement in batch:
            self.session.place_order(placement.request)
