"""``/healthz`` and the ``health`` of ``/api/status`` (decision 0014): 200 without a token while
the engine can make its state durable, 503 with the reason once the disk refuses a write (the
engine's drill here), commands that must be saved refused with 503 ``not_durable``, and healthy
again once the disk takes writes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.storage import durability
from tests.engine.api.conftest import ApiRig


def _recover(api: ApiRig) -> None:
    engine = api.rig.engine
    while not engine.durability.poll().ok:  # pytest-timeout guards a hang
        time.sleep(0.01)
    api.idle()


@pytest.mark.trio
async def test_health_says_why_and_since_when_and_needs_no_token(
    api: ApiRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "disk-full"
    monkeypatch.setattr(durability.DRILL, "flag", flag)
    api.http.headers.pop("Authorization", None)
    answer = await api.http.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"ok": True, "reason": "", "since": None})

    flag.touch()
    api.rig.trade("LEAD", 1)  # the fan-out log refuses the leader's fill
    answer = await api.http.get("/healthz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["ok"] is False
    # The first write refused names the file: the fan-out log's append, or a store write of the
    # same fill when the writer thread gets there first.
    assert body["reason"].startswith(
        ("engine.fanouts: [Errno 28] No space left on device", "engine.sqlite: database or disk")
    )
    assert body["since"] == api.rig.clock.now().isoformat()

    api.http.headers["Authorization"] = "Bearer test-token-0123456789abcdef"
    status = await api.get("/api/status")
    assert status["health"] == body
    refused = await api.call("POST", "/api/flatten", status=503)
    assert refused["error"] == "not_durable"
    assert body["reason"].split(":")[0] in refused["message"]
    metrics = (await api.http.get("/metrics")).text
    assert "mimik_durable_ok 0.0" in metrics
    assert api.rig.broker_position("F1") == 0  # its copy was held back

    flag.unlink()
    _recover(api)
    answer = await api.http.get("/healthz")
    assert (answer.status_code, answer.json()["ok"]) == (200, True)
    assert (await api.get("/api/status"))["health"]["ok"] is True
    await api.post("/api/flatten")  # taken again


@pytest.mark.trio
async def test_the_openapi_document_lists_healthz_without_a_token(api: ApiRig) -> None:
    document = (await api.http.get("/openapi.json")).json()
    operation = document["paths"]["/healthz"]["get"]
    assert operation["security"] == []
    assert set(operation["responses"]) == {"200", "503"}
    assert operation["responses"]["503"]["content"] == operation["responses"]["200"]["content"]
    status = document["components"]["schemas"]["Status"]
    assert "health" in status["required"]
