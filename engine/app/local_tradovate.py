"""The local Tradovate-compatible server inside the live engine (``[broker] kind =
"tradovate-sim"``, or ``python -m engine run --tradovate-sim``).

    local = LocalTradovate(config, data_dir, clock, contracts)  # in open(): binds its socket
    engine = Engine(..., brokers={"tradovate-sim": local.broker})
    engine.start()                     # each connection's session makes it a login at the server
    async with local.running():        # in the engine's trio loop: the server, then the adapter
        local.venue.set_price(...)     # the demo's market and leader act at the server

The socket is bound when the object is made, before the engine starts, so the adapter is built
then — as for the real Tradovate — with the server's URLs, and a busy port is a clear start-up
error. The server serves on that socket in the engine's trio loop; the adapter runs once it
does. Loopback only: the configuration refuses any other host.

Each connection is a login at the server named after the connection, holding its accounts
(connections added later through the API become logins too). A login starts without a token —
one saved by an earlier run's server is worthless, so it is deleted — so every connection waits
in ``reauth_required`` until Re-authorize sends the browser to the server's authorize page,
where "Sign in as <connection>" approves it (decision 0010). The server keeps nothing across
runs: a restarted engine meets a new server, flat, and reconciles with it.

The client secret is drawn at random for the run and registered with the log redaction.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from decimal import Decimal
from functools import partial
from pathlib import Path

import structlog
import trio

from brokers.base import Broker, EventSink, OrderType
from brokers.clock import Clock
from brokers.instruments import ContractTable
from brokers.tradovate.broker import TradovateBroker
from brokers.tradovate.session import TradovateSession
from brokers.tradovate.sim import RunningSim, SimError, serve_sim, sim_settings
from engine.app.config import TradovateSimConfig
from engine.app.demo import LeaderBracket, VenueError
from engine.app.listening import BindError, listen, url_of
from engine.app.logs import SECRETS
from engine.app.setup_errors import BrokerSetupError

log = structlog.get_logger("engine.app.local_tradovate")

TOKEN_DIR = "tradovate-sim"  # in the data directory: the tokens this run's server issued
CLIENT_ID = "local-client"
LIVE_POLL_S = 0.25  # how often a wait for a login to come up looks


def bind(host: str, port: int) -> socket.socket:
    """The server's listening socket; a one-line :class:`BrokerSetupError` if it cannot be."""
    try:
        return listen(host, port, "the local Tradovate server")
    except BindError as error:
        raise BrokerSetupError(f"broker: {error}") from None


