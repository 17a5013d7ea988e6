"""One connection's session at Tradovate: the :class:`~brokers.base.BrokerSession` the engine holds.

The engine's actors call ``place_order`` & co. from their own threads; each call is handed to
this session's trio task through a thread-safe queue (woken with ``TrioToken.run_sync_soon``)
and returns at once. Orders and cancels of one account go out in the order given; different
accounts go out concurrently, all within the login's rate budget (:mod:`.pacing`), so one slow
request never holds up another account's order — nor, being another session, another login's.

What the broker sends comes back as :mod:`brokers.base` events through the sink: the REST
answers (accepted, rejected with the broker's text), and the trading socket's ``props`` pushes
(orders, fills) in the order the socket delivered them (:mod:`.stream`, :mod:`.orders`). A
snapshot request is answered from ``user/syncrequest`` on the same socket, so it is ordered with
the fills (:mod:`.snapshots`); an answer that is not a complete sync is ``SnapshotFailed``
(unknown, never flat: S3.5). The socket's life and the token's are :mod:`.link`'s.

An order's outcome, from what the call raised: a business error (``failureReason`` other than
``Success``, ``failureText``, ``errorText``, ``violations``) or a 401 after a renewed token
("no permission") is ``OrderRejected`` with the broker's text, the login untouched; a lock-out
or a throttle is ``OrderRejected`` (nothing was done at the broker); a lost or unreadable answer
is looked up by ``clOrdId`` (S2.6).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import structlog
import trio

from brokers.base import (
    BrokerEvent,
    BrokerSession,
    EventSink,
    ModifyRequest,
    OrderRejected,
    OrderRequest,
    OrderType,
    SessionRestored,
    Snapshot,
    SnapshotFailed,
    TokenIssued,
)
from brokers.clock import Clock
from brokers.tradovate import entities, snapshots
from brokers.tradovate.activity import Activity
from brokers.tradovate.contracts import ContractCache
from brokers.tradovate.entities import EntityError, SyncData
from brokers.tradovate.link import Link, Phase
from brokers.tradovate.market_data import MarketData
from brokers.tradovate.modify import Modifier
from brokers.tradovate.orders import OrderTracker
from brokers.tradovate.pacing import HostBudget, RateBudget, RenewalPlanner
from brokers.tradovate.rest import (
    BadResponse,
    BrokerError,
    NoPermission,
    NotFound,
    RateLimited,
    Rejected,
    RestClient,
    SocketRequest,
    Throttled,
    Unauthorized,
    Unavailable,
)
from brokers.tradovate.settings import TradovateSettings
from brokers.tradovate.socket import SocketClosed, TradovateSocket
from brokers.tradovate.stream import PushStream
from brokers.tradovate.tokens import Token, TokenStore
from brokers.tradovate.wire import Push
from brokers.tradovate.working import AnswerError, answer_ids, place_body

log = structlog.get_logger("brokers.tradovate")

SESSION_CLOSED = "SessionClosed: the Tradovate session is not connected"
TOKEN_HELD = "[held by the Tradovate adapter]"  # what TokenIssued carries instead of the token


# --- commands handed over from the engine's threads ---------------------------------------------


@dataclass(frozen=True, slots=True)
class _Place:
    request: OrderRequest


@dataclass(frozen=True, slots=True)
class _Cancel:
    account: str
    symbol: str | None
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Modify:
    request: ModifyRequest


@dataclass(frozen=True, slots=True)
class _SnapshotRequest:
    request_id: str


@dataclass(frozen=True, slots=True)
class _Open:
    pass


@dataclass(frozen=True, slots=True)
class _Close:
    pass


@dataclass(frozen=True, slots=True)
class _NewToken:
    token: Token


_Command = _Place | _Cancel | _Modify | _SnapshotRequest | _Open | _Close | _NewToken
_AccountCommand = _Place | _Cancel | _Modify


class SessionHost(Protocol):
    """What a session uses of the broker that made it: what the logins share, and its trio loop."""

    @property
    def settings(self) -> TradovateSettings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def activity(self) -> Activity: ...

    @property
    def contracts(self) -> ContractCache: ...

    @property
    def host_budget(self) -> HostBudget: ...

    @property
    def renewals(self) -> RenewalPlanner: ...

    @property
    def stats(self) -> Counter[str]: ...

    @property
    def market_data(self) -> MarketData: ...

    def liquidations(self, connection: str) -> dict[int, OrderRequest]:
        """The connection's liquidations placed by this process."""

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` in the broker's trio loop soon (any thread)."""


class TradovateSession(BrokerSession):
    def __init__(
        self,
        broker: SessionHost,
        connection: str,
        accounts: tuple[str, ...],
        sink: EventSink,
    ) -> None:
        self.broker = broker
        self.connection = connection
        self.accounts = tuple(accounts)
        self._sink = sink
        self.settings = broker.settings
        self._inbox: deque[_Command] = deque()
        self._wakeup: trio.Event | None = None
        self._closed = False  # by the engine: no events follow
        self.retired = False  # replaced by a newer session of the connection: inert for good
        self._scope: trio.CancelScope | None = None
        self.link = Link(
            connection, self.settings, broker.clock, broker.tokens, self, broker.renewals
        )
        self.tracker = OrderTracker(
            connection, self.emit, broker.clock.now, broker.liquidations(connection)
        )
        self.budget = RateBudget(
            self.settings.budget_burst, self.settings.budget_per_s, self.settings.max_concurrent
        )
        self._rest: RestClient | None = None
        self.account_ids: dict[str, int] = {}
        self.names: dict[int, str] = {}  # account id -> name, of this session's accounts
        self.user_id: int | None = None
        self.in_flight: dict[str, int] = {}  # orders sent and not answered, by account
        self.stream = PushStream(self)
        self.modifier = Modifier(self)
        self._queues: dict[str, trio.MemorySendChannel[_AccountCommand]] = {}
        self._pending_snapshots: list[str] = []
        self._last_sync: SyncData | None = None
        self._nursery: trio.Nursery | None = None

    # -- the BrokerSession interface (any thread, never blocks) ------------------------------------

    def place_order(self, order: OrderRequest) -> None:
        self._submit(_Place(order))

    def place_orders(self, orders: Sequence[OrderRequest]) -> None:
        """A login's batch: queued together, and the trio loop woken once for all of them."""
        if not orders:
            return
        activity, inbox = self.broker.activity, self._inbox
        for order in orders:
            activity.begin()
            inbox.append(_Place(order))
        self.broker.call_soon(self._poke)

    def modify_order(self, request: ModifyRequest) -> None:
        self._submit(_Modify(request))

    def cancel_working(
        self, account: str, symbol: str | None, broker_order_ids: tuple[str, ...] = ()
    ) -> None:
        self._submit(_Cancel(account, symbol, tuple(broker_order_ids)))

    def request_snapshot(self, request_id: str) -> None:
        self._submit(_SnapshotRequest(request_id))

    def close(self) -> None:
        self._closed = True
        self._submit(_Close())

    def open(self) -> None:
        self._closed = False
        self._submit(_Open())

    def token_issued(self, token: Token) -> None:
        """A new token from the OAuth flow (any thread)."""
        self._submit(_NewToken(token))

    def _submit(self, command: _Command) -> None:
        self.broker.activity.begin()
        self._inbox.append(command)
        self.broker.call_soon(self._poke)

    def _poke(self) -> None:
        if self.retired:
            self._drop_inbox()  # handed over as it was being retired: nobody else will
        elif self._wakeup is not None:
            self._wakeup.set()

    # -- events ------------------------------------------------------------------------------------

    def emit(self, event: BrokerEvent) -> None:
        if self.retired:
            return
        if self._closed and not isinstance(event, TokenIssued | OrderRejected):
            return
        try:
            self._sink(event)
        except Exception as error:  # the sink must never break the adapter
            log.error("event sink failed", connection=self.connection, error=repr(error))

    @property
    def rest(self) -> RestClient:
        assert self._rest is not None, "the session runs inside TradovateBroker.running()"
        return self._rest

    @property
    def live(self) -> bool:
        return not self._closed and not self.retired and self.link.live

    # -- the session's trio task -------------------------------------------------------------------

    async def run(self) -> None:
        timeout = httpx.Timeout(self.settings.request_timeout_s)
        async with httpx.AsyncClient(timeout=timeout) as http:
            settings = self.settings
            self._rest = RestClient(
                http,
                settings.rest_url,
                self.link.access_token,
                self.budget,
                guard=self.link,
                host=self.broker.host_budget,
                max_penalty_retries=settings.max_penalty_retries,
                max_ticket_wait_s=settings.max_ticket_wait_s,
                throttle_wait_s=settings.throttle_wait_s,
                throttle_period_s=settings.throttle_period_s,
            )
            with trio.CancelScope() as scope:
                self._scope = scope
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    self._drain()
                    nursery.start_soon(self.link.run)
                    while True:
                        self._wakeup = trio.Event()
                        if not self._inbox:
                            await self._wakeup.wait()
                        self._drain()

    def retire(self) -> None:
        """Trio thread: stop everything of this session; it never speaks again."""
        self.retired = True
        self.link.retired = True
        if self._scope is not None:
            self._scope.cancel()
        self._drop_inbox()

    def _drop_inbox(self) -> None:
        while self._inbox:
            self._inbox.popleft()
            self.broker.activity.end()

    def _drain(self) -> None:
        nursery = self._nursery
        assert nursery is not None
        while self._inbox:
            command = self._inbox.popleft()
            match command:
                case _Place(request=request):
                    self._queue(request.account).send_nowait(command)
                case _Cancel(account=account):
                    self._queue(account).send_nowait(command)
                case _Modify(request=request):
                    self._queue(request.account).send_nowait(command)
                case _SnapshotRequest(request_id=request_id):
                    if self.link.phase is Phase.LIVE:
                        nursery.start_soon(self._answer_snapshots, [request_id])
                    else:
                        self._pending_snapshots.append(request_id)  # answered once live
                        self.broker.activity.end()
                case _Open():
                    self.link.open()
                    if self.link.phase is Phase.LIVE:
                        self.emit(SessionRestored(self.connection))
                    nursery.start_soon(self._end_when_stable)
                case _Close():
                    self._pending_snapshots.clear()
                    self.link.close()
                    self.broker.activity.end()
                case _NewToken(token=token):
                    self.emit(TokenIssued(self.connection, TOKEN_HELD, token.expires_at))
                    self.link.new_token(token)
                    nursery.start_soon(self._end_when_stable)

    async def _end_when_stable(self) -> None:
        try:
            await trio.sleep(0)
            while not self.link.stable():
                await self.link.phase_change()
        finally:
            self.broker.activity.end()

    def _queue(self, account: str) -> trio.MemorySendChannel[_AccountCommand]:
        queue = self._queues.get(account)
        if queue is None:
            send, receive = trio.open_memory_channel[_AccountCommand](math.inf)
            self._queues[account] = queue = send
            assert self._nursery is not None
            self._nursery.start_soon(self._account_worker, receive)
        return queue

    async def _account_worker(self, receive: trio.MemoryReceiveChannel[_AccountCommand]) -> None:
        async for command in receive:
            try:
                if isinstance(command, _Place):
                    await self._place(command.request)
                elif isinstance(command, _Modify):
                    await self.modifier.modify(command.request)
                else:
                    await self._cancel(command)
            finally:
                self.broker.activity.end()

    # -- orders ------------------------------------------------------------------------------------

    async def _place(self, request: OrderRequest) -> None:
        account_id = self.account_ids.get(request.account)
        if not self.live:
            self.tracker.rejected(request, SESSION_CLOSED)
            return
        if account_id is None:
            self.tracker.rejected(
                request, f"UnknownAccount: {request.account} is not an account of this login"
            )
            return
        self.tracker.sending(request)
        account = request.account
        self.in_flight[account] = self.in_flight.get(account, 0) + 1
        try:
            await self._send_order(request, account_id)
        finally:
            self.in_flight[account] -= 1
            if self.in_flight[account] == 0:
                try:
                    await self.stream.release(account)
                except (BrokerError, EntityError) as error:
                    log.error(
                        "cannot follow a held event", connection=self.connection, problem=str(error)
                    )
                    self.link.fail(str(error))

    def via(self) -> SocketRequest | None:
        """Commands go on the trading socket while it is up (HTTP otherwise)."""
        socket = self.link.socket
        return socket.request if socket is not None and self.link.live else None

    async def _send_order(self, request: OrderRequest, account_id: int) -> None:
        via = self.via()
        try:
            if request.order_type is OrderType.LIQUIDATE:
                contract_id = await self.broker.contracts.id_of(request.symbol, self.rest)
                body: dict[str, Any] = {
                    "accountId": account_id,
                    "contractId": contract_id,
                    "admin": False,
                    "isAutomated": True,
                }
                answer = await self.rest.command("order/liquidateposition", body, via)
            else:
                path, body = place_body(request, account_id)
                answer = await self.rest.command(path, body, via)
            try:
                ids = answer_ids(request, answer)
            except AnswerError as error:
                raise BadResponse(str(error)) from None
            self.broker.stats["orders_placed"] += 1
            self.tracker.placed(request, ids)
            self.broker.market_data.want(request.symbol)
        except Rejected as rejected:
            self.broker.stats["orders_rejected"] += 1
            self.tracker.rejected(request, rejected.reason)
        except NotFound as error:
            self.tracker.rejected(request, f"NotFound: {error}")
        except NoPermission as error:
            self.broker.stats["orders_rejected"] += 1
            self.tracker.rejected(request, f"Unauthorized: {error}")
        except Unauthorized as error:  # the link has made the login reauth_required, or will retry
            self.tracker.rejected(request, f"Unauthorized: {error}")
        except RateLimited as error:  # the link has locked the login out
            self.tracker.rejected(request, f"RateLimited: {error}")
        except Throttled as error:
            self.tracker.rejected(request, f"Throttled: {error}")
        except (Unavailable, BadResponse) as error:
            log.error(
                "order of unknown outcome",
                connection=self.connection,
                client_order_id=request.client_order_id,
                problem=str(error),
            )
            await self._resolve_unknown(request, str(error))

    async def _resolve_unknown(self, request: OrderRequest, problem: str) -> None:
        """S2.6: ask the broker whether an order whose answer was lost reached it."""
        cl = request.client_order_id
        if self.tracker.knows_client_order(cl):
            return  # the socket told us already
        if request.order_type is OrderType.LIQUIDATE:
            # No clOrdId to look for; liquidating again is harmless (a flat position stays flat).
            self.tracker.rejected(request, f"outcome unknown ({problem}); to be sent again")
            return
        try:
            commands = [entities.command(c) for c in await self.rest.items("command/list")]
        except (BrokerError, EntityError) as error:
            log.error(
                "cannot resolve an order of unknown outcome; the next snapshot will",
                connection=self.connection,
                client_order_id=cl,
                problem=str(error),
            )
            return
        wanted = set(request.client_order_ids())
        found = {c.cl_ord_id: c.order_id for c in commands if c.cl_ord_id in wanted}
        if cl not in found:
            self.tracker.rejected(request, f"not received by Tradovate ({problem})")
        elif not self.tracker.knows_client_order(cl):
            self.tracker.placed(request, {k: v for k, v in found.items() if k is not None})

    async def _cancel(self, command: _Cancel) -> None:
        if not self.live:
            return
        wanted = set(command.ids)
        for order in self.tracker.working(command.account):
            if command.symbol is not None and order.symbol != command.symbol:
                continue
            if wanted and str(order.order_id) not in wanted:
                continue
            try:
                await self.rest.command(
                    "order/cancelorder",
                    {"orderId": order.order_id, "isAutomated": True},
                    self.via(),
                )
            except Rejected as refused:
                log.info("cancel refused", connection=self.connection, reason=refused.reason)
            except NoPermission as error:
                log.warning("cancel refused", connection=self.connection, problem=str(error))
            except (Unauthorized, RateLimited) as error:  # the link knows
                log.warning("cancel not sent", connection=self.connection, problem=str(error))
                return
            except BrokerError as error:
                log.warning("cancel failed", connection=self.connection, problem=str(error))

    async def on_push(self, push: Push) -> None:
        await self.stream.on_push(push)

    # -- going live and snapshots ------------------------------------------------------------------

    async def on_live(self, socket: TradovateSocket) -> None:
        accounts = [entities.account(a) for a in await self.rest.items("account/list")]
        self.account_ids = {a.name: a.id for a in accounts}
        self.names = {a.id: a.name for a in accounts if a.name in self.accounts}
        missing = [a for a in self.accounts if a not in self.account_ids]
        if missing:
            log.error(
                "accounts not found at this Tradovate login",
                connection=self.connection,
                accounts=", ".join(missing),
            )
        self.user_id = next((a.user_id for a in accounts if a.user_id is not None), None)
        self._last_sync = await snapshots.sync(self, socket)

    def after_live(self) -> None:
        pending, self._pending_snapshots = self._pending_snapshots, []
        sync = self._last_sync
        if pending and sync is not None and self._nursery is not None:
            self.broker.activity.begin()
            self._nursery.start_soon(self._emit_snapshots, pending, sync)
        self.broker.market_data.session_live(self)

    def _emit_snapshot(self, snapshot: Snapshot) -> None:
        # As a quote subscription answers with the last trade: the engine gets the current price
        # of every contract before the positions (an engine restarted with a position needs it).
        for quote in self.broker.market_data.last_quotes():
            self.emit(quote)
        self.emit(snapshot)

    async def _emit_snapshots(self, request_ids: list[str], sync: SyncData) -> None:
        try:
            await self._snapshots_from(request_ids, sync)
        finally:
            self.broker.activity.end()

    async def _snapshots_from(self, request_ids: list[str], sync: SyncData) -> None:
        for index, request_id in enumerate(request_ids):
            try:
                snapshot = await snapshots.snapshot(self, request_id, sync)
            except BrokerError as error:
                self._snapshots_failed(request_ids[index:], str(error))
                return
            self._emit_snapshot(snapshot)

    async def _answer_snapshots(self, request_ids: list[str]) -> None:
        socket = self.link.socket
        try:
            if socket is None or not self.link.live:
                raise SocketClosed("the socket is not up")
            sync = await snapshots.sync(self, socket)
        except (SocketClosed, Unavailable) as error:
            if socket is not None and socket.live and self.link.socket is socket:
                self._snapshots_failed(request_ids, str(error))  # a time-out: the socket is fine
            else:  # the socket is gone: answered from the sync of the next one
                log.warning("snapshot deferred", connection=self.connection, problem=str(error))
                self._pending_snapshots.extend(request_ids)
        except NoPermission as error:
            # The token was renewed but the socket's authorization was refused: reconnect.
            self._snapshots_failed(request_ids, str(error))
            self.link.fail(str(error))
        except (BrokerError, EntityError) as error:
            self._snapshots_failed(request_ids, str(error))
        else:
            await self._snapshots_from(request_ids, sync)
        finally:
            self.broker.activity.end()

    def _snapshots_failed(self, request_ids: list[str], why: str) -> None:
        """Unknown is not flat (S3.5): the engine hears that these snapshots failed, and why."""
        log.warning(
            "snapshot failed", connection=self.connection, problem=why, requests=len(request_ids)
        )
        for request_id in request_ids:
            self.emit(SnapshotFailed(self.connection, request_id, why))
