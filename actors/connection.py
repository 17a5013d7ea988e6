"""ConnectionActor: one broker login (S1).

Owns the connection state (``connected`` / ``reauth_required`` / ``disconnected``), moved by the
S1.4 transition table (``engine.domain.connections``), the broker session, and every request to
the broker. Broker events come in here and go to the account they concern. A state change is
told to every account under the connection, so a disconnect pauses exactly those accounts and
nothing else.

Snapshots (S3.5): the broker's positions and working orders of every account are asked for
after each return to ``connected`` and at the engine's start, one attempt at a time. Only a
successful answer that covers every account of the login confirms them; a failed or partial
answer is unknown — the accounts are told so, nothing is decided from it, and it is asked for
again on S5.6's schedule until it succeeds or the connection leaves ``connected``.

Orders leave only once their intents are durable (S2.6). While the engine cannot make its state
durable (a full disk, say) the batch's copies and reconciliations are held back — each told to
its account as not sent — and only its liquidations go out (decision 0014); when the engine is
healthy again each leader's connection reconciles its followers, as after a return (S3.1).

Once the engine begins to stop (``ActorContext.stopping``) nothing more is placed: an order
decided after that is told to its account as not sent, before its intent is written, and a
batch whose intents were being written as the stop began sends none of what is left of it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import structlog

from actors import addresses
from actors.failure import InjectedFailure, fail
from actors.messages.account import OrderNotSent, SnapshotUnknown, StateChanged, Synced
from actors.messages.connection import (
    AttachAccount,
    CancelWorking,
    DetachAccount,
    DurabilityRestored,
    EventsPending,
    ModifyOrder,
    Placement,
    PlaceOrders,
    Reconnect,
    RefreshAccount,
    ResyncAccount,
    RetrySnapshot,
    SetBands,
    Shutdown,
    SnapshotTimedOut,
    StartSession,
    TakeOffline,
)
from actors.messages.risk import Evaluate
from brokers.base import (
    BrokerSession,
    Fill,
    FillCorrected,
    ModifyRejected,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderRequest,
    OrderUpdated,
    PricesRestored,
    PricesUnavailable,
    SessionLost,
    SessionRestored,
    Snapshot,
    SnapshotFailed,
    TokenExpired,
    TokenIssued,
)
from engine.domain.activity import Kind, Level
from engine.domain.backoff import backoff
from engine.domain.connections import (
    TRANSITIONS,
    ConnectionEvent,
    ConnectionState,
    token_expired_after,
)
from engine.domain.ledger import NOT_SENT, LedgerRow, sent_unlogged
from engine.host.base import ActorContext
from engine.host.market import TicksPending

log = structlog.get_logger("actors.connection")

# A snapshot attempt the broker has not answered (neither a snapshot nor a failure) by then is
# unknown (S3.5), so that an answer lost on the way never leaves the accounts waiting for good.
SNAPSHOT_TIMEOUT = timedelta(seconds=30)
HELD_BACK = "held back: the engine cannot make its state durable"
STOPPING = "the engine is stopping"


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


@dataclass(slots=True)
class _Wanted:
    """The snapshot the connection still needs: what its answer is for, and its attempts."""

    reconcile: bool
    start: bool
    corrected: set[str] = field(default_factory=set)  # accounts a fill correction unsettled
    since: str = ""  # the first attempt's request id
    last: str = ""  # the latest attempt's request id
    in_flight: bool = False
    failures: int = 0


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    id: str
    state: ConnectionState
    offline: bool
    token_expired: bool
    reconnects: int


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """What the API and the metrics read of a connection."""

    state: str
    offline: bool


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
        # The snapshot still needed since the connection last became connected (S3.5): one
        # attempt in flight at most; ``None`` once answered, or when the connection leaves.
        self._wanted: _Wanted | None = None
        self._outgoing: list[Placement] = []
        self._closed = False
        # symbol -> account -> (low, high, side): prices at which the account's risk
        # re-evaluates, and the side of its position (0: unknown, either side may breach;
        # None: breaching already, no alarm).
        self.bands: dict[str, dict[str, tuple[Decimal | None, Decimal | None, int | None]]] = {}

    def view(self) -> ConnectionView:
        return ConnectionView(self.state.value, bool(self.offline))

    # -- dispatch ------------------------------------------------------------------------------

    def receive(self, message: object) -> None:
        match message:
            case EventsPending():
                for event in self.inbox.take():
                    self.receive(event)
            case InjectedFailure():
                fail(f"connection {self.id}")
            case (
                ResyncAccount()
                | RefreshAccount()
                | RetrySnapshot()
                | SnapshotTimedOut()
                | Snapshot()
                | SnapshotFailed()
                | DurabilityRestored()
            ):
                self._snapshots(message)
            case (
                Fill()
                | OrderAccepted()
                | OrderRejected()
                | OrderDone()
                | OrderUpdated()
                | ModifyRejected()
            ):
                self.ctx.tell(addresses.account(message.account), message)
            case FillCorrected() | PricesUnavailable() | PricesRestored():
                self._unconfirmed(message)
            case TicksPending():
                self._ticks()
            case SetBands():
                self._set_bands(message)
            case PlaceOrders():
                self._place(message.orders)
            case CancelWorking() | ModifyOrder():
                self._change_working(message)
            case SessionLost():
                self._event(ConnectionEvent.DISCONNECT, message.reason)
            case SessionRestored():
                # The broker saying the session is up is news only if we thought it down.
                if not self.offline and self.state is not ConnectionState.CONNECTED:
                    self._event(ConnectionEvent.RECONNECT, "session restored")
            case TokenExpired():
                self._event(ConnectionEvent.EXPIRE_TOKEN, "token expired")
            case TokenIssued():
                self._event(ConnectionEvent.REAUTHORIZE, "re-authorized with a fresh token")
            case TakeOffline():
                self._event(ConnectionEvent.TAKE_OFFLINE, "taken offline by the user")
            case Reconnect():
                if self.state is not ConnectionState.DISCONNECTED:
                    self._event(
                        ConnectionEvent.RECONNECT, "reconnect requested by the user"
                    )  # a no-op
                    return
                self.offline = False
                self._persist()
                self.session.open()  # the broker's SessionRestored drives the transition
            case StartSession(reconcile=reconcile):
                if self.state is ConnectionState.CONNECTED:
                    self.session.open()
                    self._request_snapshot(reconcile=reconcile, start=True)
            case AttachAccount() | DetachAccount():
                self._membership(message)
            case Shutdown():
                self._closed = True
                self._wanted = None
                self.session.close()
            case _:
                log.warning("unknown message", connection=self.id, message=repr(message))

    def _change_working(self, message: CancelWorking | ModifyOrder) -> None:
        """Cancel or modify working orders: only over a live session (a request that cannot
        reach the broker is not queued; the return's reconciliation sees what still works)."""
        if self.state is not ConnectionState.CONNECTED or self._closed:
            return
        if isinstance(message, ModifyOrder):
            self.session.modify_order(message.request)
        else:
            self.session.cancel_working(message.account, message.symbol, message.broker_order_ids)

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
        after = TRANSITIONS.get((before, event, self.token_expired))
        self.token_expired = token_expired_after(event, self.token_expired)
        if after is None:
            self.ctx.storage.activity(
                Level.INFO,
                Kind.STATE_CHANGE,
                f"connection {self.id}: {event.value} while {before.value} changes nothing",
                connection=self.id,
            )
            self._persist()
            return
        connected = ConnectionState.CONNECTED
        if after is connected:
            self.offline = False  # back by reauthorize too: no longer taken offline
        if event is ConnectionEvent.TAKE_OFFLINE:
            self.offline = True
            self.session.close()
        if after is not connected or before is not connected:
            # S3.5: a snapshot still wanted is given up when the connection leaves; a return
            # asks afresh (answers to earlier attempts are then ignored).
            self._wanted = None
        self.state = after
        self._persist()
        if after is connected and before is not connected:
            self.session.open()
        if after is not before:
            self.ctx.storage.activity(
                Level.INFO if after is connected else Level.WARNING,
                Kind.STATE_CHANGE,
                f"connection {self.id}: {before.value} → {after.value} ({why})",
                connection=self.id,
            )
            for account in self.accounts:
                self.ctx.tell(addresses.account(account), StateChanged(self.id, after))
        if after is connected and before is not connected:
            self._request_snapshot(reconcile=True)  # S1.3: every return triggers S3

    def _persist(self, *, wait: bool = False) -> bool:
        return self.ctx.storage.save_connection(
            self.id,
            self.state,
            offline=self.offline,
            token_expired=self.token_expired,
            reconnects=self.reconnects,
            wait=wait,
        )

    # -- snapshots: the reconciliation trigger (S3.1) and unknown answers (S3.5) ----------------

    def _snapshots(self, message: object) -> None:
        match message:
            case ResyncAccount():
                if self.state is ConnectionState.CONNECTED:
                    self._request_snapshot(reconcile=False)
            case RefreshAccount(account=account):
                if (
                    self.state is ConnectionState.CONNECTED
                    and not self._closed
                    and account in self.accounts
                ):
                    self._request_snapshot(reconcile=False, corrected=(account,))
            case RetrySnapshot(after=after):
                self._retry_snapshot(after)
            case SnapshotTimedOut(request=request):
                if self._answers(request):
                    self._snapshot_failed(
                        request, f"no answer within {SNAPSHOT_TIMEOUT.total_seconds():g} s"
                    )
            case Snapshot():
                self._snapshot(message)
            case SnapshotFailed():
                if self._answers(message.request_id):
                    self._snapshot_failed(message.request_id, message.reason)
            case DurabilityRestored():
                # Orders were held back meanwhile: reconcile as after a return (S3.1), so a
                # follower whose closing copy was held is brought back toward its leader.
                if self.state is ConnectionState.CONNECTED and not self._closed:
                    self._request_snapshot(reconcile=True)

    def _request_snapshot(
        self, *, reconcile: bool, start: bool = False, corrected: tuple[str, ...] = ()
    ) -> None:
        """Ask for the broker's positions and working orders of every account. A snapshot
        still wanted (in flight, or waiting for its retry) takes this request's purposes on:
        at most one attempt is in flight per connection, and its answer serves them all."""
        wanted = self._wanted
        if wanted is not None:
            wanted.reconcile = wanted.reconcile or reconcile
            wanted.start = wanted.start or start
            wanted.corrected.update(corrected)
            return
        self._wanted = _Wanted(reconcile, start, set(corrected))
        self._attempt()

    def _attempt(self) -> None:
        wanted = self._wanted
        assert wanted is not None
        self.reconnects += 1
        # Committed before anything is sent for this return: the number names its
        # reconciliation orders (S2.6), and a restart must never reuse it.
        saved = self._persist(wait=True)
        request_id = f"{self.id}#{self.reconnects}"
        wanted.last = request_id
        wanted.since = wanted.since or request_id
        wanted.in_flight = True
        if not saved:  # not asked: unknown, asked again on S5.6's schedule (S3.5)
            self._snapshot_failed(request_id, "the engine cannot make its state durable")
            return
        self.ctx.schedule(SNAPSHOT_TIMEOUT, self.ctx.address, SnapshotTimedOut(request_id))
        self.session.request_snapshot(request_id)

    def _answers(self, request_id: str) -> bool:
        """Whether ``request_id`` is the attempt in flight (an answer to an attempt given up —
        the connection left ``connected`` since — is ignored)."""
        wanted = self._wanted
        return (
            wanted is not None
            and wanted.in_flight
            and wanted.last == request_id
            and self.state is ConnectionState.CONNECTED
            and not self._closed
        )

    def _snapshot(self, snapshot: Snapshot) -> None:
        if not self._answers(snapshot.request_id):
            return
        missing = [a for a in self.accounts if a not in snapshot.accounts]
        if missing:
            # A partial answer is unknown, not flat, for every account of it (S3.5).
            self._snapshot_failed(
                snapshot.request_id, f"partial answer: no positions for {', '.join(missing)}"
            )
            return
        wanted, self._wanted = self._wanted, None
        assert wanted is not None
        for account in self.accounts:
            self.ctx.tell(
                addresses.account(account),
                Synced(
                    snapshot.accounts[account],
                    snapshot.request_id,
                    wanted.reconcile or account in wanted.corrected,
                    wanted.start,
                ),
            )

    def _snapshot_failed(self, request_id: str, reason: str) -> None:
        """S3.5: decide nothing, tell the accounts waiting on it, and ask again after S5.6's
        wait, on the engine clock."""
        wanted = self._wanted
        assert wanted is not None
        wanted.in_flight = False
        wanted.failures += 1
        delay = backoff(wanted.failures)
        log.warning(
            "snapshot unknown",
            connection=self.id,
            request=request_id,
            reason=reason,
            failures=wanted.failures,
            retry_in_s=delay.total_seconds(),
        )
        for account in self.accounts:
            self.ctx.tell(
                addresses.account(account),
                SnapshotUnknown(
                    self.id,
                    wanted.since,
                    reason,
                    wanted.failures,
                    delay,
                    wanted.reconcile or account in wanted.corrected,
                    wanted.start,
                ),
            )
        self.ctx.schedule(delay, self.ctx.address, RetrySnapshot(request_id))

    def _retry_snapshot(self, after: str) -> None:
        wanted = self._wanted
        if wanted is None or wanted.in_flight or wanted.last != after:
            return  # answered, given up, or a timer of an earlier actor or wait
        if self.state is not ConnectionState.CONNECTED or self._closed:
            return
        self._attempt()

    def _unconfirmed(self, event: FillCorrected | PricesUnavailable | PricesRestored) -> None:
        """What the broker took back or cannot give. A withdrawn fill goes to its account
        (which asks for the fresh snapshot it is reconciled from, once per fill); a price
        feed refused or back, to every account of the login."""
        if isinstance(event, FillCorrected):
            self.ctx.tell(addresses.account(event.account), event)
            return
        for account in self.accounts:
            self.ctx.tell(addresses.account(account), event)

    # -- ticks (S5.2): a comparison per account, not a P&L computation -------------------------

    def _set_bands(self, message: SetBands) -> None:
        for symbol in list(self.bands):
            if symbol not in message.bands:
                self._unband(symbol, message.account)
        for symbol, (low, high) in message.bands.items():
            watched = symbol in self.bands
            side = message.sides.get(symbol, 0)
            self.bands.setdefault(symbol, {})[message.account] = (low, high, side)
            self._alarm(symbol)
            if not watched:
                self.ctx.market.watch(self.id, self.ctx.address, symbol, on=True)

    def _alarm(self, symbol: str) -> None:
        """The market's alarm for ``symbol``: the first price, either way, at which one of the
        accounts may breach — beyond its band on the side its position loses, or on either
        side where that is not known (decision 0030)."""
        low: Decimal | None = None
        high: Decimal | None = None
        for band_low, band_high, side in self.bands.get(symbol, {}).values():
            if side is None:
                continue
            if side >= 0 and band_low is not None and (low is None or band_low > low):
                low = band_low
            if side <= 0 and band_high is not None and (high is None or band_high < high):
                high = band_high
        self.ctx.market.alarm(self.id, symbol, low, high)

    def _unband(self, symbol: str, account: str) -> None:
        accounts = self.bands.get(symbol)
        if accounts is None:
            return
        accounts.pop(account, None)
        self._alarm(symbol)
        if not accounts:
            del self.bands[symbol]
            self.ctx.market.watch(self.id, self.ctx.address, symbol, on=False)

    def _ticks(self) -> None:
        for symbol, (low_seen, high_seen) in self.ctx.market.take(self.id).items():
            for account, (low, high, side) in self.bands.get(symbol, {}).items():
                below = low is not None and low_seen <= low
                above = high is not None and high_seen >= high
                if below or above:
                    # Beyond the band on the side that loses, a breach may be due: evaluated
                    # before the new highs waiting on this thread (decision 0030).
                    urgent = side is not None and ((below and side >= 0) or (above and side <= 0))
                    self.ctx.tell(
                        addresses.risk(account),
                        Evaluate({symbol: (low_seen, high_seen)}, urgent=urgent),
                    )

    # -- orders ----------------------------------------------------------------------------------

    def _place(self, orders: tuple[Placement, ...]) -> None:
        if self.ctx.stopping or self.state is not ConnectionState.CONNECTED or self._closed:
            reason = (
                STOPPING if self.ctx.stopping else f"connection {self.id} is {self.state.value}"
            )
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
        """Make a batch of intents durable in one transaction, then send them (S2.6). If they
        cannot be made durable, only the liquidations go out (decision 0014)."""
        batch, self._outgoing = self._outgoing, []
        if not batch:
            return
        if self.ctx.stopping:  # the stop began since these were decided: no intent, no order
            self._place(tuple(batch))
            return
        durable = self.ctx.storage.orders_sending([row for p in batch for row in _rows(p, self.id)])
        if self.ctx.stopping:
            # The stop began while the intents were written: none is sent, and each is
            # recorded so in the ledger (never asked about at the next start).
            log.warning("stopping: orders not sent", connection=self.id, orders=len(batch))
            for left in batch:
                self.ctx.storage.order_status(left.request.client_order_id, NOT_SENT, STOPPING)
            self._place(tuple(batch))  # each told to its account as not sent
            return
        sending: list[OrderRequest] = []
        for placement in batch:
            request = placement.request
            if durable or sent_unlogged(placement.kind):
                sending.append(request)
            else:
                self.ctx.tell(
                    addresses.account(request.account),
                    OrderNotSent(request.client_order_id, request.symbol, HELD_BACK),
                )
        if sending:
            self.session.place_orders(sending)  # the login's batch in one call to the broker


def _rows(placement: Placement, connection: str) -> list[LedgerRow]:
    """The intent of each order a placement sends: its own, and a bracket's legs or an OCO
    pair's second order with theirs (S2.6, S8.9)."""
    request = placement.request
    rows = [
        LedgerRow(
            request.client_order_id,
            request.account,
            connection,
            request.symbol,
            request.qty,
            request.order_type.value,
            placement.kind,
            placement.cause,
        )
    ]
    legs = [(leg, -request.qty) for leg in request.bracket]
    if request.oco is not None:
        legs.append((request.oco, request.qty))
    for leg, qty in legs:
        rows.append(
            LedgerRow(
                leg.client_order_id,
                request.account,
                connection,
                request.symbol,
                qty,
                leg.order_type.value,
                placement.kind,
                placement.cause,
            )
        )
    return rows
