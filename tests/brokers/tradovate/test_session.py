"""One login's session against the local server, without an engine: requests handed over
before the broker runs, snapshots that report the engine's orders by client order id (S2.6)
across a new session, closing, and the per-login pacing budget (TRADOVATE.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import trio
import trio.testing

from brokers.base import (
    Fill,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionInfo,
    SessionRestored,
    Snapshot,
    WorkingOrder,
)
from brokers.clock import VirtualClock
from brokers.tradovate import TradovateBroker
from brokers.tradovate.pacing import RateBudget
from brokers.tradovate.session import SESSION_CLOSED
from brokers.tradovate.sim import RunningSim, serve_sim
from brokers.tradovate.tokens import Token
from tests.brokers.tradovate.conftest import Recorder
from tests.conftest import START

ES = "ESZ6"


@asynccontextmanager
async def local(tmp_path: Path) -> AsyncIterator[tuple[RunningSim, TradovateBroker]]:
    clock = VirtualClock(START)
    async with serve_sim(clock, users={"alice": ["A1", "A2"]}) as sim:
        code = sim.auth.new_code(sim.exchange.user("alice").id, sim.client_id, "http://cb")
        answer = sim.auth.exchange(
            {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": sim.client_id,
                "client_secret": sim.client_secret,
                "redirect_uri": "http://cb",
            }
        )
        broker = TradovateBroker(sim.settings(tmp_path, autonomous_timers=False), clock)
        broker.tokens.save("c", Token(answer["access_token"], START + timedelta(hours=1)))
        sim.set_price(ES, Decimal(5000))
        yield sim, broker


@pytest.mark.trio
async def test_requests_made_before_the_broker_runs_are_carried_out(tmp_path: Path) -> None:
    async with local(tmp_path) as (_, broker):
        sink = Recorder()
        session = broker.session("c", ("A1", "A2"), sink)  # as engine.start does, before trio
        session.open()
        session.request_snapshot("c#1")
        async with broker.running():
            await broker.settled()
        assert sink.of(SessionRestored)
        (snapshot,) = sink.of(Snapshot)
        assert snapshot.request_id == "c#1" and set(snapshot.accounts) == {"A1", "A2"}


@pytest.mark.trio
async def test_a_new_session_reports_the_engines_orders_by_client_order_id(
    tmp_path: Path,
) -> None:
    async with local(tmp_path) as (sim, broker):
        first = Recorder()
        session = broker.session("c", ("A1", "A2"), first)
        async with broker.running():
            await broker.settled()
            session.place_order(OrderRequest("C1", "A1", ES, 2))
            session.place_order(OrderRequest("C2", "A2", ES, -1))
            await broker.settled()
            session.place_order(OrderRequest("L1", "A2", ES, 0, OrderType.LIQUIDATE))
            stop = sim.place_manual_working("A1", ES, -1)
            await broker.settled()
            orders = [e for e in first.events if isinstance(e, OrderAccepted | Fill)]
            for cl in ("C1", "C2", "L1"):  # accounts go concurrently; each order in its order
                assert [type(e) for e in orders if e.client_order_id == cl] == [OrderAccepted, Fill]
            manual = [e for e in orders if e.client_order_id is None]
            far = Decimal(10) ** 7  # the hand-placed limit, with its price from its version
            assert manual == [
                OrderAccepted("c", "A1", None, str(stop), ES, -1, OrderType.LIMIT, price=far)
            ]
            liquidation = first.of(Fill)[-1]
            assert (liquidation.client_order_id, liquidation.qty, liquidation.order_done) == (
                "L1",
                1,
                True,
            )
            # The engine restarts: a new session of the connection, the old one goes inert.
            second = Recorder()
            again = broker.session("c", ("A1", "A2"), second)
            await broker.settled()
            again.request_snapshot("c#2")
            await broker.settled()
            sim.trade("A1", ES, 1)
            await broker.settled()
        (snapshot,) = second.of(Snapshot)
        a1, a2 = snapshot.accounts["A1"], snapshot.accounts["A2"]
        assert a1.positions == {ES: PositionInfo(2, Decimal(5000))}
        assert a1.working == (WorkingOrder(str(stop), None, ES, -1, OrderType.LIMIT, price=far),)
        assert a2.positions == {}
        assert sorted(a1.orders, key=lambda r: r.client_order_id) == [
            OrderReport("C1", a1.orders[0].broker_order_id, OrderStatus.FILLED, filled=2)
        ]
        reports = {r.client_order_id: r.status for r in a2.orders}
        assert reports == {"C2": OrderStatus.FILLED, "L1": OrderStatus.FILLED}
        assert all(not isinstance(e, Snapshot) for e in first.events)  # the old one is inert
        assert isinstance(second.events[-1], Fill) and second.events[-1].client_order_id is None


@pytest.mark.trio
async def test_a_closed_session_sends_nothing_and_refuses_orders(tmp_path: Path) -> None:
    async with local(tmp_path) as (sim, broker):
        sink = Recorder()
        session = broker.session("c", ("A1",), sink)
        async with broker.running():
            await broker.settled()
            session.close()
            await broker.settled()
            before = len(sink.events)
            sim.trade("A1", ES, 1)
            session.place_order(OrderRequest("C9", "A1", ES, 1))
            await broker.settled()
            assert sink.events[before:] == [OrderRejected("c", "A1", "C9", SESSION_CLOSED)]
            assert sim.requests_to("order/placeorder") == []
            session.open()  # reopened: up again, and the trade made meanwhile is in a snapshot
            session.request_snapshot("c#2")
            await broker.settled()
        (snapshot,) = [e for e in sink.events[before:] if isinstance(e, Snapshot)]
        assert snapshot.accounts["A1"].positions[ES].qty == 1


@pytest.mark.trio
async def test_an_account_the_login_does_not_hold_is_refused(tmp_path: Path) -> None:
    async with local(tmp_path) as (_, broker):
        sink = Recorder()
        session = broker.session("c", ("A1", "ZZ9"), sink)
        async with broker.running():
            await broker.settled()
            session.place_order(OrderRequest("C1", "ZZ9", ES, 1))
            await broker.settled()
        (rejected,) = sink.of(OrderRejected)
        assert rejected.reason.startswith("UnknownAccount")
        assert sink.of(OrderDone) == []


@pytest.mark.trio
async def test_the_budget_lets_a_burst_out_then_paces_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = RateBudget(burst=20, per_second=2.0, max_concurrent=50)
    sent: list[float] = []

    async def request() -> None:
        async with budget.slot():
            sent.append(trio.current_time())

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(24):
            nursery.start_soon(request)
    offsets = [t - start for t in sent]
    assert offsets[:20] == [0.0] * 20  # one fan-out of 20 leaves at once
    assert offsets[20:] == pytest.approx([0.5, 1.0, 1.5, 2.0])  # the rest at 2 a second
    budget.penalize(5)  # a penalty ticket: the whole login waits
    before = trio.current_time()
    await request()
    assert sent[-1] - before == pytest.approx(5.0)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.mark.trio
async def test_a_replaced_session_is_inert_and_never_keeps_the_broker_busy(
    tmp_path: Path,
) -> None:
    async with local(tmp_path) as (sim, broker):
        old_sink, new_sink = Recorder(), Recorder()
        old = broker.session("c", ("A1",), old_sink)
        old.request_snapshot("c#1")
        new = broker.session("c", ("A1",), new_sink)  # replaced before the broker runs
        async with broker.running():
            old.place_order(OrderRequest("C1", "A1", ES, 1))  # and used after it
            with trio.fail_after(10):  # a hang would be the bug
                await broker.settled()
            new.request_snapshot("c#2")
            await broker.settled()
        assert old_sink.events == []
        assert [e.request_id for e in new_sink.of(Snapshot)] == ["c#2"]
        assert sim.requests_to("order/placeorder") == []
