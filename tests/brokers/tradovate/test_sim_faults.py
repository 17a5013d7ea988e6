"""The local server misbehaves on demand, on the wire, as Tradovate does (TRADOVATE.md, "What the
real API does"): checked here with a bare HTTP client and a bare WebSocket client, so what the
adapter's tests meet is known to be the broker's behaviour and not the adapter's reading of it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from brokers.clock import VirtualClock
from brokers.tradovate.sim import RunningSim, serve_sim
from tests.brokers.tradovate.conftest import ES, issue_token
from tests.conftest import START


@asynccontextmanager
async def served(**options: Any) -> AsyncIterator[tuple[RunningSim, str]]:
    clock = VirtualClock(START)
    async with serve_sim(clock, users={"alice": ["A1"]}, **options) as sim:
        sim.set_price(ES, Decimal(5000))
        yield sim, issue_token(sim, "alice", clock).value


class Raw:
    """A bare client of the trading or md socket: frames as text, requests by hand."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.ids = 0

    async def frame(self) -> str:
        with trio.fail_after(5):
            text = await self.ws.get_message()
        assert isinstance(text, str)
        return text

    async def messages(self) -> list[Any]:
        """The messages of the next ``a[...]`` frame (heartbeats skipped)."""
        while True:
            text = await self.frame()
            if text.startswith("a"):
                messages: list[Any] = json.loads(text[1:])
                return messages

    async def request(self, endpoint: str, body: Any = None) -> int:
        self.ids += 1
        text = "" if body is None else json.dumps(body)
        await self.ws.send_message(f"{endpoint}\n{self.ids}\n\n{text}")
        return self.ids

    async def reply(self, request_id: int) -> dict[str, Any]:
        while True:
            for message in await self.messages():
                if message.get("i") == request_id:
                    reply: dict[str, Any] = message
                    return reply


@asynccontextmanager
async def raw(sim: RunningSim, token: str, kind: str = "trading") -> AsyncIterator[Raw]:
    parts = urlsplit(sim.ws_url if kind == "trading" else sim.md_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stream = await trio.open_tcp_stream(host, port)
    try:
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(nursery, stream, host, parts.path)
            client = Raw(ws)
            assert await client.frame() == "o"
            await ws.send_message(f"authorize\n0\n\n{token}")
            assert await client.reply(0) == {"s": 200, "i": 0}
            yield client
            nursery.cancel_scope.cancel()
    finally:
        await stream.aclose()


@pytest.mark.trio
async def test_http_faults_are_tradovates_answers() -> None:
    async with served() as (sim, token):
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=sim.rest_url, headers=auth) as http:
            sim.lock_out("alice", endpoint="account/list")
            locked = await http.get("/account/list")
            assert (locked.status_code, locked.content) == (429, b"")  # an empty body
            sim.throttle_next("alice", endpoint="account/list")
            assert (await http.get("/account/list")).status_code == 423
            sim.captcha_next("alice", endpoint="auth/renewaccesstoken")
            ticket = (await http.get("/auth/renewaccesstoken")).json()
            assert ticket["p-captcha"] is True and ticket["p-ticket"]
            sim.unauthorized_next("alice", endpoint="position/list")
            assert (await http.get("/position/list")).status_code == 401
            sim.success_reason("alice")
            body = {"accountSpec": "A1", "action": "Buy", "symbol": ES, "orderQty": 1}
            placed = (await http.post("/order/placeorder", json=body)).json()
            assert placed["failureReason"] == "Success" and isinstance(placed["orderId"], int)
            for shape, key in (("errorText", "errorText"), ("violations", "violations")):
                sim.reject_next("alice", 1, shape)
                refused = (await http.post("/order/placeorder", json=body)).json()
                assert key in refused and "orderId" not in refused


@pytest.mark.trio
async def test_socket_faults_come_in_replies() -> None:
    async with served() as (sim, token), raw(sim, token) as client:
        sim.penalize_next("alice", 1, 0.5, endpoint="user/syncrequest")
        ticket = await client.reply(await client.request("user/syncrequest", {"users": [1]}))
        assert ticket["s"] == 200 and set(ticket["d"]) == {"p-ticket", "p-time", "p-captcha"}
        sim.lock_out("alice", endpoint="order/placeorder")
        body = {"accountSpec": "A1", "action": "Buy", "symbol": ES, "orderQty": 1}
        assert await client.reply(await client.request("order/placeorder", body)) == {
            "s": 429,
            "i": client.ids,
        }
        sim.answer_next("alice", "user/syncrequest", "Service unavailable")
        answer = await client.reply(await client.request("user/syncrequest", {}))
        assert answer["d"] == "Service unavailable"
        sim.silence_next("alice", "order/list")
        silent = await client.request("order/list")
        answered = await client.request("probe")
        assert (await client.reply(answered))["i"] == answered != silent


