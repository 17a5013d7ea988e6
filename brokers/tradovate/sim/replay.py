"""The local Tradovate for the replay harness: ``broker = "tradovate-sim"`` connections.

The harness is synchronous and drives a virtual clock; the adapter and the local server are
trio code on sockets. :class:`SimBridge` runs them in a trio loop on a thread of its own — the
local server (its time is the harness's clock), a :class:`TradovateBroker` pointed at it, and a
loopback OAuth callback — and offers the harness the paper broker's controls (``set_price``,
``trade``, ``drop``, ``expire_token``, ``reauthorize``, ``hold``, ``release``,
``reject_next``, ``fail_snapshot``, and the owner's working orders: ``place_working``,
``place_oco``, ``modify``, ``cancel``, ``working_orders``) for its connections.

Determinism: the adapter's events do not reach the engine from the trio thread. They wait in a
queue until the harness, on its own thread, hands them on in :meth:`settle` — after each step,
until the engine is idle, every request the engine made is answered, no reconnection is under
way — a login waiting out a backoff to reconnect (a socket the broker ended, an attempt a fault
failed) counts as one, unless the local server would refuse it (an outage) —, every socket has
answered a probe (so every push sent before it was handled), and no event is left. Engine-clock
work of the adapter (token renewals, rate-limit cooldowns) runs at its
instants as :meth:`advance_to` moves the clock, interleaved with the engine's own timers.

Semantics of the controls, matching the paper broker's: ``drop`` closes the user's sockets and
refuses new ones until the harness ``reconnect``\\ s or re-authorizes the connection (an outage
the user ends, as with the paper broker's link); ``expire_token`` revokes the user's tokens
(the broker closes their sockets; the adapter finds the token refused); ``reauthorize`` is the
full OAuth round trip through the authorize page and the loopback callback; ``fail_snapshot``
makes the engine's next snapshot attempts of the connection meet an error from the server (its
``user/syncrequest`` answered with one), which the adapter reports as ``SnapshotFailed``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import trio

from brokers.base import (
    Broker,
    BrokerEvent,
    BrokerSession,
    EventSink,
    ModifyRequest,
    OrderRequest,
    OrderType,
    TimeInForce,
    WorkingOrder,
)
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.tradovate.broker import TradovateBroker
from brokers.tradovate.callback import CallbackListener, serve_callback
from brokers.tradovate.link import Phase
from brokers.tradovate.session import TradovateSession
from brokers.tradovate.sim import PlacedOrder, RunningSim, SimError, serve_sim

T = TypeVar("T")
MAX_SETTLE_ROUNDS = 10_000
# A login the adapter reconnects by itself is back within its backoff (short here); one that is
# not back in this long (real time) is stuck, and settling fails rather than go on without it.
RECONNECT_WAIT_S = 60.0
SYNC = "user/syncrequest"
SNAPSHOT_REFUSED = "the local server refused the sync request (fail_snapshot)"


class _Relay(Broker):
    """The engine's view of the adapter: sessions whose events wait for the harness."""

    def __init__(self, bridge: SimBridge, inner: TradovateBroker) -> None:
        self.bridge = bridge
        self.inner = inner

    def session(self, connection: str, accounts: tuple[str, ...], sink: EventSink) -> BrokerSession:
        queue = self.bridge.events
        inner = self.inner.session(connection, accounts, lambda event: queue.append((sink, event)))
        return _Session(self.bridge, inner)

    def authorize_url(self, connection: str, state: str, redirect_uri: str) -> str:
        return self.inner.authorize_url(connection, state, redirect_uri)

    async def exchange_code(self, connection: str, code: str, redirect_uri: str) -> None:
        await self.inner.exchange_code(connection, code, redirect_uri)


class _Session(BrokerSession):
    """The adapter's session, but for the snapshot requests of a connection whose next attempts
    are to fail (``fail_snapshot``): those wait in the bridge until the session is live, and go
    on with the server's error planned for their ``user/syncrequest`` — never for the sync the
    adapter makes as it comes up, which would fail the connection attempt instead."""

    def __init__(self, bridge: SimBridge, inner: TradovateSession) -> None:
        self.bridge = bridge
        self.inner = inner

    def place_order(self, order: OrderRequest) -> None:
        self.inner.place_order(order)

    def modify_order(self, request: ModifyRequest) -> None:
        self.inner.modify_order(request)

    def cancel_working(
        self, account: str, symbol: str | None, broker_order_ids: tuple[str, ...] = ()
    ) -> None:
        self.inner.cancel_working(account, symbol, broker_order_ids)

    def request_snapshot(self, request_id: str) -> None:
        if not self.bridge.defer_snapshot(self.inner, request_id):
            self.inner.request_snapshot(request_id)

    def close(self) -> None:
        self.bridge.drop_deferred(self.inner)
        self.inner.close()

    def open(self) -> None:
        self.inner.open()


