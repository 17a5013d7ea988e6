"""The Tradovate broker: hands out one :class:`TradovateSession` per connection and runs them.

    broker = TradovateBroker(settings, clock)
    engine = Engine(..., brokers={"tradovate": broker})
    engine.start()                         # sessions are created; their work waits for trio
    async with broker.running():           # or: await nursery.start(broker.run)
        ...                                # sessions connect, orders flow

Sessions may be created before or while the broker runs, from any thread. Everything the
adapter does on the network runs in the trio loop that entered :meth:`running`: one task per
session (its socket, its REST calls, its timers) and one for market data. ``exchange_code``
may be awaited from any trio loop (the control API's): it stores the token (0600, in
``token_dir``) and hands it to the connection's session, which reconnects with it.

What the logins share: the host's budgets for the endpoints Tradovate limits per IP address
(``host_budget``: ``user/syncrequest`` and ``auth/renewaccesstoken``), and the plan that keeps
their token renewals apart (``renewals``).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import httpx
import structlog
import trio

from brokers.base import AuthorizationError, Broker, EventSink, OrderRequest, Quote
from brokers.clock import Clock
from brokers.instruments import Contract
from brokers.tradovate import entities, oauth
from brokers.tradovate.activity import Activity
from brokers.tradovate.contracts import ContractCache
from brokers.tradovate.market_data import MarketData
from brokers.tradovate.pacing import HostBudget, RenewalPlanner
from brokers.tradovate.rest import RENEWAL, BrokerError
from brokers.tradovate.session import TradovateSession
from brokers.tradovate.settings import TradovateSettings
from brokers.tradovate.socket import SocketClosed
from brokers.tradovate.tokens import TokenStore, TokenStoreError

log = structlog.get_logger("brokers.tradovate")

MAX_TIMER_WAIT_S = 1.0
HOUR_S = 3600.0


class TradovateBroker(Broker):
    def __init__(self, settings: TradovateSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.tokens = TokenStore(settings.token_dir)
        self.activity = Activity()
        self.contracts = ContractCache()
        self.host_budget = HostBudget(
            {
                "user/syncrequest": (
                    settings.host_sync_burst,
                    settings.host_sync_per_hour / HOUR_S,
                ),
                RENEWAL: (settings.host_renewal_burst, settings.host_renewal_per_hour / HOUR_S),
            }
        )
        self.renewals = RenewalPlanner(settings.renewal_spacing)
        self.market_data = MarketData(self)
        # orders_placed, orders_rejected, malformed, fills_withdrawn
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._sessions: dict[str, TradovateSession] = {}
        self._unstarted: list[TradovateSession] = []
        self._liquidations: dict[str, dict[int, OrderRequest]] = {}
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None

    # -- sessions (any thread) ---------------------------------------------------------------------

    def session(
        self, connection: str, accounts: tuple[str, ...], sink: EventSink
    ) -> TradovateSession:
        """The session of ``connection``; an earlier one of the same connection goes inert."""
        session = TradovateSession(self, connection, tuple(accounts), sink)
        with self._lock:
            old = self._sessions.get(connection)
            self._sessions[connection] = session
            self._unstarted.append(session)
        if old is not None:
            old.retired = old.link.retired = True
            if self._trio_token is None:
                old.retire()  # it never ran: nothing of it in trio to stop
            else:
                self.call_soon(old.retire)
        self.call_soon(self._start_pending)
        return session

    def liquidations(self, connection: str) -> dict[int, OrderRequest]:
        """The connection's liquidations placed by this process (they carry no ``clOrdId``)."""
        with self._lock:
            return self._liquidations.setdefault(connection, {})

    def sessions(self) -> list[TradovateSession]:
        with self._lock:
            return list(self._sessions.values())

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` in the broker's trio loop soon (any thread; dropped if not running:
        the work it would wake is picked up when the broker starts)."""
        token = self._trio_token
        if token is None:
            return
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(callback)

    def _start_pending(self) -> None:
        nursery = self._nursery
        if nursery is None:
            return
        with self._lock:
            pending, self._unstarted = self._unstarted, []
        for session in pending:
            if not session.retired:
                nursery.start_soon(session.run)

    # -- running -----------------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TradovateBroker]:
        """Run every session (present and future) and market data until the block ends."""
        async with trio.open_nursery() as nursery:
            with self._lock:
                self._trio_token = trio.lowlevel.current_trio_token()
                self._nursery = nursery
            self._start_pending()
            nursery.start_soon(self.market_data.run)
            if self.settings.autonomous_timers:
                nursery.start_soon(self._timers)
            try:
                yield self
            finally:
                with self._lock:
                    self._trio_token = None
                    self._nursery = None
                nursery.cancel_scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """``await nursery.start(broker.run)``: runs until cancelled."""
        async with self.running():
            task_status.started()
            await trio.sleep_forever()

    async def _timers(self) -> None:
        while True:
            due = self.next_due()
            wait = MAX_TIMER_WAIT_S
            if due is not None:
                wait = min(wait, max(0.0, (due - self.clock.now()).total_seconds()))
            await trio.sleep(wait)
            await self.run_due()

    def next_due(self) -> datetime | None:
        """The next engine-clock instant a session has something to do (renew a token, end a
        rate-limit cooldown)."""
        due = [d for s in self.sessions() if (d := s.link.next_due()) is not None]
        return min(due) if due else None

    async def run_due(self) -> None:
        """Do what is due at the clock's now (the harness calls it as it moves its clock)."""
        for session in self.sessions():
            if not session.retired:
                await session.link.run_due()

    async def settled(self) -> None:
        """Return once every request handed over is answered, no connection attempt is under
        way, and every frame the server sent before now has been handled (each socket's reply
        to a probe comes after them). For tests, the replay harness and the bench."""
        while True:
            started = self.activity.started
            await self.activity.wait_idle()
            for session in self.sessions():
                await _session_quiet(session)
            await self.market_data.quiet()
            await self.activity.wait_idle()
            if self.activity.started == started:
                return

    # -- quotes ------------------------------------------------------------------------------------

    def quote_source(self) -> TradovateSession | None:
        """The live session whose token the md socket uses and whose sink gets the quotes."""
        live = [s for s in self.sessions() if s.live]
        return min(live, key=lambda s: s.connection) if live else None

    def deliver_quote(self, quote: Quote) -> None:
        source = self.quote_source()
        if source is not None:
            source.emit(quote)

    # -- OAuth (S1.2) ------------------------------------------------------------------------------

    def authorize_url(self, connection: str, state: str, redirect_uri: str) -> str:
        return oauth.authorize_url(self.settings, state, redirect_uri)

    async def exchange_code(self, connection: str, code: str, redirect_uri: str) -> None:
        timeout = httpx.Timeout(self.settings.request_timeout_s)
        async with httpx.AsyncClient(timeout=timeout) as http:
            token = await oauth.exchange_code(
                http, self.settings, code, redirect_uri, self.clock.now()
            )
        try:
            self.tokens.save(connection, token)
        except TokenStoreError as error:
            raise AuthorizationError(f"the token could not be stored: {error}") from None
        log.info("connection authorized", connection=connection, expires_at=token.expires_at)
        with self._lock:
            session = self._sessions.get(connection)
        if session is not None:
            session.token_issued(token)

    # -- product lookup ----------------------------------------------------------------------------

    async def product(self, root: str) -> Contract:
        """``valuePerPoint`` and ``tickSize`` of a product, from ``/product/find`` (needs a live
        login). The engine's contract table holds the offline defaults; a caller may build its
        table from these instead."""
        source = self.quote_source()
        if source is None:
            raise BrokerError("no live Tradovate session to ask")
        try:
            found = entities.product(await source.rest.get("product/find", {"name": root}))
        except entities.EntityError as error:
            raise BrokerError(f"product/find: {error}") from None
        return Contract(root, found.value_per_point, found.tick_size)


async def _session_quiet(session: TradovateSession) -> None:
    """A session has settled: its link is stable and, if live, its socket answered a probe."""
    link = session.link
    while not session.retired:
        if not link.stable():
            await link.phase_change()
            continue
        socket = link.socket
        if link.live and socket is not None:
            try:
                await socket.request("probe")
            except SocketClosed:  # the socket died meanwhile: wait for the link to notice
                with trio.move_on_after(0.05):
                    await link.phase_change()
                continue
        return