@pytest.mark.trio
async def test_sync_answers_by_entity_type_split_or_short() -> None:
    async with served() as (sim, token), raw(sim, token) as client:
        only = await client.reply(
            await client.request("user/syncrequest", {"users": [1], "entityTypes": ["position"]})
        )
        assert set(only["d"]) == {"users", "positions"}
        sim.split_sync("alice", 3)
        request = await client.request("user/syncrequest", {"users": [1]})
        parts: list[dict[str, Any]] = []
        while len(parts) < 3:
            parts += [m for m in await client.messages() if m.get("i") == request]
        keys = [set(p["d"]) for p in parts]
        assert len(set().union(*keys)) == sum(len(k) for k in keys)  # each list once
        assert {"accounts", "positions", "fills"} <= set().union(*keys)
        sim.split_sync("alice", 1)
        sim.drop_sync_keys("alice", ["fills", "orders"])
        short = await client.reply(await client.request("user/syncrequest", {"users": [1]}))
        assert (
            "fills" not in short["d"] and "orders" not in short["d"] and "positions" in short["d"]
        )


@pytest.mark.trio
async def test_pushes_in_arrays_again_and_withdrawn() -> None:
    async with served() as (sim, token), raw(sim, token) as client:
        await client.reply(await client.request("user/syncrequest", {"users": [1]}))
        sim.entity_arrays("alice")
        sim.trade("A1", ES, 2)
        events = await client.messages()  # the whole trade in one frame
        assert len(events) > 3 and all(isinstance(e["d"]["entity"], list) for e in events)
        (fill,) = sim.fill_ids("A1")
        sim.trade("A1", ES, 1)
        await client.messages()
        sim.push_fill_again(*sim.fill_ids("A1"))
        (again,) = await client.messages()
        assert again["d"]["eventType"] == "Updated"
        assert [f["id"] for f in again["d"]["entity"]] == sim.fill_ids("A1")
        sim.entity_arrays("alice", on=False)
        sim.withdraw_fill(fill)
        withdrawn, position = await client.messages()
        assert (
            withdrawn["d"]["entity"]["active"] is False and withdrawn["d"]["eventType"] == "Updated"
        )
        assert position["d"]["entity"]["netPos"] == 1


@pytest.mark.trio
@pytest.mark.parametrize("end", ["close", "shutdown"])
async def test_a_socket_ended_by_the_broker(end: str) -> None:
    async with served() as (sim, token), raw(sim, token) as client:
        if end == "close":
            sim.close_socket("alice", 1001, "Going away")
            assert await client.frame() == 'c[1001,"Going away"]'
        else:
            sim.shutdown("alice", "ConnectionQuotaReached", "Too many connections")
            (event,) = await client.messages()
            assert event == {
                "e": "shutdown",
                "d": {"reasonCode": "ConnectionQuotaReached", "reason": "Too many connections"},
            }
        with pytest.raises(ConnectionClosed):
            await client.frame()


@pytest.mark.trio
async def test_a_client_whose_heartbeat_stops_is_closed() -> None:
    async with served(client_heartbeat_timeout_s=0.3) as (sim, token), raw(sim, token) as client:
        for _ in range(4):  # heartbeats keep it open
            await trio.sleep(0.15)
            await client.ws.send_message("[]")
        assert sim.server.hub.heartbeat_closes == 0
        with pytest.raises(ConnectionClosed), trio.fail_after(3):
            while True:
                await client.frame()  # no more heartbeats: closed
        assert sim.server.hub.heartbeat_closes == 1


@pytest.mark.trio
async def test_a_refused_quote_subscription_and_a_third_session() -> None:
    async with served() as (sim, token), raw(sim, token, "md") as client:
        sim.refuse_quotes(ES)
        refused = await client.reply(await client.request("md/subscribeQuote", {"symbol": ES}))
        assert refused["s"] == 200 and "Not entitled" in refused["d"]["errorText"]
        sim.refuse_quotes(ES, on=False)
        granted = await client.reply(await client.request("md/subscribeQuote", {"symbol": ES}))
        assert "contractId" in granted["d"]
        sim.sign_in_elsewhere("alice")  # two sessions: ours holds
        sim.sign_in_elsewhere("alice")  # a third: ours, the oldest, is revoked
        assert sim.auth.user_of(token) is None
        with pytest.raises(ConnectionClosed), trio.fail_after(3):
            while True:
                await client.frame()
