"""A live engine whose disk fills while its leader trades (decision 0014), both endings.

The engine runs as a real process on the paper broker, its data directory on a small disk made
for the test: a tmpfs, filled with a file of zeros until the kernel refuses another byte (where
the test may mount one), and the engine's drill (``MIMIK_DISK_FULL_FLAG``) everywhere. The
broker's state file lives elsewhere, as a real broker does.

- It recovers: once the disk is full, ``/healthz`` answers 503 and ``/api/status`` says why,
  copies are held back while the leader trades on; once space is freed it is healthy again and
  copies flow again.
- It exits: with ``engine.durability_timeout_seconds`` passed, the process ends with its
  documented status (4) and one line; a start on the still-full disk ends the same way, in one
  line and without a traceback; once space is freed it starts and trades.

Either way, no copy or reconciliation reached the broker without its intent in the intent log,
no order held back reached it at all, and the broker refused no client order id as a duplicate.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.storage.datadir import EXIT_NOT_DURABLE
from engine.storage.frames import read_frames
from tests.engine.disks import Disk, disk
from tests.engine.engine_process import ROOT, EngineProcess, start_engine, stop_engine

KINDS = ["tmpfs", "drill"]
WAIT = 60.0  # seconds any awaited state may take before the test gives up on it


@pytest.fixture(params=KINDS)
def full_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Disk]:
    with disk(str(request.param), tmp_path / "disk") as found:
        yield found


def _env(full_disk: Disk) -> dict[str, str]:
    return {**os.environ, **full_disk.env()}


def _until(what: str, done: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        if proc.poll() is not None:
            pytest.fail(f"the engine exited ({proc.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {WAIT:g} s")
        time.sleep(0.05)


def _broker(paper: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(paper.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # not written yet, or being replaced
        return {}
    return data


def _accepted(paper: Path, prefix: str = "C") -> list[str]:
    return [c for c in _broker(paper).get("client_order_ids", []) if c.startswith(prefix)]


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(errors="replace").splitlines() if line.strip()]


def _logged(path: Path, event: str, level: str = "error") -> bool:
    """Whether the JSON log on stderr has ``event`` at ``level``."""
    for line in _lines(path):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("event") == event and entry.get("level") == level:
            return True
    return False


def _health(engine: EngineProcess) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{engine.url}/healthz", timeout=10)  # no token
    return response.status_code, response.json()


def _check_no_order_without_its_intent(data: Path, paper: Path, intents: set[str]) -> int:
    """Every copy and reconciliation the broker accepted had its intent logged first; none it
    accepted was held back. Returns how many were held back."""
    intents |= {str(f[0]) for f in read_frames(data / "engine.intents")[0]}
    conn = sqlite3.connect(f"file:{data / 'engine.sqlite'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT client_order_id FROM orders WHERE status = 'not_sent'")
        held = {str(r[0]) for r in rows}
    finally:
        conn.close()
    broker = _broker(paper)
    accepted = [c for c in broker.get("client_order_ids", []) if c[:1] in ("C", "R")]
    assert accepted
    missing = [c for c in accepted if c not in intents]
    assert not missing, f"orders at the broker without their intent: {missing}"
    assert not held & set(accepted), f"orders held back reached the broker: {held & set(accepted)}"
    assert not broker.get("duplicate_rejections"), broker["duplicate_rejections"]
    return len(held)


def test_a_full_disk_stops_copies_and_the_engine_recovers_when_space_returns(
    full_disk: Disk, tmp_path: Path
) -> None:
    data, paper, err = full_disk.root / "data", tmp_path / "paper.json", tmp_path / "err.log"
    engine = start_engine(data, "--paper-state", str(paper), env=_env(full_disk), stderr=err)
    proc = engine.proc
    try:
        _until("first copy", lambda: bool(_accepted(paper)), proc)
        assert _health(engine) == (200, {"ok": True, "reason": "", "since": None})
        full_disk.fill()
        _until("503 from /healthz", lambda: _health(engine)[0] == 503, proc)
        _, body = _health(engine)
        assert body["ok"] is False and body["reason"] and body["since"]
        auth = {"Authorization": f"Bearer {engine.token}"}
        status = httpx.get(f"{engine.url}/api/status", headers=auth, timeout=10).json()
        assert status["health"]["ok"] is False
        assert status["health"]["reason"] == body["reason"]
        metrics = httpx.get(f"{engine.url}/metrics", headers=auth, timeout=10).text
        assert "mimik_durable_ok 0.0" in metrics
        _until("the error line", lambda: _logged(err, "state cannot be made durable"), proc)
        _until("a copy held back", lambda: "not sent: held back" in err.read_text(), proc)
        copies_while_full = len(_accepted(paper))
        full_disk.free()
        _until("200 from /healthz", lambda: _health(engine)[0] == 200, proc)
        _until("copies again", lambda: len(_accepted(paper)) > copies_while_full + 2, proc)
        metrics = httpx.get(f"{engine.url}/metrics", headers=auth, timeout=10).text
        assert "mimik_durable_ok 1.0" in metrics
    finally:
        full_disk.free()
        code = stop_engine(engine)
    assert code == 0, err.read_text()
    assert "Traceback" not in err.read_text()
    assert _check_no_order_without_its_intent(data, paper, set()) > 0


def test_a_disk_full_past_the_timeout_ends_the_engine_with_its_status(
    full_disk: Disk, tmp_path: Path
) -> None:
    data, paper = full_disk.root / "data", tmp_path / "paper.json"
    config = tmp_path / "engine.toml"
    config.write_text("[engine]\ndurability_timeout_seconds = 2\n")
    env = _env(full_disk)
    err = tmp_path / "err-1.log"
    engine = start_engine(
        data, "--paper-state", str(paper), "--config", str(config), env=env, stderr=err
    )
    try:
        _until("first copy", lambda: bool(_accepted(paper)), engine.proc)
        full_disk.fill()
        code = engine.proc.wait(timeout=WAIT)
    finally:
        if engine.proc.poll() is None:
            stop_engine(engine)
    text = err.read_text()
    assert code == EXIT_NOT_DURABLE, text
    assert "Traceback" not in text
    last = json.loads(_lines(err)[-1])
    assert last["event"] == "exiting: state could not be made durable"
    assert last["level"] == "error" and last["reason"] and last["exit_status"] == 4
    assert sum("exiting:" in line for line in _lines(err)) == 1
    intents = {str(f[0]) for f in read_frames(data / "engine.intents")[0]}

    # A start on the disk still full: one line, the same status.
    command = [
        *(sys.executable, "-m", "engine", "run", "--data-dir", str(data), "--port", "0"),
        *("--paper-state", str(paper), "--log-format", "json", "--config", str(config)),
    ]
    again = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert again.returncode == EXIT_NOT_DURABLE, again.stderr
    lines = [line for line in again.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot start" in lines[0] and "disk" in lines[0], again.stderr
    assert "Traceback" not in again.stderr

    # Space again: it starts, reconciles and trades.
    full_disk.free()
    before = len(_accepted(paper))
    err = tmp_path / "err-3.log"
    engine = start_engine(
        data, "--paper-state", str(paper), "--config", str(config), env=env, stderr=err
    )
    try:
        _until("copies again", lambda: len(_accepted(paper)) > before + 2, engine.proc)
    finally:
        assert stop_engine(engine) == 0, err.read_text()
    _check_no_order_without_its_intent(data, paper, intents)
