"""The live event stream: what happens in the engine, as Server-Sent Events.

The hub listens where the engine already publishes — the records' listeners (activity entries,
orders written, order outcomes) and the broker's events (fills) — on whatever thread that is,
and hands each event to the trio loop (``TrioToken.run_sync_soon``; the callback never raises).
There every subscriber gets it through its own bounded channel; one that cannot keep up is cut
off (its browser reconnects with ``Last-Event-ID`` and gets what it missed from a short
history). Events carry no token or code: only records and fills.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import trio
from starlette.types import Receive, Scope, Send

from brokers.base import BrokerEvent, Fill
from engine.domain.activity import ActivityEntry
from engine.domain.ledger import LedgerRow

HISTORY = 500  # events kept for a reconnecting subscriber
SUBSCRIBER_BUFFER = 1000
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


class EventHub:
    def __init__(self) -> None:
        self._token: trio.lowlevel.TrioToken | None = None
        self._subscribers: set[trio.MemorySendChannel[Event]] = set()
        self._history: deque[Event] = deque(maxlen=HISTORY)
        self._next_id = 1
        self._closed = False
        self.dropped = 0

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
        try:
            token.run_sync_soon(self._publish, kind, data)
        except trio.RunFinishedError:
            pass
        except Exception:  # an event must never break an actor or the broker
            self.dropped += 1

    # -- on the trio thread -------------------------------------------------------------------

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        if self._closed:
            return
        event = Event(self._next_id, kind, data)
        self._next_id += 1
        self._history.append(event)
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(event)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.discard(channel)
                channel.close()
                self.dropped += 1

    def subscribe(self, last_id: int | None = None) -> trio.MemoryReceiveChannel[Event] | None:
        """A new subscriber's channel, primed with the events after ``last_id``; ``None`` when
        the hub is closed or full."""
        if self._closed or len(self._subscribers) >= MAX_SUBSCRIBERS:
            return None
        send, receive = trio.open_memory_channel[Event](SUBSCRIBER_BUFFER)
        if last_id is not None:
            for event in self._history:
                if event.id > last_id:
                    send.send_nowait(event)
        self._subscribers.add(send)
        return receive

    def unsubscribe(self, receive: trio.MemoryReceiveChannel[Event]) -> None:
        receive.close()

    def close(self) -> None:
        """The process is stopping: every stream ends."""
        self._closed = True
        for channel in list(self._subscribers):
            channel.close()
        self._subscribers.clear()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def recent(self) -> list[Event]:
        return list(self._history)


class EventStream:
    """The ``text/event-stream`` response of one subscriber, as a plain ASGI response: events
    as they come, a comment every ``HEARTBEAT_SECONDS`` so proxies and browsers keep the
    connection open; it ends when the client goes or the hub closes, and always unsubscribes."""

    def __init__(self, hub: EventHub, receive: trio.MemoryReceiveChannel[Event]) -> None:
        self.hub = hub
        self.events = receive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
                await self._pump(send)
                nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-write
        finally:
            self.hub.unsubscribe(self.events)

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


__all__ = ["Event", "EventHub", "EventStream", "activity_data", "fill_data", "order_data"]
