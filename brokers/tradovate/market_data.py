"""Quotes from Tradovate's market-data socket, as the engine's ``Quote`` events (risk ticks).

One md socket serves the whole broker; it is authorized with the token of any live login. It
subscribes (``md/subscribeQuote``) to every contract the engine holds or trades — each login
asks for the symbols of its positions and orders as it learns them — plus the configured
``quote_symbols``. Each quote's ``Trade`` price becomes a ``Quote``; quotes without a trade
entry are skipped. A dead socket is reconnected with capped exponential backoff (a socket the
broker ended — ``c[...]``, a ``shutdown`` event — too, never at once).

Subscriptions go through the REST client of the login whose token opened the socket: its budget,
a penalty ticket in the reply waited out and the request sent again with it, a captcha or
``{"s":429}`` locking that login out (the socket then moves to a live login's token when it has
something to subscribe). A subscription the broker refuses (not entitled to the
exchange's data, an error, a captcha, a symbol it does not know) is asked again after
``quote_retry_initial_s``, doubling up to ``quote_retry_max_s``. Meanwhile every live session
hears ``PricesUnavailable`` for the symbol — once per outage, and a session that comes up during
it on coming up — so the engine can say which accounts are blind (S10.3 ``stale_prices``);
``PricesRestored`` when a subscription succeeds again.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
import trio

from brokers.base import BrokerEvent, PricesRestored, PricesUnavailable, Quote
from brokers.clock import Clock
from brokers.tradovate import entities
from brokers.tradovate.contracts import ContractCache
from brokers.tradovate.pacing import doubling, jittered
from brokers.tradovate.rest import BrokerError, RestClient, business_error
from brokers.tradovate.settings import TradovateSettings
from brokers.tradovate.socket import BrokerClosed, SocketClosed, TradovateSocket
from brokers.tradovate.wakeup import Wakeup
from brokers.tradovate.wire import Push, Reply

log = structlog.get_logger("brokers.tradovate")

QUIET_ROUNDS = 50
SUBSCRIBE = "md/subscribeQuote"


class QuoteRefused(BrokerError):
    """The broker answered a subscription with something other than a subscription."""


@dataclass
class _Refusal:
    failures: int
    retry_at: float  # trio time
    reason: str


class TokenSource(Protocol):
    def access_token(self) -> str | None: ...


class Login(Protocol):
    """What market data uses of a login's session: its token, its REST client, its sink."""

    @property
    def connection(self) -> str: ...

    @property
    def retired(self) -> bool: ...

    @property
    def live(self) -> bool: ...

    @property
    def link(self) -> TokenSource: ...

    @property
    def rest(self) -> RestClient: ...

    def emit(self, event: BrokerEvent) -> None: ...


class MarketDataHost(Protocol):
    """What market data uses of the broker: its logins, the contract table, where quotes go."""

    @property
    def settings(self) -> TradovateSettings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def contracts(self) -> ContractCache: ...

    @property
    def stats(self) -> Counter[str]: ...

    def sessions(self) -> Sequence[Login]: ...

    def quote_source(self) -> Login | None: ...

    def deliver_quote(self, quote: Quote) -> None: ...


