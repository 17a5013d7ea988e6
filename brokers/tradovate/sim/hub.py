"""The local server's WebSockets: the trading socket and the market-data socket, real framing.

Each socket sends ``o``, expects ``authorize`` with a valid token, then answers requests in
order (``user/syncrequest`` subscribes it to its user's ``props``; ``md/subscribeQuote`` to a
contract's quotes) and pushes events through one ordered outbox, with an ``h`` heartbeat when it
has been quiet for ``heartbeat_s``; messages queued together leave in one ``a[...]`` frame, as
Tradovate's do (several events per frame). A socket whose client heartbeat (``[]``) stops for
``client_timeout_s`` is closed, as Tradovate closes it.

The user's faults (:mod:`.faults`) apply to every request on a socket too: ``authorize`` (when
named), ``user/syncrequest`` and ``md/subscribeQuote`` — a ticket in the reply's ``d``, a
``{"s":429}``, a 423, a 401, an answer in place of the real one, no answer. Besides them, on
demand: a sync answer split in several replies (``split_sync``) or missing lists
(``drop_sync_keys``); ``props`` entities sent as arrays, consecutive entities of one type and
event in one event (``entity_arrays``); a socket ended by
``c[code,"reason"]`` (``close``) or by a ``shutdown`` event (``shutdown``); a quote subscription
refused (``refuse_quotes``); ``drop`` (close a user's sockets and, with an outage, refuse new
ones), ``freeze`` (silent without closing), ``push_raw`` (any text). A revoked token closes the
sockets it authorized.
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
from brokers.tradovate.sim.faults import AUTHORIZE, Faults, Verdict
from brokers.tradovate.wire import (
    FrameError,
    Request,
    dumps,
    encode_close,
    encode_messages,
    loads,
    parse_client_frame,
)

log = structlog.get_logger("brokers.tradovate.sim")

# (user, endpoint, query, body) -> (status, data): the REST API, reachable over the socket too
RestCall = Callable[[int, str, str, Any], Awaitable[tuple[int, Any]]]
# (method, path, body, user): how a request is recorded (the server's ``requests``)
Record = Callable[[str, str, Any, int | None], None]
PROBE = "probe"  # the local server's own no-op request: how a test knows a socket is drained
SYNC = "user/syncrequest"
SUBSCRIBE = "md/subscribequote"
UNSUBSCRIBE = "md/unsubscribequote"
CLOSE_AFTER = "\x00close"  # an outbox entry: close the socket once what is before it is sent
NOT_ENTITLED = "Not entitled to real-time market data for this exchange"


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
    heard_at: float = field(default_factory=trio.current_time)  # the client's last heartbeat

    def send(self, text: str) -> None:
        if not self.frozen:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                self.outbox.send_nowait(text)


@dataclass
class SyncShape:
    """How a user's next sync answers are shaped (test controls)."""

    parts: int = 1  # replies the answer is split into
    drop: list[tuple[frozenset[str], int]] = field(default_factory=list)  # keys, answers left


