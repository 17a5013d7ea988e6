"""One authorized Tradovate WebSocket (trading or market data), over trio-websocket.

:meth:`TradovateSocket.run` connects, waits for ``o``, sends ``authorize`` with the token,
calls ``on_ready`` once the broker answered 200, then reads until the
socket dies: it sends the ``[]`` heartbeat every ``heartbeat_s`` (the broker closes a socket
whose heartbeat stops) and declares the socket dead when nothing at all arrived for
``dead_after_s`` (the broker may skip ``h`` while streaming, so any frame counts). It always
ends by raising :class:`SocketClosed`: :class:`SocketUnauthorized` when the broker refused the
token, :class:`BrokerClosed` when the broker ended it — a ``c[code,"reason"]`` frame or a
``shutdown`` event (``Maintenance``, ``ConnectionQuotaReached``, ``IPQuotaReached``), after
which a reconnection waits a backoff. :meth:`TradovateSocket.serve` runs it together with what
its owner (the login's link, market data) does while it is up, and ends both when either ends.

A request's answer may come in parts (``user/syncrequest`` with ``splitResponses``: several
replies with the request's id): :meth:`TradovateSocket.request_parts` collects them until the
caller says the answer is complete. A request not answered in ``timeout_s`` raises
:class:`SocketTimeout` (the socket itself may be fine).

Frames are handled strictly in the order received: replies resolve their request, pushes are
awaited one by one through ``on_push`` — which therefore must never wait on a request of this
same socket. A frame that is not Tradovate's framing ends the socket (the stream can no longer
be trusted to be complete), with an error log that never repeats the frame.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog
import trio
from trio_websocket import ConnectionClosed, HandshakeError, wrap_client_stream

from brokers.tradovate.wire import (
    HEARTBEAT,
    CloseFrame,
    FrameError,
    HeartbeatFrame,
    MessagesFrame,
    OpenFrame,
    Push,
    Reply,
    encode_request,
    parse_server_frame,
)

log = structlog.get_logger("brokers.tradovate")

MAX_MESSAGE = 64 * 1024 * 1024
OnPush = Callable[[Push], Awaitable[None]]


class SocketClosed(Exception):
    """The socket is gone (or never came up); the message says why."""


class SocketUnauthorized(SocketClosed):
    """The broker refused the token on ``authorize``."""


class BrokerClosed(SocketClosed):
    """The broker ended the socket: a ``c[code,"reason"]`` frame, or a ``shutdown`` event
    (``shutdown`` is its ``reasonCode``)."""

    def __init__(self, message: str, shutdown: str | None = None) -> None:
        super().__init__(message)
        self.shutdown = shutdown


class SocketTimeout(SocketClosed):
    """A request got no (complete) answer in time; ``parts`` are what did arrive."""

    def __init__(self, message: str, parts: tuple[Reply, ...] = ()) -> None:
        super().__init__(message)
        self.parts = parts


Complete = Callable[[list[Reply]], bool]


@dataclass
class _Pending:
    complete: Complete | None = None
    done: trio.Event = field(default_factory=trio.Event)
    parts: list[Reply] = field(default_factory=list)
    error: SocketClosed | None = None


class TradovateSocket:
    def __init__(
        self,
        url: str,
        token: str,
        on_push: OnPush,
        *,
        heartbeat_s: float,
        dead_after_s: float,
        timeout_s: float,
        name: str,
    ) -> None:
        self.url = url
        self._token = token
        self._on_push = on_push
        self.heartbeat_s = heartbeat_s
        self.dead_after_s = dead_after_s
        self.timeout_s = timeout_s
        self.name = name  # for logs: the connection id or "md"
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._ws: Any = None
        self._last_seen = 0.0
        self._dead: str | None = None
        self._ended: BrokerClosed | None = None  # how the broker ended the socket, if it did
        self._split_done: set[int] = set()  # split requests answered or given up
        self.frames = 0  # frames received (for tests and metrics)
        self._serving: trio.CancelScope | None = None

    @property
    def live(self) -> bool:
        return self._ws is not None and self._dead is None

    # -- the socket's life -----------------------------------------------------------------------

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Connect, authorize, call ``on_ready``, then serve until the socket dies."""
        parts = urlsplit(self.url)
        host = parts.hostname or "127.0.0.1"
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        resource = parts.path or "/"
        try:
            with trio.fail_after(self.timeout_s):
                stream: Any
                if secure:
                    stream = await trio.open_ssl_over_tcp_stream(
                        host, port, ssl_context=ssl.create_default_context()
                    )
                else:
                    stream = await trio.open_tcp_stream(host, port)
        except (OSError, trio.TooSlowError) as error:
            raise SocketClosed(
                f"cannot connect to {host}:{port} ({type(error).__name__})"
            ) from None
        try:
            await self._session(stream, host, resource, on_ready)
        finally:
            self._ws = None
            self._fail_pending(self._dead or "socket closed")
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def serve(self, while_up: Callable[[], Awaitable[None]]) -> SocketClosed | None:
        """:meth:`run` the socket and, once it is authorized, ``while_up``: both end when one
        does (the socket dies or the broker ends it; ``while_up`` returns), or on :meth:`stop`.
        Returns why the socket ended, ``None`` when it did not end by itself."""
        ended: SocketClosed | None = None
        async with trio.open_nursery() as nursery:
            self._serving = nursery.cancel_scope
            ready = trio.Event()

            async def run() -> None:
                nonlocal ended
                try:
                    await self.run(ready.set)
                except SocketClosed as closed:
                    ended = closed
                nursery.cancel_scope.cancel()

            nursery.start_soon(run)
            await ready.wait()
            await while_up()
            nursery.cancel_scope.cancel()
        self._serving = None
        return ended

    def stop(self) -> None:
        """End :meth:`serve` (trio thread); nothing if it is not serving."""
        if self._serving is not None:
            self._serving.cancel()

    async def _session(
        self, stream: Any, host: str, resource: str, on_ready: Callable[[], None] | None
    ) -> None:
        # Nothing raises out of the nursery (trio would wrap it in a group): the reason the
        # socket ended is kept and raised once the nursery is closed.
        reason = "socket closed"
        failure: SocketClosed | None = None
        async with trio.open_nursery() as nursery:
            try:
                # No closing handshake on the way out: the reader that would hear the broker's
                # answer is cancelled with us; closing the TCP stream (in run) is the goodbye.
                ws = await wrap_client_stream(
                    nursery, stream, host, resource, max_message_size=MAX_MESSAGE
                )
                with trio.fail_after(self.timeout_s):
                    await self._authorize(ws)
                self._ws = ws
                self._last_seen = trio.current_time()
                if on_ready is not None:
                    on_ready()
                nursery.start_soon(self._heartbeat, nursery.cancel_scope)
                reason = await self._read(ws)
            except SocketClosed as closed:
                failure = closed
            except HandshakeError as error:
                reason = f"handshake failed ({type(error).__name__})"
            except trio.TooSlowError:
                reason = "the broker did not answer the authorization in time"
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if self._ended is not None and self._dead is None:
            raise self._ended
        raise SocketClosed(self._dead or reason)

    async def _authorize(self, ws: Any) -> None:
        while True:
            frame = await self._next_frame(ws)
            if isinstance(frame, OpenFrame):
                break
            if isinstance(frame, CloseFrame):
                raise BrokerClosed(f"closed by the broker before opening ({frame.reason})")
        await self._send(ws, encode_request("authorize", 0, "", self._token))
        while True:
            frame = await self._next_frame(ws)
            if isinstance(frame, CloseFrame):
                raise BrokerClosed(f"closed by the broker during authorization ({frame.reason})")
            if not isinstance(frame, MessagesFrame):
                continue
            for message in frame.messages:
                if isinstance(message, Push) and message.event == "shutdown":
                    raise _shutdown(message.data)
                if isinstance(message, Reply) and message.request_id == 0:
                    if message.status == 200:
                        return
                    if message.status == 401:
                        raise SocketUnauthorized("the broker refused the access token")
                    raise SocketClosed(f"authorization answered {message.status}")

    async def _next_frame(self, ws: Any) -> Any:
        try:
            text = await ws.get_message()
        except ConnectionClosed as closed:
            raise SocketClosed(f"closed ({_close_reason(closed)})") from None
        self.frames += 1
        try:
            return parse_server_frame(text)
        except FrameError as error:
            log.error("malformed frame from the broker", socket=self.name, problem=str(error))
            raise SocketClosed(f"malformed frame from the broker: {error}") from None

    async def _read(self, ws: Any) -> str:
        while True:
            frame = await self._next_frame(ws)
            self._last_seen = trio.current_time()
            if isinstance(frame, CloseFrame):
                why = f"closed by the broker ({frame.code} {frame.reason})".replace(" )", ")")
                log.warning("socket closed by the broker", socket=self.name, code=frame.code)
                self._ended = BrokerClosed(why)
                return why
            if isinstance(frame, OpenFrame | HeartbeatFrame):
                continue
            for message in frame.messages:
                if isinstance(message, Reply):
                    self._resolve(message)
                elif message.event == "shutdown":
                    self._ended = _shutdown(message.data)
                    log.warning(
                        "shutdown event from the broker",
                        socket=self.name,
                        reason_code=self._ended.shutdown,
                    )
                    return str(self._ended)
                else:
                    await self._on_push(message)

    async def _heartbeat(self, scope: trio.CancelScope) -> None:
        while True:
            await trio.sleep(self.heartbeat_s)
            silent = trio.current_time() - self._last_seen
            if silent >= self.dead_after_s:
                self._dead = f"silent for {silent:.1f} s"
                log.warning("socket silent: declared dead", socket=self.name, silent_s=silent)
                scope.cancel()
                return
            ws = self._ws
            if ws is None:
                return
            try:
                await ws.send_message(HEARTBEAT)
            except ConnectionClosed:
                return

    # -- requests --------------------------------------------------------------------------------

    async def request(self, endpoint: str, body: Any = None, query: str = "") -> Reply:
        """Send a request and wait for its reply (replies come in frame order)."""
        parts = await self.request_parts(endpoint, body, query)
        return parts[0]

    async def request_parts(
        self,
        endpoint: str,
        body: Any = None,
        query: str = "",
        complete: Complete | None = None,
    ) -> list[Reply]:
        """Send a request and collect its replies until ``complete(parts)`` (one reply when
        ``complete`` is ``None``)."""
        ws = self._ws
        if ws is None or self._dead is not None:
            raise SocketClosed("the socket is not up")
        request_id = next(self._ids)
        pending = _Pending(complete)
        self._pending[request_id] = pending
        try:
            await self._send(ws, encode_request(endpoint, request_id, query, body))
            with trio.fail_after(self.timeout_s):
                await pending.done.wait()
        except trio.TooSlowError:
            what = "complete answer" if pending.parts else "answer"
            raise SocketTimeout(
                f"no {what} to {endpoint} in {self.timeout_s:g} s", tuple(pending.parts)
            ) from None
        finally:
            self._pending.pop(request_id, None)
            if complete is not None:
                self._split_done.add(request_id)
        if pending.error is not None:
            raise pending.error
        return pending.parts

    async def _send(self, ws: Any, text: str) -> None:
        try:
            await ws.send_message(text)
        except ConnectionClosed as closed:
            raise SocketClosed(f"closed ({_close_reason(closed)})") from None

    def _resolve(self, reply: Reply) -> None:
        pending = self._pending.get(reply.request_id)
        if pending is None or pending.done.is_set():
            if reply.request_id in self._split_done:
                log.info(
                    "late part of a split answer", socket=self.name, request_id=reply.request_id
                )
            else:
                log.warning("reply to no request", socket=self.name, request_id=reply.request_id)
            return
        pending.parts.append(reply)
        if pending.complete is None or pending.complete(pending.parts):
            pending.done.set()

    def _fail_pending(self, reason: str) -> None:
        for pending in self._pending.values():
            if not pending.done.is_set():
                pending.error = SocketClosed(reason)
                pending.done.set()


def _shutdown(data: Any) -> BrokerClosed:
    """A ``shutdown`` event: ``{"reasonCode": ..., "reason": ...}`` (either may be missing)."""
    code = reason = ""
    if isinstance(data, Mapping):
        code = str(data.get("reasonCode") or data.get("code") or "")
        reason = str(data.get("reason") or data.get("text") or "")
    elif isinstance(data, str):
        code = data
    words = ": ".join(part for part in (code, reason) if part) or "no reason given"
    return BrokerClosed(f"shutdown by the broker ({words})", code or "unknown")


def _close_reason(closed: ConnectionClosed) -> str:
    reason = getattr(closed, "reason", None)
    if reason is None:
        return "no reason"
    return f"{getattr(reason, 'code', '?')} {getattr(reason, 'reason', '') or ''}".strip()
