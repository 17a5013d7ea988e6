"""The control API in process: the real engine (threads runtime, paper broker, virtual clock)
with its paper desk behind the real ASGI app, called through httpx's ASGI transport under trio.

``api`` is a trio fixture; after a command, ``api.idle()`` waits for the actors to settle before
the test reads what they did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.api import ApiContext, EventHub, build_app
from engine.app.authorizations import OAuthStates
from engine.app.metrics import EngineMetrics
from engine.app.paper_desk import PaperDesk
from tests.conftest import MakeEngine, Rig

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class ApiRig:
    rig: Rig
    ctx: ApiContext
    http: httpx.AsyncClient

    def idle(self) -> None:
        self.rig.idle()

    async def call(
        self, method: str, path: str, body: Any = None, *, status: int | None = None
    ) -> Any:
        response = await self.http.request(method, path, json=body)
        if status is not None:
            assert response.status_code == status, (method, path, response.text)
        return response.json()

    async def get(self, path: str, status: int = 200) -> Any:
        return await self.call("GET", path, status=status)

    async def post(self, path: str, body: Any = None, status: int = 202) -> Any:
        return await self.call("POST", path, body, status=status)


def short_follower(api: ApiRig) -> None:
    """S2.5: F1 misses the leader's buy of 2 while its connection is down; the flatten-only
    reconciliation on its return (S3.2) leaves it flat, short of t(2) = 2 (one record)."""
    rig = api.rig
    rig.broker.drop("f1")
    rig.idle()
    rig.trade("LEAD", 2)
    rig.engine.reconnect("f1")
    rig.idle()
    assert (rig.position("F1"), rig.position("F2")) == (0, 2)
    assert len(rig.reconciliations("F1")) == 1


def make_context(rig: Rig, metrics: EngineMetrics | None = None) -> ApiContext:
    hub = EventHub()
    hub.attach()
    engine = rig.engine
    if metrics is not None:
        engine.records.listeners.append(metrics.record)
        metrics.watch(engine)
    engine.records.listeners.append(hub.record)
    return ApiContext(
        engine=engine,
        clock=rig.clock,
        token=TOKEN,
        hub=hub,
        oauth=OAuthStates(rig.clock),
        metrics=metrics,
        public_url="http://engine.test",
        max_body_bytes=16 * 1024,
        version="test",
        started_at=rig.clock.now(),
        desk=PaperDesk(engine, rig.broker, engine.contracts),  # a paper engine has its desk
    )


@pytest.fixture
async def api(tmp_path: Path, make_engine: MakeEngine) -> AsyncIterator[ApiRig]:
    rig = make_engine(tmp_path, "threads")
    ctx = make_context(rig, EngineMetrics(rig.clock.monotonic_ns))
    transport = httpx.ASGITransport(app=build_app(ctx))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://engine.test", headers=AUTH
    ) as http:
        yield ApiRig(rig, ctx, http)
