"""``python -m engine backup`` of a running engine, ``restore`` into a fresh directory, and an
engine started there that goes on with the same setup, limits, locks, positions and records.

Real processes throughout: the engine (paper broker kept in a state file, as a real broker
outlives the engine), the backup while it trades, the restore, and the restored engine — first
with its demo leader idle, to compare what it starts from, then trading.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.engine.engine_process import EngineProcess, start_engine, stop_engine

ROOT = Path(__file__).resolve().parents[3]


def _engine_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        check=False,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _client(engine: EngineProcess) -> httpx.Client:
    auth = {"Authorization": f"Bearer {engine.token}"}
    return httpx.Client(base_url=engine.url, headers=auth, timeout=15)


def _setup(http: httpx.Client) -> dict[str, Any]:
    """What a restore must bring back whatever the market did: connections, groups, and each
    account's limits, risk status and lock reason."""
    accounts = {
        a["id"]: (a["connection"], a["limits"], a["risk_status"], a["lock_reason"], a["membership"])
        for a in http.get("/api/accounts").json()
    }
    return {
        "connections": sorted((c["id"], c["broker"]) for c in http.get("/api/connections").json()),
        "groups": [
            {k: v for k, v in g.items() if k != "leader_positions"}
            for g in http.get("/api/groups").json()
        ],
        "accounts": accounts,
    }


def _positions(http: httpx.Client) -> dict[str, dict[str, int]]:
    """Each account holding something, and what (flat ones left out)."""
    held = {a["id"]: a["positions"] for a in http.get("/api/accounts").json()}
    return {a: {s: q for s, q in p.items() if q} for a, p in held.items() if any(p.values())}


def _broker_positions(paper: Path) -> dict[str, dict[str, int]]:
    held = {
        account: {symbol: int(p["qty"]) for symbol, p in positions.items() if int(p["qty"])}
        for account, positions in json.loads(paper.read_text()).get("positions", {}).items()
    }
    return {account: positions for account, positions in held.items() if positions}


def _rows(store: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def _orders(http: httpx.Client) -> list[dict[str, Any]]:
    """The newest 500 orders of the ledger."""
    page: list[dict[str, Any]] = http.get("/api/orders", params={"limit": 500}).json()["items"]
    return page


def _wait_for_orders(http: httpx.Client, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(_orders(http)) < count:
        assert time.monotonic() < deadline, "the engine placed no orders"
        time.sleep(0.2)


def test_a_running_engine_backed_up_and_restored_trades_on(tmp_path: Path) -> None:
    paper = tmp_path / "paper.json"
    data = tmp_path / "data"
    engine = start_engine(data, "--paper-state", str(paper), "--demo-interval", "0.3")
    try:
        with _client(engine) as http:
            limits = {"daily_loss_limit": "250000", "weekly_loss_limit": "500000"}
            assert http.put("/api/accounts/DEMO-F1/limits", json=limits).status_code == 200
            assert http.post("/api/accounts/DEMO-F3/lock").status_code == 202
            _wait_for_orders(http, 6)
            setup = _setup(http)
            assert setup["accounts"]["DEMO-F1"][1] == limits
            assert setup["accounts"]["DEMO-F3"][2:4] == ("LOCKED", "manual")

            backup = tmp_path / "backup"
            ran = _engine_cli("backup", str(backup), "--data-dir", str(data))
            assert ran.returncode == 0, ran.stderr
            assert engine.proc.poll() is None  # the engine ran on through the backup
            assert http.get("/api/status").status_code == 200
            deadline = time.monotonic() + 30
            while not _positions(http):  # stopped holding something, most likely
                assert time.monotonic() < deadline, "the leader never holds a position"
                time.sleep(0.1)
    finally:
        assert stop_engine(engine) == 0
    final_positions = _broker_positions(paper)

    # The backup: a 0700 directory of 0600 files, each as its manifest says.
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["schema_version"] >= 4
    names = [f["name"] for f in manifest["files"]]
    assert names[0] == "engine.sqlite"
    assert {"engine.intents", "engine.fanouts"} <= set(names)
    assert any(name.startswith("engine.journal") for name in names), names
    assert "api.token" not in names
    for item in manifest["files"]:
        path = backup / item["name"]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, item
        assert path.stat().st_size == item["bytes"], item
        assert hashlib.sha256(path.read_bytes()).hexdigest() == item["sha256"], item
    backed_orders = _rows(backup / "engine.sqlite", "SELECT client_order_id FROM orders")
    backed_activity = _rows(backup / "engine.sqlite", "SELECT seq, kind, message FROM activity")
    assert len(backed_orders) >= 6

    restored = tmp_path / "restored"
    ran = _engine_cli("restore", str(backup), "--data-dir", str(restored))
    assert ran.returncode == 0, ran.stderr

    # The restored engine, its leader idle: what it starts from.
    engine = start_engine(restored, "--paper-state", str(paper), "--demo-interval", "100000")
    try:
        with _client(engine) as http:
            assert _setup(http) == setup
            deadline = time.monotonic() + 30
            while (held := _positions(http)) != final_positions:
                assert time.monotonic() < deadline, (held, final_positions)
                time.sleep(0.2)
    finally:
        assert stop_engine(engine) == 0
    orders = {
        row[0] for row in _rows(restored / "engine.sqlite", "SELECT client_order_id FROM orders")
    }
    assert {row[0] for row in backed_orders} <= orders
    activity = set(_rows(restored / "engine.sqlite", "SELECT seq, kind, message FROM activity"))
    assert set(backed_activity) <= activity

    # And it trades on: the leader's fills are copied to the followers that copy.
    engine = start_engine(restored, "--paper-state", str(paper), "--demo-interval", "0.3")
    try:
        with _client(engine) as http:
            _wait_for_orders(http, len(orders) + 4)
            new = [o for o in _orders(http) if o["client_order_id"] not in orders]
            assert {o["account"] for o in new if o["kind"] == "copy"} & {"DEMO-F1", "DEMO-F2"}
            assert not [o for o in new if o["account"] == "DEMO-F3" and o["kind"] == "copy"]
            assert _setup(http)["accounts"]["DEMO-F1"][1] == limits
    finally:
        assert stop_engine(engine) == 0