class MarketData:
    def __init__(self, broker: MarketDataHost) -> None:
        self.broker = broker
        self.settings = broker.settings
        self.wanted: set[str] = set(self.settings.quote_symbols)
        self.subscribed: set[str] = set()
        self.refused: dict[str, _Refusal] = {}
        self._told: dict[str, set[Login]] = {}  # symbol -> sessions told unavailable
        self._symbols: dict[int, str] = {}  # contract id -> symbol
        self.phase = "idle"  # idle, connecting, live, waiting
        self.socket: TradovateSocket | None = None
        self._changed = Wakeup()
        self._progress = Wakeup()
        self._subscribing = False
        self._last: dict[str, Quote] = {}

    def want(self, symbol: str) -> None:
        if symbol not in self.wanted:
            self.wanted.add(symbol)
            self.poke()

    def poke(self) -> None:
        self._changed.set()

    def _progressed(self) -> None:
        self._progress.set()

    def _set_phase(self, phase: str) -> None:
        self.phase = phase
        self._progressed()

    async def _wait_change(self) -> None:
        await self._changed.wait()

    def _missing(self) -> list[str]:
        """Symbols to subscribe now (a refused one once its retry is due)."""
        now = trio.current_time()
        waiting = {s for s, r in self.refused.items() if r.retry_at > now}
        return sorted(self.wanted - self.subscribed - waiting)

    def _next_retry(self) -> float | None:
        """Seconds until the first refused subscription is due again."""
        pending = [r.retry_at for s, r in self.refused.items() if s not in self.subscribed]
        if not pending:
            return None
        return max(0.0, min(pending) - trio.current_time())

    # -- what the sessions hear --------------------------------------------------------------------

    def session_live(self, session: Login) -> None:
        """A session came up: it hears of the outages under way, then subscriptions go on."""
        for symbol in sorted(self.refused):
            self._tell_unavailable(session, symbol)
        self.poke()

    def _tell_unavailable(self, session: Login, symbol: str) -> None:
        told = self._told.setdefault(symbol, set())
        if session in told or session.retired or not session.live:
            return
        told.add(session)
        session.emit(PricesUnavailable(session.connection, symbol, self.refused[symbol].reason))

    def _refuse(self, symbol: str, reason: str) -> None:
        previous = self.refused.get(symbol)
        failures = 1 if previous is None else previous.failures + 1
        delay = doubling(
            self.settings.quote_retry_initial_s, failures, self.settings.quote_retry_max_s
        )
        self.refused[symbol] = _Refusal(failures, trio.current_time() + delay, reason)
        if previous is None:
            log.error("quotes unavailable", symbol=symbol, why=reason, retry_in_s=delay)
        else:
            log.warning("quote subscription refused again", symbol=symbol, retry_in_s=delay)
        for session in self.broker.sessions():
            self._tell_unavailable(session, symbol)

    def _restored(self, symbol: str) -> None:
        if self.refused.pop(symbol, None) is None:
            return
        log.info("quotes restored", symbol=symbol)
        for session in sorted(self._told.pop(symbol, set()), key=lambda s: s.connection):
            if not session.retired:
                session.emit(PricesRestored(session.connection, symbol))

    # -- the md task -------------------------------------------------------------------------------

    def last_quotes(self) -> list[Quote]:
        """The latest quote of every contract, by symbol."""
        return [self._last[symbol] for symbol in sorted(self._last)]

    async def run(self) -> None:
        failures = 0
        while True:
            source = self.broker.quote_source()
            if not self.wanted or source is None:
                self._set_phase("idle")
                await self._wait_change()
                continue
            token = source.link.access_token()
            if token is None:
                self._set_phase("idle")
                await self._wait_change()
                continue
            self._set_phase("connecting")
            went_live, ended = await self._serve(source, token)
            if went_live and not isinstance(ended, BrokerClosed):
                failures = 0  # it was up: try again at once
                continue
            failures += 1
            self._set_phase("waiting")
            delay = jittered(self.settings.backoff_initial_s, failures, self.settings.backoff_max_s)
            with trio.move_on_after(delay):
                if isinstance(ended, BrokerClosed):
                    await trio.sleep_forever()  # the broker asked us to go: no early retry
                await self._wait_change()  # a poke (a login came up) ends the wait early

    async def _serve(self, source: Login, token: str) -> tuple[bool, SocketClosed | None]:
        socket = TradovateSocket(
            self.settings.md_url,
            token,
            self._on_push,
            heartbeat_s=self.settings.heartbeat_s,
            dead_after_s=self.settings.dead_after_s,
            timeout_s=self.settings.request_timeout_s,
            name="md",
        )
        went_live = False

        async def while_up() -> None:
            nonlocal went_live
            went_live = True
            self.socket, self.subscribed = socket, set()
            self._set_phase("live")
            while True:
                if not source.live and self._missing():
                    other = self.broker.quote_source()
                    if other is not None and other is not source:
                        # Its login is down (locked out, say): subscribe with a live one.
                        log.info("market data moves to another login", login=other.connection)
                        return
                self._subscribing = True
                try:
                    for symbol in self._missing():
                        await self._subscribe(socket, source, symbol)
                finally:
                    self._subscribing = False
                    self._progressed()
                if not self._missing():
                    retry = self._next_retry()
                    with trio.move_on_after(math.inf if retry is None else retry):
                        await self._wait_change()

        ended = await socket.serve(while_up)
        if ended is not None:
            log.warning("market-data socket closed", why=str(ended))
        self.socket = None
        return went_live, ended

    async def _subscribe(self, socket: TradovateSocket, source: Login, symbol: str) -> None:
        try:
            contract_id = await self.broker.contracts.id_of(symbol, source.rest)
        except BrokerError as error:
            self._refuse(symbol, f"unknown contract ({error})")
            return
        self._symbols[contract_id] = symbol

        async def on_socket(path: str, body: Any) -> Reply:
            return await socket.request(path, body)

        try:
            answer = await source.rest.post(
                SUBSCRIBE, {"symbol": symbol}, on_socket, http_fallback=False
            )
            _check_subscribed(answer)
        except BrokerError as error:
            if not socket.live:
                await trio.sleep_forever()  # the serving task ends this socket
            self._refuse(symbol, str(error))
            return
        self.subscribed.add(symbol)
        self._restored(symbol)

    async def _on_push(self, push: Push) -> None:
        if push.event != "md":
            return
        try:
            quotes = entities.quotes(push.data)
        except entities.EntityError as error:
            self.broker.stats["malformed"] += 1
            log.error("malformed quote", problem=str(error))
            raise SocketClosed(f"malformed quote: {error}") from None
        now = self.broker.clock.now()
        for quote in quotes:
            symbol = self._symbols.get(quote.contract_id)
            if symbol is not None and quote.trade is not None and quote.trade > 0:
                self._last[symbol] = Quote(symbol, quote.trade, now)
                self.broker.deliver_quote(self._last[symbol])

    # -- for TradovateBroker.settled ---------------------------------------------------------------

    async def quiet(self) -> None:
        """Return once no connection or subscription is under way and every frame the server sent
        before now has been handled (or after many rounds of a socket that will not come up)."""
        for _ in range(QUIET_ROUNDS):
            source = self.broker.quote_source()
            pending = (
                self.phase == "connecting"
                or self._subscribing
                or (self.phase == "live" and bool(self._missing()))
                or (self.phase in ("idle", "waiting") and bool(self.wanted) and source is not None)
            )
            if pending:
                self.poke()
                await self._next_progress()
                continue
            socket = self.socket
            if self.phase == "live" and socket is not None:
                try:
                    await socket.request("probe")
                except SocketClosed:
                    await self._next_progress()
                    continue
            return

    async def _next_progress(self) -> None:
        with trio.move_on_after(1.0):
            await self._progress.wait()


def _check_subscribed(answer: Any) -> None:
    """A subscription's answer is nothing, or an object that is not an error."""
    if answer is None:
        return
    if not isinstance(answer, Mapping):
        raise QuoteRefused(f"{SUBSCRIBE}: refused ({str(answer)[:200]})")
    refused = business_error(answer)
    if refused is not None:
        raise QuoteRefused(f"{SUBSCRIBE}: refused ({refused})")
