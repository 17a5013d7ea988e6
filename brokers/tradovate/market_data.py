"""Quotes from Tradovate's market-data socket, as the engine's ``Quote`` events (risk ticks).

One md socket serves the whole broker; it is authorized with the token of any live login. It
subscribes (``md/subscribeQuote``) to every contract the engine holds or trades — each login
asks for the symbols of its positions and orders as it learns them — plus the configured
``quote_symbols``. Each quote's ``Trade`` price becomes a ``Quote``; quotes without a trade
entry are skipped. A dead socket is reconnected with capped exponential backoff.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import structlog
import trio

from brokers.base import Quote
from brokers.tradovate import entities
from brokers.tradovate.rest import BrokerError
from brokers.tradovate.socket import SocketClosed, TradovateSocket
from brokers.tradovate.wire import Push

if TYPE_CHECKING:
    from brokers.tradovate.broker import TradovateBroker
    from brokers.tradovate.session import TradovateSession

log = structlog.get_logger("brokers.tradovate")

QUIET_ROUNDS = 50


class MarketData:
    def __init__(self, broker: TradovateBroker) -> None:
        self.broker = broker
        self.settings = broker.settings
        self.wanted: set[str] = set(self.settings.quote_symbols)
        self.subscribed: set[str] = set()
        self._refused: set[str] = set()
        self._symbols: dict[int, str] = {}  # contract id -> symbol
        self.phase = "idle"  # idle, connecting, live, waiting
        self.socket: TradovateSocket | None = None
        self._changed: trio.Event | None = None
        self._progress: trio.Event | None = None
        self._subscribing = False
        self._last: dict[str, Quote] = {}

    def want(self, symbol: str) -> None:
        if symbol not in self.wanted:
            self.wanted.add(symbol)
            self.poke()

    def poke(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _progressed(self) -> None:
        if self._progress is not None:
            self._progress.set()
            self._progress = None

    def _set_phase(self, phase: str) -> None:
        self.phase = phase
        self._progressed()

    async def _wait_change(self) -> None:
        if self._changed is None:
            self._changed = trio.Event()
        event = self._changed
        await event.wait()

    def _missing(self) -> list[str]:
        return sorted(self.wanted - self.subscribed - self._refused)

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
            if await self._serve(source, token):
                failures = 0  # it was up: try again at once
                continue
            failures += 1
            self._set_phase("waiting")
            ceiling: float = self.settings.backoff_initial_s * 2.0 ** min(failures - 1, 30)
            with trio.move_on_after(
                min(ceiling, self.settings.backoff_max_s) * random.uniform(0.5, 1.0)
            ):
                await self._wait_change()  # a poke (a login came up) ends the wait early

    async def _serve(self, source: TradovateSession, token: str) -> bool:
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
        async with trio.open_nursery() as nursery:
            ready = trio.Event()

            async def serve() -> None:
                try:
                    await socket.run(ready.set)
                except SocketClosed as closed:
                    log.warning("market-data socket closed", why=str(closed))
                nursery.cancel_scope.cancel()

            nursery.start_soon(serve)
            await ready.wait()
            went_live = True
            self.socket, self.subscribed, self._refused = socket, set(), set()
            self._set_phase("live")
            while True:
                self._subscribing = True
                try:
                    for symbol in self._missing():
                        await self._subscribe(socket, source, symbol)
                finally:
                    self._subscribing = False
                    self._progressed()
                if not self._missing():
                    await self._wait_change()
        self.socket = None
        return went_live

    async def _subscribe(
        self, socket: TradovateSocket, source: TradovateSession, symbol: str
    ) -> None:
        try:
            contract_id = await self.broker.contracts.id_of(symbol, source.rest)
        except BrokerError as error:
            log.error("no quotes for an unknown contract", symbol=symbol, problem=str(error))
            self._refused.add(symbol)
            return
        self._symbols[contract_id] = symbol
        try:
            reply = await socket.request("md/subscribeQuote", {"symbol": symbol})
        except SocketClosed:
            await trio.sleep_forever()  # the serving task ends this socket
        if reply.status != 200:
            log.error("quote subscription refused", symbol=symbol, status=reply.status)
            self._refused.add(symbol)
            return
        self.subscribed.add(symbol)

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
        if self._progress is None:
            self._progress = trio.Event()
        event = self._progress
        with trio.move_on_after(1.0):
            await event.wait()
