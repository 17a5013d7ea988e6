"""The local server's WebSockets: the trading socket and the market-data socket, real framing.

Each socket sends ``o``, expects ``authorize`` with a valid token, then answers requests in
order (``user/syncrequest`` subscribes it to its user's ``props``; ``md/subscribeQuote`` to a
contract's quotes) and pushes events through one ordered outbox, with an ``h`` heartbeat when it
has been quiet for ``heartbeat_s``; messages queued together leave in one ``a[...]`` frame, as
Tradovate's do. Faults on demand: ``drop`` closes a user's sockets (and,
with an outage, refuses new ones), ``freeze`` makes them go silent without closing, a revoked
token closes the sockets it authorized, ``push_raw`` sends any text (a malformed frame).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog
import trio
from starlette.websockets import WebSocket, WebSocketDisconnect

from brokers.tradovate.sim.auth import SimAuth
from brokers.tradovate.sim.book import SimContract
from brokers.tradovate.sim.exchange import SimExchange
from brokers.tradovate.sim.faults import Faults
from brokers.tradovate.wire import (
    FrameError,
    Request,
    dumps,
    encode_messages,
    loads,
    parse_client_frame,
)

log = structlog.get_logger("brokers.tradovate.sim")

# (user, endpoint, query, body) -> (status, data): the REST API, reachable over the socket too
RestCall = Callable[[int, str, str, Any], Awaitable[tuple[int, Any]]]
PROBE = "probe"  # the local server's own no-op request: how a test knows a socket is drained


def _ready(receive: trio.MemoryReceiveChannel[str]) -> list[str]:
    """Whatever else is queued right now (without waiting)."""
    texts: list[str] = []
    while True:
        try:
            texts.append(receive.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return texts


def _batched(texts: list[str]) -> list[str]:
    """Consecutive ``a[...]`` frames as one, as Tradovate sends several messages per frame."""
    frames: list[str] = []
    run: list[str] = []
    for text in texts:
        if text.startswith("a[") and text.endswith("]") and len(text) > 3:
            run.append(text[2:-1])
            continue
        if run:
            frames.append("a[" + ",".join(run) + "]")
            run = []
        frames.append(text)
    if run:
        frames.append("a[" + ",".join(run) + "]")
    return frames


@dataclass(eq=False)
class SimSocket:
    kind: str  # "trading" or "md"
    outbox: trio.MemorySendChannel[str]
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    user_id: int | None = None
    token: str | None = field(default=None, repr=False)
    subscribed: bool = False
    quotes: set[int] = field(default_factory=set)
    frozen: bool = False

    def send(self, text: str) -> None:
        if not self.frozen:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                self.outbox.send_nowait(text)


class Hub:
    def __init__(
        self,
        exchange: SimExchange,
        auth: SimAuth,
        faults: Faults,
        rest: RestCall,
        heartbeat_s: float = 2.5,
    ) -> None:
        self.exchange = exchange
        self.auth = auth
        self.faults = faults
        self.rest = rest
        self.heartbeat_s = heartbeat_s
        self.sockets: list[SimSocket] = []
        exchange.props_listeners.append(self.on_props)
        exchange.quote_listeners.append(self.on_quote)
        auth.on_revoke.append(self.on_revoke)

    # -- one socket ------------------------------------------------------------------------------

    async def serve(self, websocket: WebSocket, kind: str) -> None:
        await websocket.accept()
        send, receive = trio.open_memory_channel[str](math.inf)
        sock = SimSocket(kind, send)
        self.sockets.append(sock)
        try:
            with sock.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._sender, websocket, sock, receive)
                    sock.send("o")
                    await self._receive(websocket, sock)
                    send.close()  # what is queued (a last reply) still goes out, briefly
                    nursery.cancel_scope.deadline = trio.current_time() + 1
        finally:
            self.sockets.remove(sock)
            send.close()
            # Shielded; an error means the peer closed it first.
            with (
                trio.CancelScope(shield=True),
                trio.move_on_after(1),
                contextlib.suppress(Exception),
            ):
                await websocket.close()

    async def _sender(
        self, websocket: WebSocket, sock: SimSocket, receive: trio.MemoryReceiveChannel[str]
    ) -> None:
        while True:
            text: str | None = None
            with trio.move_on_after(self.heartbeat_s):
                try:
                    text = await receive.receive()
                except trio.EndOfChannel:
                    return
            if sock.frozen:
                continue
            frames = ["h"] if text is None else _batched([text, *_ready(receive)])
            try:
                for frame in frames:
                    await websocket.send_text(frame)
            except Exception:  # the peer went away: the receive side ends the socket
                return

    async def _receive(self, websocket: WebSocket, sock: SimSocket) -> None:
        while True:
            try:
                text = await websocket.receive_text()
            except (WebSocketDisconnect, KeyError, RuntimeError):
                return
            try:
                request = parse_client_frame(text)
            except FrameError as error:
                log.warning("malformed client frame", problem=str(error))
                continue
            if request is None or sock.frozen:
                continue
            if sock.user_id is None:
                if not self._authorize(sock, request):
                    return
                continue
            if sock.kind == "md":
                self._market_data(sock, request)
            else:
                await self._trading(sock, request)

    def _authorize(self, sock: SimSocket, request: Request) -> bool:
        if request.endpoint.lower() != "authorize":
            self._reply(sock, request, 401, "authorize first")
            return True
        token = request.body.strip()
        user = self.auth.user_of(token)
        if user is None:
            self._reply(sock, request, 401, "Access is denied")
            return False
        if self.faults.of(user).outage:
            return False  # as if the network were down: no answer, the socket just ends
        sock.user_id, sock.token = user, token
        self._reply(sock, request, 200, None)
        return True

    async def _trading(self, sock: SimSocket, request: Request) -> None:
        assert sock.user_id is not None
        if request.endpoint.lower() == PROBE:
            self._reply(sock, request, 200, None)  # answered in order, costs nothing
            return
        if request.endpoint.lower() == "user/syncrequest":
            sock.subscribed = True
            self._reply(sock, request, 200, self.exchange.sync(sock.user_id))
            return
        try:
            body = loads(request.body) if request.body.strip() else None
        except FrameError:
            self._reply(sock, request, 400, "the body is not JSON")
            return
        status, data = await self.rest(sock.user_id, request.endpoint, request.query, body)
        self._reply(sock, request, status, data)

    def _market_data(self, sock: SimSocket, request: Request) -> None:
        endpoint = request.endpoint.lower()
        if endpoint not in ("md/subscribequote", "md/unsubscribequote"):
            self._reply(sock, request, 404, f"unknown endpoint {request.endpoint}")
            return
        try:
            body = loads(request.body) if request.body.strip() else {}
        except FrameError:
            body = {}
        symbol = body.get("symbol") if isinstance(body, Mapping) else None
        contract = self.exchange.contract(symbol) if isinstance(symbol, str) else None
        if contract is None:
            self._reply(sock, request, 400, f"unknown symbol {symbol!r}")
            return
        if endpoint == "md/unsubscribequote":
            sock.quotes.discard(contract.id)
            self._reply(sock, request, 200, {})
            return
        sock.quotes.add(contract.id)
        self._reply(sock, request, 200, {"contractId": contract.id})
        price = self.exchange.prices.get(contract.id)
        if price is not None:
            sock.send(self._quote(contract, price))

    @staticmethod
    def _reply(sock: SimSocket, request: Request, status: int, data: Any) -> None:
        message: dict[str, Any] = {"s": status, "i": request.request_id}
        if data is not None:
            message["d"] = data
        sock.send(encode_messages([message]))

    # -- pushes ----------------------------------------------------------------------------------

    def on_props(self, user_id: int, entity_type: str, event: str, entity: dict[str, Any]) -> None:
        text = encode_messages(
            [{"e": "props", "d": {"entityType": entity_type, "eventType": event, "entity": entity}}]
        )
        for sock in self.sockets:
            if sock.kind == "trading" and sock.subscribed and sock.user_id == user_id:
                sock.send(text)

    def on_quote(self, contract: SimContract, price: Decimal) -> None:
        text: str | None = None
        for sock in self.sockets:
            if sock.kind == "md" and contract.id in sock.quotes:
                text = text or self._quote(contract, price)
                sock.send(text)

    def _quote(self, contract: SimContract, price: Decimal) -> str:
        tick = contract.tick_size
        quote = {
            "id": contract.id,
            "contractId": contract.id,
            "timestamp": self.exchange.timestamp(),
            "entries": {
                "Bid": {"price": price - tick, "size": 10},
                "Offer": {"price": price + tick, "size": 10},
                "Trade": {"price": price, "size": 1},
            },
        }
        return encode_messages([{"e": "md", "d": {"quotes": [quote]}}])

    def on_revoke(self, tokens: set[str]) -> None:
        for sock in list(self.sockets):
            if sock.token in tokens:
                sock.scope.cancel()

    # -- faults ----------------------------------------------------------------------------------

    def of_user(self, user_id: int) -> list[SimSocket]:
        return [s for s in self.sockets if s.user_id == user_id]

    def drop(self, user_id: int) -> None:
        for sock in self.of_user(user_id):
            sock.scope.cancel()

    def freeze(self, user_id: int) -> None:
        for sock in self.of_user(user_id):
            sock.frozen = True

    def push_raw(self, user_id: int, text: str) -> None:
        for sock in self.of_user(user_id):
            if sock.kind == "trading":
                sock.send(text)

    @staticmethod
    def encode(value: Any) -> str:
        return dumps(value)
