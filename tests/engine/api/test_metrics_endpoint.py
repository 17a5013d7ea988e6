"""``/metrics``: Prometheus's text format, behind the token, with every metric the issue names."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from engine.api import build_app
from engine.app.metrics import EngineMetrics
from tests.conftest import MakeEngine
from tests.engine.api.conftest import AUTH, make_context


@pytest.mark.trio
async def test_metrics_endpoint(tmp_path: Path, make_engine: MakeEngine) -> None:
    rig = make_engine(tmp_path, "threads")
    ctx = make_context(rig, EngineMetrics(rig.clock.monotonic_ns))
    transport = httpx.ASGITransport(app=build_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as http:
        assert (await http.get("/metrics")).status_code == 401
        response = await http.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for name in (
        "mimik_fanout_latency_seconds",
        "mimik_orders",
        "mimik_rejections",
        "mimik_breaches",
        "mimik_connection_state",
        "mimik_actor_restarts",
        "mimik_mailbox_depth",
    ):
        assert name in response.text
