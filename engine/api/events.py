"""The live event stream: what happens in the engine, as Server-Sent Events.

The hub listens where the engine already publishes — the records' listeners (activity entries,
orders written, order outcomes) and the broker's events (fills) — on whatever thread that is,
and hands them to the trio loop in batches (one ``TrioToken.run_sync_soon`` for whatever came
since the loop last took them; the callback never raises). There every subscriber gets each
event through its own queue of at most ``SUBSCRIBER_BUFFER`` events. A client whose queue is
full does not keep up — or does not read at all — and is cut: its slot is freed at once (the
limit of ``MAX_SUBSCRIBERS`` streams counts only clients that take what they are sent), a
warning names it, and its response ends; a browser reconnects with ``Last-Event-ID`` and gets
what it missed from the short history. A client that reads nothing at all cannot even take the
end of its response: the kernel drops its connection once it has taken nothing for
``engine.app.listening.STALLED_CLIENT_SECONDS``. Events carry no token or code: only records
and fills.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
import trio
from starlette.types import Receive, Scope, Send

from brokers.base import BrokerEvent, Fill
from engine.domain.activity import ActivityEntry
from engine.domain.ledger import LedgerRow

log = structlog.get_logger("engine.api")

HISTORY = 500  # events kept for a reconnecting subscriber
# Events queued for one client; one further behind than the history could not catch up anyway.
SUBSCRIBER_BUFFER = HISTORY
MAX_SUBSCRIBERS = 64
HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    kind: str  # activity | order | order_status | fill
    data: dict[str, Any]

    def sse(self) -> bytes:
        payload = json.dumps(self.data, separators=(",", ":"), default=str)
        return f"id: {self.id}\nevent: {self.kind}\ndata: {payload}\n\n".encode()


def activity_data(entry: ActivityEntry) -> dict[str, Any]:
    return {
        "time": entry.time.isoformat(),
        "level": entry.level.value,
        "kind": entry.kind.value,
        "account": entry.account,
        "connection": entry.connection,
        "message": entry.message,
        "fill": entry.fill,
    }


def order_data(row: LedgerRow) -> dict[str, Any]:
    return {
        "client_order_id": row.client_order_id,
        "account": row.account,
        "connection": row.connection,
        "symbol": row.symbol,
        "qty": row.qty,
        "order_type": row.order_type,
        "kind": row.kind,
        "cause": row.cause,
    }


def fill_data(fill: Fill) -> dict[str, Any]:
    return {
        "account": fill.account,
        "connection": fill.connection,
        "symbol": fill.symbol,
        "qty": fill.qty,
        "price": str(fill.price) if isinstance(fill.price, Decimal) else fill.price,
        "fill_id": fill.fill_id,
        "client_order_id": fill.client_order_id,
        "time": fill.time.isoformat(),
    }


class Subscription:
    """One client's stream: its queue of events, and ``cut`` once the hub gave up on it."""

    def __init__(self, client: str) -> None:
        self.client = client
        self.queue, self.events = trio.open_memory_channel[Event](SUBSCRIBER_BUFFER)
        self.cut = trio.Event()


