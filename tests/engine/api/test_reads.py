"""API reads never wait for the actors: each actor publishes its view after every batch of
messages it handles, and the API reads those (``engine/host/views.py``). A read is answered
while an actor's thread is stuck inside a handler — here a broker whose ``place_order`` blocks
until the test releases it — with messages queued behind it; once the engine is idle again, the
published views are exactly what the actors hold."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import trio

from brokers.base import OrderRequest
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from brokers.paper.broker import PaperSession
from engine.api import build_app
from tests.conftest import ES, MakeEngine, Rig
from tests.engine.api.conftest import AUTH, make_context

pytestmark = pytest.mark.trio

STUCK = "F1"  # the follower whose order the broker holds
CENTS = Decimal("0.01")


class StuckBroker(PaperBroker):
    """A paper broker whose ``place_order`` for ``STUCK`` blocks, on the engine's thread that
    calls it, until the test releases it."""

    def __init__(self, clock: VirtualClock, contracts: ContractTable) -> None:
        super().__init__(clock, contracts)
        self.entered = threading.Event()
        self.release = threading.Event()

    def _place_order(self, session: PaperSession, request: OrderRequest) -> None:
        if request.account == STUCK:
            self.entered.set()
            self.release.wait(60)
        super()._place_order(session, request)


@dataclass
class Blocked:
    rig: Rig
    broker: StuckBroker
    http: httpx.AsyncClient


@pytest.fixture
async def blocked(tmp_path: Path, make_engine: MakeEngine) -> AsyncIterator[Blocked]:
    rig = make_engine(tmp_path, "threads", make_broker=StuckBroker)
    broker = rig.broker
    assert isinstance(broker, StuckBroker)
    transport = httpx.ASGITransport(app=build_app(make_context(rig)))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://engine.test", headers=AUTH
    ) as http:
        try:
            yield Blocked(rig, broker, http)
        finally:
            broker.release.set()


async def test_reads_are_answered_while_an_actor_is_blocked_in_a_handler(
    blocked: Blocked,
) -> None:
    rig, broker, http = blocked.rig, blocked.broker, blocked.http
    engine = rig.engine
    broker.trade("LEAD", ES, 1)  # the copy to F1 blocks F1's connection thread in the broker
    assert await trio.to_thread.run_sync(broker.entered.wait, 30)
    # A command for F1 waits in that thread's queue behind the stuck handler.
    engine.lock(STUCK)
    assert max(engine.mailbox_depths().values()) > 0

    accounts = await http.get("/api/accounts")
    assert accounts.status_code == 200, accounts.text
    shown = {a["id"]: a for a in accounts.json()}
    assert set(shown) == {"LEAD", "F1", "F2"}
    # F1 as its actors last left it: the copy not yet filled, the lock not yet handled.
    assert shown[STUCK]["positions"] == {}
    assert shown[STUCK]["risk_status"] == "OK"
    one = await http.get(f"/api/accounts/{STUCK}")
    assert one.status_code == 200 and one.json()["id"] == STUCK
    for path in ("/api/connections", "/api/groups", f"/api/accounts/{STUCK}/limits"):
        response = await http.get(path)
        assert response.status_code == 200, (path, response.text)

    broker.release.set()
    await trio.to_thread.run_sync(rig.idle)
    # Idle again: what the API shows is what the actors hold.
    for account in ("LEAD", "F1", "F2"):
        shown = (await http.get(f"/api/accounts/{account}")).json()
        view = engine.runtime.inspect(("account", account), lambda a: a.view())
        risk = engine.runtime.inspect(("risk", account), lambda r: r.view())
        assert shown["positions"] == dict(view.positions)
        assert shown["risk_status"] == risk.status.value
        assert shown["unrealized"] == str(view.unrealized.quantize(CENTS))
    assert rig.position(STUCK) == 0  # flattened by the lock (S5.7) once it was handled
    assert rig.status(STUCK).value in ("LIQUIDATE_ONLY", "LOCKED")
