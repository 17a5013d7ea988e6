"""The live event stream over a real socket (hypercorn's trio worker, as in a live run): fills,
orders and activity arrive as Server-Sent Events; a reconnecting client catches up with
Last-Event-ID; closing the hub ends every stream (as a graceful stop does)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio

from brokers.base import Fill
from engine.api import build_app
from engine.api.events import EventHub
from engine.app.listening import ApiServer, listen
from tests.conftest import ES, START
from tests.engine.api.conftest import AUTH, ApiRig

pytestmark = pytest.mark.trio


@asynccontextmanager
async def served(api: ApiRig) -> AsyncIterator[str]:
    server = ApiServer(listen("127.0.0.1", 0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve, build_app(api.ctx))
        try:
            yield server.url
        finally:
            api.ctx.hub.close()
            server.stop()


async def read_events(
    response: httpx.Response, hub: EventHub, until: int
) -> list[tuple[str, str, dict[str, Any]]]:
    """Events until ``until`` arrived; then the hub is closed (as a stop does) and the stream
    is read to its end, as a client sees it end."""
    into: list[tuple[str, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        name, _, value = line.partition(":")
        if line and name in ("event", "id", "data"):
            fields[name] = value.strip()
        elif not line and "data" in fields:
            data = json.loads(fields["data"])
            into.append((fields.get("event", ""), fields.get("id", ""), data))
            fields = {}
            if len(into) == until:
                hub.close()
    return into


async def test_a_copy_is_streamed_live(api: ApiRig) -> None:
    async with (
        served(api) as url,
        httpx.AsyncClient(base_url=url, headers=AUTH) as http,
        http.stream("GET", "/api/events") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        await trio.to_thread.run_sync(api.rig.trade, "LEAD", 1)
        with trio.fail_after(10):
            events = await read_events(response, api.ctx.hub, 6)
    kinds = {k for k, _, _ in events}
    assert {"order", "activity"} <= kinds
    orders = [d for k, _, d in events if k == "order"]
    assert {o["account"] for o in orders} <= {"F1", "F2"}
    assert all(o["cause"].startswith("LEAD:") for o in orders)
    ids = [int(i) for _, i, _ in events]
    assert ids == sorted(ids)


async def test_broker_fills_become_fill_events() -> None:
    """In a live run the broker wrapper shows the hub every fill, the leader's included."""
    hub = EventHub()
    hub.attach()
    receive = hub.subscribe()
    assert receive is not None
    fill = Fill("lead", "LEAD", "X1", "B1", None, ES, 2, Decimal("5000.25"), START, True)
    hub.broker_event(fill)
    with trio.fail_after(5):
        event = await receive.receive()
    assert (event.kind, event.data["account"], event.data["qty"]) == ("fill", "LEAD", 2)
    assert event.data["price"] == "5000.25"
    hub.close()


async def test_the_stream_needs_the_token(api: ApiRig) -> None:
    async with served(api) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/api/events")
        assert response.status_code == 401


async def test_last_event_id_replays_what_was_missed() -> None:
    hub = EventHub()
    hub.attach()
    for n in range(5):
        hub._publish("activity", {"n": n})
    receive = hub.subscribe(last_id=3)
    assert receive is not None
    got = [receive.receive_nowait().data["n"] for _ in range(2)]
    assert got == [3, 4]
    hub.close()
    with pytest.raises(trio.EndOfChannel):
        await receive.receive()


async def test_a_slow_subscriber_is_cut_off_not_the_engine() -> None:
    hub = EventHub()
    hub.attach()
    receive = hub.subscribe()
    assert receive is not None
    for n in range(2000):
        hub._publish("activity", {"n": n})
    assert hub.subscribers == 0
    assert hub.dropped == 1
    with pytest.raises(trio.EndOfChannel):
        while True:  # what it had is still readable, then its stream ends
            receive.receive_nowait()


async def test_events_from_other_threads_arrive_in_order() -> None:
    hub = EventHub()
    hub.attach()
    receive = hub.subscribe()
    assert receive is not None

    def produce() -> None:
        for n in range(100):
            hub._submit("activity", {"n": n})

    await trio.to_thread.run_sync(produce)
    got = []
    with trio.fail_after(5):
        while len(got) < 100:
            got.append((await receive.receive()).data["n"])
    assert got == list(range(100))
    hub.close()
