"""Fuzz the control API from its own OpenAPI document (schemathesis), against a real engine
process: no 5xx, every answer as the document says (status, content type, body schema), and
afterwards no corruption — the engine stops cleanly, and its store keeps every rule of S4.3
(no membership or group pointing at a missing account) and starts again.

The live event stream is left out (it never ends by design; ``test_events.py`` covers it).
``API_FUZZ_EXAMPLES`` sets the examples per operation (default 12; more for a soak).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from engine.api.app import OPERATIONS
from engine.api.openapi import build_openapi
from tests.engine.engine_process import EngineProcess, start_engine, stop_engine

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "12"))

schema = schemathesis.openapi.from_dict(build_openapi(OPERATIONS, "fuzz")).exclude(
    path="/api/events"
)


def check_store(path: Path) -> None:
    """S4.3: nothing dangling, in the store, after whatever the fuzzer did."""
    conn = sqlite3.connect(path)
    try:
        accounts = {r[0] for r in conn.execute("SELECT id FROM accounts")}
        connections = {r[0] for r in conn.execute("SELECT id FROM connections")}
        assert {r[0] for r in conn.execute("SELECT connection FROM accounts")} <= connections
        leaders = [r[0] for r in conn.execute("SELECT leader FROM groups")]
        members = [r[0] for r in conn.execute("SELECT account FROM memberships")]
        assert set(leaders) <= accounts
        assert set(members) <= accounts
        assert len(set(leaders + members)) == len(leaders) + len(members)  # one group each
        groups = {r[0] for r in conn.execute("SELECT id FROM groups")}
        assert {r[0] for r in conn.execute("SELECT group_id FROM memberships")} <= groups
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    process = start_engine(data_dir)
    yield process
    assert process.proc.poll() is None, "the engine died while fuzzed"
    assert stop_engine(process) == 0
    check_store(data_dir / "engine.sqlite")
    again = start_engine(data_dir, "--duration", "1")  # the store still starts an engine
    assert again.proc.wait(timeout=30) == 0


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_fuzz(case: schemathesis.Case, engine: EngineProcess) -> None:
    response = case.call(
        base_url=engine.url, headers={"Authorization": f"Bearer {engine.token}"}, timeout=15
    )
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


def test_the_engine_answers_after_the_fuzz(engine: EngineProcess) -> None:
    response = httpx.get(
        f"{engine.url}/api/status", headers={"Authorization": f"Bearer {engine.token}"}
    )
    assert response.status_code == 200
    assert response.json()["stopping"] is False
