"""The live event stream over a real socket (hypercorn's trio worker, as in a live run): fills,
orders and activity arrive as Server-Sent Events; a reconnecting client catches up with
Last-Event-ID; closing the hub ends every stream (as a graceful stop does). Clients that never
read are cut once their queue is full, their slots freed and their connections dropped; a
client that leaves frees its slot at once."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
from structlog.testing import capture_logs

from brokers.base import Fill
from engine.api import build_app
from engine.api.events import MAX_SUBSCRIBERS, SUBSCRIBER_BUFFER, EventHub
from engine.app import listening
from engine.app.listening import ApiServer, listen
from tests.conftest import ES, START
from tests.engine.api.conftest import AUTH, TOKEN, ApiRig

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


async def test_activity_events_name_the_leader_fill(api: ApiRig) -> None:
    """S7.1: the leader fill's entry and each follower's copy entry carry its key live."""
    async with (
        served(api) as url,
        httpx.AsyncClient(base_url=url, headers=AUTH) as http,
        http.stream("GET", "/api/events") as response,
    ):
        await trio.to_thread.run_sync(api.rig.trade, "LEAD", 1)
        seen: dict[str | None, str | None] = {}
        fields: dict[str, str] = {}
        with trio.fail_after(10):
            async for line in response.aiter_lines():
                name, _, value = line.partition(":")
                if line and name in ("event", "data"):
                    fields[name] = value.strip()
                elif not line and "data" in fields:
                    data = json.loads(fields["data"])
                    if fields.get("event") == "activity" and data["kind"] == "copy":
                        seen[data["account"]] = data["fill"]
                    fields = {}
                    if len(seen) == 3:
                        api.ctx.hub.close()  # the stream ends, as at a stop
    cause = seen["LEAD"]
    assert cause is not None
    assert cause.startswith("LEAD:")
    assert seen == {"LEAD": cause, "F1": cause, "F2": cause}


async def test_broker_fills_become_fill_events() -> None:
    """In a live run the broker wrapper shows the hub every fill, the leader's included."""
    hub = EventHub()
    hub.attach()
    subscription = hub.subscribe()
    assert subscription is not None
    receive = subscription.events
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
    subscription = hub.subscribe(last_id=3)
    assert subscription is not None
    receive = subscription.events
    got = [receive.receive_nowait().data["n"] for _ in range(2)]
    assert got == [3, 4]
    hub.close()
    with pytest.raises(trio.EndOfChannel):
        await receive.receive()


async def test_a_slow_subscriber_is_cut_off_not_the_engine() -> None:
    hub = EventHub()
    hub.attach()
    subscription = hub.subscribe()
    assert subscription is not None
    receive = subscription.events
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
    subscription = hub.subscribe()
    assert subscription is not None
    receive = subscription.events

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


# --- clients that do not read, and clients that leave -------------------------------------------


def open_stream(url: str) -> socket.socket:
    """A client that asks for the event stream and never reads a byte of the answer."""
    host, port = url.removeprefix("http://").split(":")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect((host, int(port)))
    client.sendall(
        f"GET /api/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        .encode()
    )  # fmt: skip
    return client


async def until(done: Callable[[], bool]) -> None:
    """Wait for the server to get there; the deadline only keeps a broken build from hanging."""
    with trio.fail_after(60):
        while not done():
            await trio.sleep(0.02)


def flood(hub: EventHub, events: int) -> None:
    """Events from another thread, as the actors make them: 1 kB each."""
    for n in range(events):
        hub._submit("activity", {"n": n, "message": "x" * 1000})


async def test_clients_that_never_read_are_cut_and_dropped(
    api: ApiRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every slot taken by a client that never reads locks others out (503) only until the
    engine has more for each than its queue holds: then each is cut with a warning naming it,
    its slot is free for a client that reads, and its connection is dropped (it cannot take
    the end of its response: the kernel gives up on it)."""
    monkeypatch.setattr(listening, "STALLED_CLIENT_SECONDS", 1.0, raising=False)
    hub = api.ctx.hub
    stuck: list[socket.socket] = []
    try:
        async with served(api) as url, httpx.AsyncClient(base_url=url, headers=AUTH) as http:
            for _ in range(MAX_SUBSCRIBERS):
                stuck.append(await trio.to_thread.run_sync(open_stream, url))
            await until(lambda: hub.subscribers == MAX_SUBSCRIBERS)
            assert (await http.get("/api/events")).status_code == 503

            with capture_logs() as logs:
                await trio.to_thread.run_sync(flood, hub, 6 * SUBSCRIBER_BUFFER)
                await until(lambda: hub.subscribers == 0)
            cut = [e for e in logs if e["event"] == "event stream cut: the client does not keep up"]
            names = {"{}:{}".format(*client.getsockname()) for client in stuck}
            assert sorted(e["client"] for e in cut) == sorted(names)
            assert all(e["log_level"] == "warning" for e in cut)

            async with http.stream("GET", "/api/events") as response:
                assert response.status_code == 200
                await until(lambda: hub.subscribers == 1)
                hub._submit("activity", {"n": "live"})
                with trio.fail_after(10):
                    events = await read_events(response, hub, 1)
            assert events[0][2] == {"n": "live"}
            # Each cut client's connection ended on the server's side without it reading.
            await until(lambda: hub.streams == 0)
    finally:
        for client in stuck:
            client.close()


async def test_a_client_that_left_frees_its_slot_at_once(api: ApiRig) -> None:
    """The limit counts clients that are there: one that closed its connection frees its slot
    at once, not at the next event."""
    hub = api.ctx.hub
    async with served(api) as url, httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        clients = [await trio.to_thread.run_sync(open_stream, url) for _ in range(MAX_SUBSCRIBERS)]
        await until(lambda: hub.subscribers == MAX_SUBSCRIBERS)
        assert (await http.get("/api/events")).status_code == 503
        for client in clients:
            client.close()
        await until(lambda: hub.subscribers == 0)
        async with http.stream("GET", "/api/events") as response:
            assert response.status_code == 200