class EventHub:
    def __init__(self) -> None:
        self._token: trio.lowlevel.TrioToken | None = None
        self._subscribers: set[Subscription] = set()
        self._history: deque[Event] = deque(maxlen=HISTORY)
        self._next_id = 1
        self._closed = False
        # Events submitted from other threads, taken by the loop in one callback.
        self._incoming: deque[tuple[str, dict[str, Any]]] = deque()
        self._incoming_lock = threading.Lock()
        self._scheduled = False
        self.dropped = 0  # clients cut for not keeping up
        self.streams = 0  # responses still open, cut or not (a cut one ends on its own)

    def attach(self) -> None:
        """Called inside the trio loop that serves the API."""
        self._token = trio.lowlevel.current_trio_token()

    # -- from any thread ----------------------------------------------------------------------

    def record(self, topic: str, payload: Any) -> None:
        """A records listener."""
        if isinstance(payload, ActivityEntry):
            self._submit("activity", activity_data(payload))
        elif isinstance(payload, LedgerRow):
            self._submit("order", order_data(payload))
        elif topic == "order_status" and isinstance(payload, tuple) and len(payload) == 3:
            cid, status, reason = payload
            self._submit(
                "order_status", {"client_order_id": cid, "status": status, "reason": reason}
            )

    def broker_event(self, event: BrokerEvent) -> None:
        if isinstance(event, Fill):
            self._submit("fill", fill_data(event))

    def _submit(self, kind: str, data: dict[str, Any]) -> None:
        token = self._token
        if token is None or self._closed:
            return
        with self._incoming_lock:
            self._incoming.append((kind, data))
            if self._scheduled:
                return  # the loop has yet to take the earlier ones: it takes this too
            self._scheduled = True
        try:
            token.run_sync_soon(self._take)
        except Exception:  # the loop is gone; an event must never break an actor or the broker
            with self._incoming_lock:
                self._incoming.clear()
                self._scheduled = False

    # -- on the trio thread -------------------------------------------------------------------

    def _take(self) -> None:
        with self._incoming_lock:
            incoming = list(self._incoming)
            self._incoming.clear()
            self._scheduled = False
        for kind, data in incoming:
            self._publish(kind, data)

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        if self._closed:
            return
        event = Event(self._next_id, kind, data)
        self._next_id += 1
        self._history.append(event)
        for subscription in list(self._subscribers):
            try:
                subscription.queue.send_nowait(event)
            except trio.WouldBlock:
                self._cut(subscription)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.discard(subscription)  # its stream has ended

    def _cut(self, subscription: Subscription) -> None:
        """A client whose queue is full: its slot is freed now and its stream ends."""
        self._subscribers.discard(subscription)
        subscription.queue.close()
        subscription.cut.set()
        self.dropped += 1
        log.warning(
            "event stream cut: the client does not keep up",
            client=subscription.client,
            queued=SUBSCRIBER_BUFFER,
            streams=len(self._subscribers),
        )

    def subscribe(self, last_id: int | None = None, client: str = "") -> Subscription | None:
        """A new client's stream, primed with the events after ``last_id``; ``None`` when the
        hub is closed or ``MAX_SUBSCRIBERS`` clients are taking events."""
        if self._closed or len(self._subscribers) >= MAX_SUBSCRIBERS:
            return None
        subscription = Subscription(client)
        if last_id is not None:
            for event in list(self._history)[-SUBSCRIBER_BUFFER:]:
                if event.id > last_id:
                    subscription.queue.send_nowait(event)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """The client's stream has ended: its slot is free."""
        self._subscribers.discard(subscription)
        subscription.events.close()

    def close(self) -> None:
        """The process is stopping: every stream ends."""
        self._closed = True
        for subscription in list(self._subscribers):
            subscription.queue.close()
        self._subscribers.clear()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def recent(self) -> list[Event]:
        return list(self._history)


class EventStream:
    """The ``text/event-stream`` response of one subscriber, as a plain ASGI response: events
    as they come, a comment every ``HEARTBEAT_SECONDS`` so proxies and browsers keep the
    connection open; it ends when the client goes, the hub cuts it or the hub closes, and
    always unsubscribes."""

    def __init__(self, hub: EventHub, subscription: Subscription) -> None:
        self.hub = hub
        self.subscription = subscription
        self.events = subscription.events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.hub.streams += 1
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": b"retry: 2000\n: connected\n\n",
                    "more_body": True,
                }
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._until_disconnect, receive, nursery.cancel_scope)
                nursery.start_soon(self._until_cut, nursery.cancel_scope)
                await self._pump(send)
                nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-write
        finally:
            self.hub.unsubscribe(self.subscription)
            self.hub.streams -= 1

    async def _pump(self, send: Send) -> None:
        while True:
            with trio.move_on_after(HEARTBEAT_SECONDS) as timer:
                try:
                    event = await self.events.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return
            if timer.cancelled_caught:
                await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})
                continue
            await send({"type": "http.response.body", "body": event.sse(), "more_body": True})

    @staticmethod
    async def _until_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async def _until_cut(self, scope: trio.CancelScope) -> None:
        """Cut: what is still queued is not sent; the response ends (a client that reads takes
        the end and reconnects; one that does not is dropped by the kernel)."""
        await self.subscription.cut.wait()
        scope.cancel()


__all__ = [
    "Event",
    "EventHub",
    "EventStream",
    "Subscription",
    "activity_data",
    "fill_data",
    "order_data",
]