class SimBridge:
    def __init__(
        self,
        clock: VirtualClock,
        contracts: ContractTable,
        token_dir: Path,
        *,
        settings: dict[str, Any] | None = None,
        server: dict[str, Any] | None = None,
    ) -> None:
        """``settings`` override the adapter's settings, ``server`` are ``serve_sim`` options."""
        self.clock = clock
        self.contracts = contracts
        self.token_dir = token_dir
        # The harness moves a virtual clock much faster than trio's: budgets that refill on
        # trio's clock are set wide, and the waits measured on it (reconnection backoffs, the
        # wait after an HTTP 423) short, so that no step waits on them long in real time.
        self._settings = {
            "autonomous_timers": False,
            "budget_burst": 1000,
            "budget_per_s": 1000.0,
            "host_sync_burst": 1000,
            "host_renewal_burst": 1000,
            "backoff_initial_s": 0.02,
            "backoff_max_s": 0.2,
            "throttle_wait_s": 0.02,
            **(settings or {}),
        }
        # The server's watch for a client heartbeat that stops runs on real time, and keeps
        # each socket the server ends (an outage's refused attempts included) open a second
        # longer: the harness, which waits for every attempt, turns it off.
        self._server = {"client_heartbeat_timeout_s": None, **(server or {})}
        self.connections: set[str] = set()
        self.events: deque[tuple[EventSink, BrokerEvent]] = deque()
        self._lock = threading.Lock()
        self._snapshot_failures: dict[str, int] = {}  # connection -> attempts still to fail
        self._deferred: dict[str, tuple[TradovateSession, str]] = {}  # connection -> request
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._failure: BaseException | None = None
        self.sim: RunningSim | None = None
        self.adapter: TradovateBroker | None = None
        self.callback: CallbackListener | None = None
        self._thread = threading.Thread(target=self._main, name="tradovate-sim", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._failure is not None or self.adapter is None:
            raise SimError(f"the local Tradovate did not start: {self._failure!r}")
        self.broker: Broker = _Relay(self, self.adapter)

    # -- the trio thread ---------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as error:  # reported to the harness thread
            self._failure = error
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        async with serve_sim(self.clock, contracts=self.contracts, **self._server) as sim:
            settings = sim.settings(self.token_dir, **self._settings)
            adapter = TradovateBroker(settings, self.clock)
            async with adapter.running(), serve_callback(adapter) as callback:
                self.sim, self.adapter, self.callback = sim, adapter, callback
                self._ready.set()
                await self._stop.wait()

    def _run(self, fn: Callable[[], Awaitable[T]]) -> T:
        return trio.from_thread.run(fn, trio_token=self._token)

    def _call(self, fn: Callable[[], T]) -> T:
        return trio.from_thread.run_sync(fn, trio_token=self._token)

    @property
    def _sim(self) -> RunningSim:
        assert self.sim is not None
        return self.sim

    def close(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            stop = self._stop
            self._call(stop.set)
        self._thread.join(10)

    # -- setup -------------------------------------------------------------------------------------

    def add_connection(self, connection: str, accounts: tuple[str, ...], state: str) -> None:
        """A login at the local Tradovate named after the connection, holding its accounts;
        authorized unless it starts in ``reauth_required``, in an outage if ``disconnected``."""
        self.connections.add(connection)
        self._call(lambda: self._sim.add_user(connection, accounts))
        if state != "reauth_required":
            self._authorize(connection)
        if state == "disconnected":
            self._call(lambda: self._sim.drop(connection))

    def _authorize(self, connection: str) -> None:
        problem = self._run(lambda: self._oauth_round_trip(connection))
        if problem is not None:
            raise SimError(f"authorizing {connection} failed: {problem}")

    async def _oauth_round_trip(self, connection: str) -> str | None:
        """What a user's browser does: the authorize page, sign in, back to the callback."""
        callback, sim = self.callback, self._sim
        assert callback is not None
        url = callback.begin(connection)
        state = parse_qs(urlsplit(url).query)["state"][0]
        async with httpx.AsyncClient() as browser:
            page = await browser.get(url)
            if page.status_code != 200:
                return f"the authorize page answered {page.status_code}"
            approved = await browser.post(
                f"{sim.base_url}/oauth/approve",
                data={
                    "user": connection,
                    "client_id": sim.client_id,
                    "redirect_uri": callback.redirect_uri,
                    "state": state,
                },
            )
            await browser.get(approved.headers["location"])
        return await callback.outcome(state)

    # -- settling ----------------------------------------------------------------------------------

    def settle(self, wait_idle: Callable[[], None]) -> None:
        """Until nothing moves: the engine idle, the adapter settled, every event handed on,
        every deferred snapshot request that can go on sent, no login reconnecting."""
        adapter = self.adapter
        assert adapter is not None
        for _ in range(MAX_SETTLE_ROUNDS):
            wait_idle()
            self._run(adapter.settled)
            if self.events:
                while self.events:
                    sink, event = self.events.popleft()
                    sink(event)
                continue
            if self._call(self._send_deferred):
                continue
            if not self._run(self._reconnecting):
                return
        raise SimError("the engine and the local Tradovate never settled")

    async def _reconnecting(self) -> bool:
        """Wait for a login that waits out a backoff before reconnecting by itself, when the
        local server would take it; whether there was one."""
        adapter, sim = self.adapter, self._sim
        assert adapter is not None
        for session in adapter.sessions():
            link = session.link
            if session.retired or link.phase is not Phase.WAITING:
                continue
            user = next((u for u in sim.exchange.users.values() if u.name == link.connection), None)
            faults = None if user is None else sim.faults.of(user.id)
            if faults is None or faults.outage or faults.locked_out:
                continue  # refused until the harness ends the outage
            with trio.move_on_after(RECONNECT_WAIT_S):
                await link.phase_change()
                return True
            raise SimError(f"{link.connection} did not reconnect in {RECONNECT_WAIT_S:g} s")
        return False

    # -- snapshots that fail (S3.5) ----------------------------------------------------------------

    def fail_snapshot(self, connection: str, count: int = 1) -> None:
        """The engine's next ``count`` snapshot attempts of ``connection`` fail: the server
        answers each one's ``user/syncrequest`` with an error (adds to any left)."""
        if connection not in self.connections:
            raise SimError(f"fail_snapshot {connection}: not a connection of the local Tradovate")
        if count < 1:
            raise SimError(f"fail_snapshot {connection}: count must be positive")
        with self._lock:
            self._snapshot_failures[connection] = self._snapshot_failures.get(connection, 0) + count

    def snapshot_failures(self, connection: str) -> int:
        """The snapshot attempts of ``connection`` still to fail."""
        with self._lock:
            return self._snapshot_failures.get(connection, 0)

    def defer_snapshot(self, session: TradovateSession, request_id: str) -> bool:
        """Any thread: hold the request of a connection whose next attempt is to fail until
        the harness sends it on (:meth:`settle`); whether it is held. The engine makes one
        attempt at a time: a newer request replaces one still held."""
        with self._lock:
            if self._snapshot_failures.get(session.connection, 0) <= 0:
                return False
            self._deferred[session.connection] = (session, request_id)
            return True

    def drop_deferred(self, session: TradovateSession) -> None:
        """Any thread: the engine closed the session; its held request goes with it."""
        with self._lock:
            held = self._deferred.get(session.connection)
            if held is not None and held[0] is session:
                del self._deferred[session.connection]

    def clear_faults(self) -> None:
        """Forget every fault still to come: the server's planned ones and lock-outs, for
        every login, and the snapshot failures (a held request then goes on as it is)."""
        with self._lock:
            self._snapshot_failures.clear()

        def clear() -> None:
            for faults in self._sim.faults.users.values():
                faults.planned.clear()
                faults.locked_out = False

        self._call(clear)

    def _send_deferred(self) -> bool:
        """In the trio thread: send each held request whose session is live, with the error
        planned for its sync if it is still to fail; whether one was sent."""
        sent = False
        with self._lock:
            for connection, (session, request_id) in list(self._deferred.items()):
                if session.retired:
                    del self._deferred[connection]
                    continue
                if not session.live:
                    continue  # answered once the session is up again, or given up
                del self._deferred[connection]
                if self._snapshot_failures.get(connection, 0) > 0:
                    self._snapshot_failures[connection] -= 1
                    error = {"errorText": SNAPSHOT_REFUSED}
                    self._sim.answer_next(connection, SYNC, error)
                session.request_snapshot(request_id)
                sent = True
        return sent

    def advance_to(
        self,
        instant: datetime,
        next_engine_timer: Callable[[], datetime | None],
        fire_engine_timers: Callable[[], object],
        wait_idle: Callable[[], None],
    ) -> None:
        """Move the clock to ``instant``, stopping at each instant the engine or the adapter
        has something due, and settling after each."""
        adapter = self.adapter
        assert adapter is not None
        for _ in range(MAX_SETTLE_ROUNDS):
            candidates = [d for d in (next_engine_timer(), adapter.next_due()) if d is not None]
            due = min(candidates) if candidates else None
            if due is None or due > instant:
                break
            self.clock.set(max(due, self.clock.now()))
            fire_engine_timers()
            self._run(adapter.run_due)
            self.settle(wait_idle)
        self.clock.set(instant)
        self._run(adapter.run_due)
        self.settle(wait_idle)

    # -- the paper broker's controls, for this bridge's connections --------------------------------

    def set_price(self, symbol: str, last: Decimal) -> None:
        self._call(lambda: self._sim.set_price(symbol, Decimal(last)))

    def trade(
        self, account: str, symbol: str, qty: int, fills: tuple[int, ...] | None = None
    ) -> None:
        self._call(lambda: self._sim.trade(account, symbol, qty, fills))

    def drop(self, connection: str) -> None:
        self._call(lambda: self._sim.drop(connection))

    def restore(self, connection: str) -> None:
        self._call(lambda: self._sim.restore(connection))

    def expire_token(self, connection: str) -> None:
        self._call(lambda: self._sim.expire_token(connection))

    def reauthorize(self, connection: str) -> None:
        self.restore(connection)
        self._authorize(connection)

    def hold(self, connection: str) -> None:
        self._call(lambda: self._sim.hold(connection))

    def release(self, connection: str) -> None:
        self._call(lambda: self._sim.release(connection))

    def reject_next(self, connection: str, count: int = 1) -> None:
        self._call(lambda: self._sim.reject_next(connection, count))

    def place_working(
        self,
        account: str,
        symbol: str,
        qty: int,
        order_type: OrderType,
        *,
        price: Decimal | None = None,
        stop: Decimal | None = None,
        tif: TimeInForce = TimeInForce.DAY,
        bracket_stop: Decimal | None = None,
        bracket_target: Decimal | None = None,
    ) -> PlacedOrder:
        """The account's owner places a working order (a bracket with a leg's price given)."""
        return self._call(
            lambda: self._sim.place_working(
                account,
                symbol,
                qty,
                order_type,
                price=price,
                stop=stop,
                tif=tif,
                bracket_stop=bracket_stop,
                bracket_target=bracket_target,
            )
        )

    def place_oco(
        self,
        account: str,
        symbol: str,
        qty: int,
        *,
        stop: Decimal,
        target: Decimal,
        tif: TimeInForce = TimeInForce.DAY,
    ) -> PlacedOrder:
        """The account's owner places an OCO pair: a stop and a limit, same side."""
        return self._call(
            lambda: self._sim.place_oco(account, symbol, qty, stop=stop, target=target, tif=tif)
        )

    def modify(
        self,
        account: str,
        broker_order_id: str,
        *,
        qty: int | None = None,
        price: Decimal | None = None,
        stop: Decimal | None = None,
    ) -> None:
        self._call(
            lambda: self._sim.modify(account, broker_order_id, qty=qty, price=price, stop=stop)
        )

    def cancel(self, account: str, broker_order_id: str) -> None:
        self._call(lambda: self._sim.cancel(account, broker_order_id))

    def working_orders(self, account: str) -> list[WorkingOrder]:
        return self._call(lambda: self._sim.working_orders(account))

    def control(self, name: str, *args: Any) -> Any:
        """Any other control of :class:`RunningSim` (tests)."""
        return self._call(lambda: getattr(self._sim, name)(*args))

    def read(self, reader: Callable[[RunningSim], T]) -> T:
        """Run ``reader`` on the local server, in its thread (tests)."""
        return self._call(lambda: reader(self._sim))