class LocalTradovate:
    """The server (bound now, served by :meth:`running`), the adapter pointed at it, and the
    logins of the engine's connections."""

    def __init__(
        self,
        config: TradovateSimConfig,
        data_dir: Path,
        clock: Clock,
        contracts: ContractTable,
        *,
        quote_symbols: Iterable[str] = (),
    ) -> None:
        self.clock = clock
        self.contracts = contracts
        self._secret = secrets.token_urlsafe(24)
        SECRETS.add(self._secret)
        self._listener: socket.socket | None = bind(config.host, config.port)
        self.url = url_of(self._listener)
        settings = sim_settings(
            self.url,
            CLIENT_ID,
            self._secret,
            data_dir / TOKEN_DIR,
            quote_symbols=tuple(quote_symbols),
        )
        self.adapter = TradovateBroker(settings, clock)
        self.broker: Broker = _Logins(self)
        self._lock = threading.Lock()
        self._waiting: dict[str, set[str]] = {}  # logins to make once the server serves
        self._sim: RunningSim | None = None
        self._trio_token: trio.lowlevel.TrioToken | None = None

    # -- logins (any thread) -----------------------------------------------------------------------

    def login(self, connection: str, accounts: tuple[str, ...]) -> None:
        """Make ``connection`` a login holding ``accounts``: now if the server serves (in its
        trio loop, ahead of the session's own start), else as soon as it does."""
        with self._lock:
            token = self._trio_token
            if token is None:
                self._waiting.setdefault(connection, set()).update(accounts)
        if token is None:
            self._forget_token(connection)
            return
        with suppress(trio.RunFinishedError):
            token.run_sync_soon(partial(self._make_login, connection, accounts))

    def _forget_token(self, connection: str) -> None:
        """A token saved by an earlier run's server: this one never issued it."""
        try:
            self.adapter.tokens.delete(connection)
        except OSError as error:  # the session then finds it refused: reauth_required all the same
            log.warning(
                "an earlier run's token could not be removed",
                connection=connection,
                error=error.strerror or str(error),
            )

    def _make_login(self, connection: str, accounts: Iterable[str]) -> None:
        """In the trio loop; never raises (a ``run_sync_soon`` callback must not)."""
        sim = self._sim
        if sim is None:
            return
        try:
            sim.add_user(connection, sorted(accounts))
        except SimError as error:
            log.error(
                "no login at the local Tradovate server", connection=connection, error=str(error)
            )

    # -- running (the engine's trio loop) ----------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[RunningSim]:
        """Serve the server, make the waiting logins, then run the adapter, until the block
        ends (the adapter stops first)."""
        listener, self._listener = self._listener, None
        if listener is None:
            raise RuntimeError("the local Tradovate server runs once per engine")
        async with serve_sim(
            self.clock,
            contracts=self.contracts,
            client_id=CLIENT_ID,
            client_secret=self._secret,
            listener=listener,
        ) as sim:
            with self._lock:
                waiting, self._waiting = self._waiting, {}
                self._sim = sim
                self._trio_token = trio.lowlevel.current_trio_token()
            for connection, accounts in waiting.items():
                self._make_login(connection, accounts)
            log.info("local tradovate serving", url=self.url, logins=sorted(waiting))
            try:
                async with self.adapter.running():
                    yield sim
            finally:
                with self._lock:
                    self._sim = None
                    self._trio_token = None

    def close(self) -> None:
        """Close the socket of a server that never served (a start that failed)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    # -- what the demo needs (the trio loop) -------------------------------------------------------

    @property
    def venue(self) -> SimVenue:
        sim = self._sim
        if sim is None:
            raise RuntimeError("the local Tradovate server is not serving")
        return SimVenue(sim, self.is_delivering)

    def _session(self, connection: str) -> TradovateSession | None:
        return next((s for s in self.adapter.sessions() if s.connection == connection), None)

    def is_delivering(self, connection: str) -> bool:
        """Whether the connection's login is up (authorized, its socket open)."""
        session = self._session(connection)
        return session is not None and session.live

    async def wait_live(self, connection: str) -> None:
        """Return once the connection's login is up."""
        while not self.is_delivering(connection):
            await trio.sleep(LIVE_POLL_S)


class _Logins(Broker):
    """The adapter, making each connection a login at the server before its session exists."""

    def __init__(self, local: LocalTradovate) -> None:
        self.local = local

    def session(
        self, connection: str, accounts: tuple[str, ...], sink: EventSink
    ) -> TradovateSession:
        self.local.login(connection, accounts)
        return self.local.adapter.session(connection, accounts, sink)

    def authorize_url(self, connection: str, state: str, redirect_uri: str) -> str:
        return self.local.adapter.authorize_url(connection, state, redirect_uri)

    async def exchange_code(self, connection: str, code: str, redirect_uri: str) -> None:
        await self.local.adapter.exchange_code(connection, code, redirect_uri)


class SimVenue:
    """The local server as the demo's venue (:class:`engine.app.demo.Venue`): quotes on its market
    data, trades by the account's owner."""

    def __init__(self, sim: RunningSim, delivering: Callable[[str], bool]) -> None:
        self.sim = sim
        self._delivering = delivering

    def set_price(self, symbol: str, last: Decimal) -> None:
        try:
            self.sim.set_price(symbol, last)
        except SimError as error:
            raise VenueError(str(error)) from None

    def trade(
        self, account: str, symbol: str, qty: int, fills: tuple[int, ...] | None = None
    ) -> None:
        try:
            self.sim.trade(account, symbol, qty, fills)
        except SimError as error:
            raise VenueError(str(error)) from None

    def bracket(self, account: str, bracket: LeaderBracket) -> None:
        try:
            self.sim.place_working(
                account,
                bracket.symbol,
                bracket.qty,
                OrderType.LIMIT,
                price=bracket.price,
                bracket_stop=bracket.stop,
                bracket_target=bracket.target,
            )
        except SimError as error:
            raise VenueError(str(error)) from None

    def position(self, account: str, symbol: str) -> int:
        try:
            return self.sim.position(account, symbol)
        except SimError as error:
            raise VenueError(str(error)) from None

    def is_delivering(self, connection: str) -> bool:
        return self._delivering(connection)


__all__ = ["CLIENT_ID", "TOKEN_DIR", "LocalTradovate", "SimVenue", "bind"]
