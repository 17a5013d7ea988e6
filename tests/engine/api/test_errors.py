"""Bad input never crashes the engine: malformed JSON, wrong types, unknown fields, oversized
bodies, unknown paths and methods all get a 4xx with a message, and the engine goes on."""

from __future__ import annotations

import re
from typing import Any

import pytest

from engine.api.app import OPERATIONS, build_app
from tests.engine.api.conftest import TOKEN, ApiRig

pytestmark = pytest.mark.trio

BODY_OPERATIONS = [op for op in OPERATIONS if op.body is not None]


def _concrete(path: str) -> str:
    return (
        re.sub(r"{\w+}", "g1", path)
        .replace("/connections/g1", "/connections/f1")
        .replace("/accounts/g1", "/accounts/F1")
    )


@pytest.mark.parametrize(
    ("content", "status", "error"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"", 400, "malformed_json"),
        (b"\xff\xfe", 400, "malformed_json"),
        (b"[1, 2]", 422, "invalid"),
        (b"null", 422, "invalid"),
        (b'"text"', 422, "invalid"),
        (b"[" * 100_000, 413, "too_large"),
    ],
)
async def test_bad_bodies_get_4xx(api: ApiRig, content: bytes, status: int, error: str) -> None:
    for op in BODY_OPERATIONS:
        if op.body_optional and not content:
            continue  # an empty body is the body's defaults (a sync's, say: no orders expected)
        response = await api.http.request(op.method, _concrete(op.path), content=content)
        where = f"{op.method} {op.path}: {response.text}"
        assert response.status_code == status, where
        assert response.json()["error"] == error, where
        assert response.json()["message"], where


async def test_deep_nesting_is_refused_not_a_crash(api: ApiRig) -> None:
    deep = b"[" * 5000 + b"]" * 5000
    response = await api.http.post("/api/groups", content=deep)
    assert response.status_code in (400, 422)


async def test_a_body_without_length_is_still_limited(api: ApiRig) -> None:
    """Chunked, no Content-Length: counted as it arrives (raw ASGI, as a server delivers it)."""
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": b" " * 1024, "more_body": True}] * 40

    async def receive() -> dict[str, Any]:
        return chunks.pop() if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/groups",
        "raw_path": b"/api/groups",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {TOKEN}".encode())],
        "server": ("engine.test", 80),
        "client": ("127.0.0.1", 1234),
    }
    await build_app(api.ctx)(scope, receive, send)
    assert sent[0]["status"] == 413


async def test_unknown_path_and_method(api: ApiRig) -> None:
    missing = await api.http.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong = await api.http.put("/api/flatten")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"


async def test_wrong_types_name_the_field(api: ApiRig) -> None:
    response = await api.http.post(
        "/api/groups", json={"id": 5, "leader": ["LEAD"], "followers": "all"}
    )
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["details"]}
    assert {"id", "leader", "followers"} <= fields


async def test_commands_refused_while_stopping(api: ApiRig) -> None:
    api.ctx.stop_accepting()
    response = await api.http.post("/api/flatten")
    assert response.status_code == 503
    assert response.json()["error"] == "stopping"
    assert (await api.http.get("/api/accounts")).status_code == 200  # reads still answer
    assert (await api.get("/api/status"))["stopping"] is True


async def test_the_engine_goes_on_after_bad_input(api: ApiRig) -> None:
    for content in (b"{", b"[]", b"{}", b'{"id": null}', b"\x00" * 10):
        await api.http.post("/api/connections", content=content)
        await api.http.post("/api/groups/g1/followers", content=content)
    api.rig.trade("LEAD", 1)
    assert api.rig.position("F1") == 1
    assert len(await api.get("/api/accounts")) == 3


HUGE = "1" + "0" * 4300  # 4,301 digits: past Python's int-from-string limit


@pytest.mark.parametrize(
    "content",
    [
        f'{{"ratio": {HUGE}}}'.encode(),
        f'{{"max_qty": -{HUGE}}}'.encode(),
        f'{{"balance": {HUGE}.5}}'.encode(),
        f"[{HUGE}]".encode(),
        b'{"max_qty": 1' + b"0" * 40 + b"}",
    ],
)
async def test_an_overlong_number_is_a_400_not_a_crash(api: ApiRig, content: bytes) -> None:
    for op in BODY_OPERATIONS:
        response = await api.http.request(op.method, _concrete(op.path), content=content)
        where = f"{op.method} {op.path}: {response.text}"
        assert response.status_code == 400, where
        problem = response.json()
        assert problem["error"] == "number_too_long", where
        assert "no field takes one longer than 40" in problem["message"], where


@pytest.mark.parametrize(
    "terms",
    [
        {"account": "F2", "max_qty": 10**12},
        {"account": "F2", "ratio": 1e308},
        {"account": "F2", "ratio": HUGE},  # a string: read as a decimal, and out of bounds
        {"account": "F2", "max_qty": HUGE},
    ],
)
async def test_numbers_out_of_bounds_name_their_field(api: ApiRig, terms: dict[str, Any]) -> None:
    await api.call("DELETE", "/api/groups/g1/followers/F2", status=200)
    response = await api.http.post("/api/groups/g1/followers", json=terms)
    assert response.status_code == 422, response.text
    field = next(name for name in terms if name != "account")
    assert response.json()["field"] == field