class Hub:
    def __init__(
        self,
        exchange: SimExchange,
        auth: SimAuth,
        faults: Faults,
        rest: RestCall,
        heartbeat_s: float = 2.5,
        *,
        record: Record | None = None,
        client_timeout_s: float | None = 10.0,
    ) -> None:
        self.exchange = exchange
        self.auth = auth
        self.faults = faults
        self.rest = rest
        self.heartbeat_s = heartbeat_s
        self.client_timeout_s = client_timeout_s
        self.record = record
        self.sockets: list[SimSocket] = []
        self.sync_shapes: dict[int, SyncShape] = {}
        self.entity_arrays: set[int] = set()  # users whose props entities go as arrays
        self.refused_quotes: dict[str, tuple[int, Any]] = {}  # symbol -> (status, d)
        self.authorized: list[tuple[int, str, float]] = []  # (user, kind, trio time)
        self.heartbeat_closes = 0  # sockets closed for a missing client heartbeat
        self._batch: dict[int, list[tuple[str, str, dict[str, Any]]]] = {}
        self._flush_scheduled = False
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
                    if self.client_timeout_s is not None:
                        nursery.start_soon(self._watchdog, sock, self.client_timeout_s)
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
            texts = ["h"] if text is None else [text, *_ready(receive)]
            closing = CLOSE_AFTER in texts
            if closing:
                texts = texts[: texts.index(CLOSE_AFTER)]
            try:
                for frame in _batched(texts):
                    await websocket.send_text(frame)
            except Exception:  # the peer went away: the receive side ends the socket
                return
            if closing:
                sock.scope.cancel()
                return

    async def _watchdog(self, sock: SimSocket, timeout: float) -> None:
        """Close a socket whose client stopped sending its ``[]`` heartbeat."""
        while True:
            await trio.sleep_until(sock.heard_at + timeout)
            if sock.frozen:
                sock.heard_at = trio.current_time()  # a frozen socket hears nothing anyway
                continue
            if trio.current_time() - sock.heard_at >= timeout:
                self.heartbeat_closes += 1
                log.info("no client heartbeat: closing the socket", kind=sock.kind)
                sock.scope.cancel()
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
            if sock.frozen:
                continue
            if request is None:
                sock.heard_at = trio.current_time()
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
        if request.endpoint.lower() != AUTHORIZE:
            self._reply(sock, request, 401, "authorize first")
            return True
        token = request.body.strip()
        user = self.auth.user_of(token)
        if user is None:
            self._reply(sock, request, 401, "Access is denied")
            return False
        if self.faults.of(user).outage:
            return False  # as if the network were down: no answer, the socket just ends
        verdict = self.faults.check(user, AUTHORIZE, socket=True, rate_limited=False)
        if not verdict.serve:
            if verdict.silent:
                return True
            self._reply(sock, request, verdict.status or 401, "Access is denied")
            return False
        sock.user_id, sock.token = user, token
        self.authorized.append((user, sock.kind, trio.current_time()))
        self._reply(sock, request, 200, None)
        return True

    def _answer_fault(self, sock: SimSocket, request: Request, verdict: Verdict) -> None:
        """A fault in place of the answer: a status (``{"s":429}``...), a body, or nothing."""
        if verdict.silent:
            return
        if verdict.status is not None:
            self._reply(sock, request, verdict.status, verdict.body)
        else:
            self._reply(sock, request, 200, verdict.body)

    async def _trading(self, sock: SimSocket, request: Request) -> None:
        assert sock.user_id is not None
        endpoint = request.endpoint.lower()
        if endpoint == PROBE:
            self._reply(sock, request, 200, None)  # answered in order, costs nothing
            return
        try:
            body = loads(request.body) if request.body.strip() else None
        except FrameError:
            self._reply(sock, request, 400, "the body is not JSON")
            return
        if endpoint == SYNC:
            self._sync(sock, request, body)
            return
        status, data = await self.rest(sock.user_id, request.endpoint, request.query, body)
        if status == 0:
            return  # a fault that answers nothing
        self._reply(sock, request, status, data)

    def _sync(self, sock: SimSocket, request: Request, body: Any) -> None:
        user = sock.user_id
        assert user is not None
        fields = body if isinstance(body, Mapping) else {}
        self._record("WS", SYNC, dict(fields), user)
        verdict = self.faults.check(user, SYNC, fields.get("p-ticket"), socket=True)
        if not verdict.serve:
            self._answer_fault(sock, request, verdict)
            return
        sock.subscribed = True
        types = fields.get("entityTypes")
        answer = self.exchange.sync(
            user, [str(t) for t in types] if isinstance(types, list) else None
        )
        if verdict.corrupt:
            self._reply(sock, request, 200, '{"accounts": [')  # a string, not the sync
            return
        shape = self.sync_shapes.get(user, SyncShape())
        for dropped in self._dropped(shape):
            answer.pop(dropped, None)
        keys = list(answer)
        parts = max(1, min(shape.parts, len(keys)))
        if parts == 1:
            self._reply(sock, request, 200, answer)
            return
        size = math.ceil(len(keys) / parts)
        for start in range(0, len(keys), size):
            self._reply(sock, request, 200, {k: answer[k] for k in keys[start : start + size]})

    @staticmethod
    def _dropped(shape: SyncShape) -> frozenset[str]:
        if not shape.drop:
            return frozenset()
        keys, left = shape.drop[0]
        if left <= 1:
            shape.drop.pop(0)
        else:
            shape.drop[0] = (keys, left - 1)
        return keys

    def _market_data(self, sock: SimSocket, request: Request) -> None:
        assert sock.user_id is not None
        endpoint = request.endpoint.lower()
        if endpoint not in (SUBSCRIBE, UNSUBSCRIBE):
            self._reply(sock, request, 404, f"unknown endpoint {request.endpoint}")
            return
        try:
            body = loads(request.body) if request.body.strip() else {}
        except FrameError:
            body = {}
        fields = body if isinstance(body, Mapping) else {}
        self._record("MD", endpoint, dict(fields), sock.user_id)
        verdict = self.faults.check(
            sock.user_id, endpoint, fields.get("p-ticket"), socket=True, rate_limited=False
        )
        if not verdict.serve:
            self._answer_fault(sock, request, verdict)
            return
        symbol = fields.get("symbol")
        contract = self.exchange.contract(symbol) if isinstance(symbol, str) else None
        if contract is None:
            self._reply(sock, request, 400, f"unknown symbol {symbol!r}")
            return
        if endpoint == UNSUBSCRIBE:
            sock.quotes.discard(contract.id)
            self._reply(sock, request, 200, {})
            return
        refused = self.refused_quotes.get(contract.name)
        if refused is not None:
            self._reply(sock, request, *refused)
            return
        sock.quotes.add(contract.id)
        self._reply(sock, request, 200, {"contractId": contract.id})
        price = self.exchange.prices.get(contract.id)
        if price is not None:
            sock.send(self._quote(contract, price))

    def _reply(self, sock: SimSocket, request: Request, status: int, data: Any) -> None:
        if sock.user_id is not None and self._batch.get(sock.user_id):
            self._flush(sock.user_id)  # the pushes an answer caused go before it, as usual
        message: dict[str, Any] = {"s": status, "i": request.request_id}
        if data is not None:
            message["d"] = data
        sock.send(encode_messages([message]))

    def _record(self, method: str, path: str, body: Any, user: int | None) -> None:
        if self.record is not None:
            self.record(method, path, body, user)

    # -- pushes ----------------------------------------------------------------------------------

    def on_props(self, user_id: int, entity_type: str, event: str, entity: dict[str, Any]) -> None:
        if user_id in self.entity_arrays:
            self._batch.setdefault(user_id, []).append((entity_type, event, entity))
            if not self._flush_scheduled:
                self._flush_scheduled = True
                trio.lowlevel.current_trio_token().run_sync_soon(self._flush_all)
            return
        data = {"entityType": entity_type, "eventType": event, "entity": entity}
        self._send_props(user_id, [{"e": "props", "d": data}])

    def _flush_all(self) -> None:
        self._flush_scheduled = False
        for user_id in list(self._batch):
            self._flush(user_id)

    def _flush(self, user_id: int) -> None:
        """A user's pushes held together: consecutive entities of one type and event share one
        ``props`` event whose ``entity`` is an array; all of the events leave in one frame."""
        messages: list[dict[str, Any]] = []
        for entity_type, event, entity in self._batch.pop(user_id, []):
            last = messages[-1]["d"] if messages else None
            if last is not None and (last["entityType"], last["eventType"]) == (entity_type, event):
                last["entity"].append(entity)
                continue
            data = {"entityType": entity_type, "eventType": event, "entity": [entity]}
            messages.append({"e": "props", "d": data})
        if messages:
            self._send_props(user_id, messages)

    def _send_props(self, user_id: int, messages: list[dict[str, Any]]) -> None:
        text = encode_messages(messages)
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

    def of_user(self, user_id: int, kind: str | None = None) -> list[SimSocket]:
        return [
            s for s in self.sockets if s.user_id == user_id and (kind is None or s.kind == kind)
        ]

    def drop(self, user_id: int) -> None:
        for sock in self.of_user(user_id):
            sock.scope.cancel()

    def freeze(self, user_id: int) -> None:
        for sock in self.of_user(user_id):
            sock.frozen = True

    def push_raw(self, user_id: int, text: str) -> None:
        for sock in self.of_user(user_id, "trading"):
            sock.send(text)

    def close(self, user_id: int, code: int, reason: str, kind: str | None = "trading") -> int:
        """End the user's sockets with ``c[code,"reason"]``; how many."""
        socks = self.of_user(user_id, kind)
        for sock in socks:
            sock.send(encode_close(code, reason))
            sock.send(CLOSE_AFTER)
        return len(socks)

    def shutdown(
        self, user_id: int, reason_code: str, reason: str, kind: str | None = "trading"
    ) -> int:
        """A ``shutdown`` event on the user's sockets, which then close; how many."""
        socks = self.of_user(user_id, kind)
        event = {"e": "shutdown", "d": {"reasonCode": reason_code, "reason": reason}}
        for sock in socks:
            sock.send(encode_messages([event]))
            sock.send(CLOSE_AFTER)
        return len(socks)

    @staticmethod
    def encode(value: Any) -> str:
        return dumps(value)
