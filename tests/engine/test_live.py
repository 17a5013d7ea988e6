"""``python -m engine run`` as a real process: the demo copies leader fills, SIGINT stops it
cleanly, and a second engine on the same data directory is refused.

Each test starts the engine with ``sys.executable`` from the repository root and reads its
JSON-lines log. The hidden ``--demo-interval`` makes the demo leader trade every 0.5 s.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import demo

ROOT = Path(__file__).resolve().parents[2]
LOCK_MESSAGE = "another engine is running on {dir}/ (lock {dir}/engine.lock held)"


def _command(data_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "engine",
        "run",
        "--data-dir",
        str(data_dir),
        "--seed",
        "1",
        "--log-format",
        "json",
        "--demo-interval",
        "0.5",
        *extra,
    ]


def _parse(lines: list[str]) -> list[dict[str, Any]]:
    """Every line of a JSON-format run is a JSON object (no traceback, no stray print)."""
    records = []
    for line in lines:
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"not a JSON log line: {line!r}\nfull log:\n" + "".join(lines))
    return records


def _run_once(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """An engine run that is expected to end at once (refused, or failing to start)."""
    return subprocess.run(
        _command(data_dir, "--duration", "1"),
        check=False,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


class EngineProcess:
    """A running engine whose stderr is read line by line on a thread."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            _command(data_dir, *extra),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, event: str, timeout: float = 20.0) -> None:
        def seen() -> bool:
            return any(f'"event": "{event}"' in line for line in self.lines)

        with self._changed:
            ok = self._changed.wait_for(
                lambda: seen() or self.proc.poll() is not None, timeout=timeout
            )
            if not (ok and seen()):
                pytest.fail(f"no {event!r} within {timeout} s; log:\n" + "".join(self.lines))

    def finish(self, timeout: float = 30.0) -> tuple[int, list[dict[str, Any]]]:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code, _parse(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def engines() -> Iterator[list[EngineProcess]]:
    started: list[EngineProcess] = []
    yield started
    for process in started:
        process.kill()


def _events(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("event") == name]


def test_run_copies_leader_fills_then_stops_by_itself(
    tmp_path: Path, engines: list[EngineProcess]
) -> None:
    process = EngineProcess(tmp_path, "--duration", "6")
    engines.append(process)
    code, records = process.finish()
    assert code == 0, process.lines
    names = [r["event"] for r in records]
    assert names[-1] == "stopped"
    assert any(r.get("store_state", "").startswith("new") for r in records)

    fills = _events(records, "leader fill")
    orders = _events(records, "follower order")
    assert fills, "the demo leader never traded"
    assert all(f["account"] == demo.LEADER for f in fills)
    causes = {f"{demo.LEADER}:{f['fill_id']}": f for f in fills}
    # Every follower order names the leader fill that caused it, logged before it.
    for order in orders:
        assert order["kind"] == "copy"
        assert order["cause"] in causes
        assert records.index(causes[order["cause"]]) < records.index(order)
        assert order["account"] in {"DEMO-F1", "DEMO-F2", "DEMO-F3"}
    # The first leader fill is copied to DEMO-F1 (ratio 1) at the same size and symbol.
    first = fills[0]
    copies = [o for o in orders if o["cause"] == f"{demo.LEADER}:{first['fill_id']}"]
    f1 = [o for o in copies if o["account"] == "DEMO-F1"]
    assert f1
    assert (f1[0]["qty"], f1[0]["symbol"]) == (first["qty"], first["symbol"])
    # DEMO-F3 maps ES to MES.
    assert all(not o["symbol"].startswith("ES") for o in orders if o["account"] == "DEMO-F3")
    # Nothing went wrong on the way.
    assert not [r for r in records if r.get("level") == "error"]
    assert (tmp_path / "engine.sqlite").is_file()


def test_sigint_stops_cleanly(tmp_path: Path, engines: list[EngineProcess]) -> None:
    process = EngineProcess(tmp_path)
    engines.append(process)
    process.wait_for("engine started")
    time.sleep(3)
    process.proc.send_signal(signal.SIGINT)
    code, records = process.finish(timeout=20)
    assert code == 0, process.lines
    stopping = _events(records, "stopping")
    assert stopping
    assert stopping[0]["reason"] == "SIGINT"
    assert records[-1]["event"] == "stopped"
    assert _events(records, "leader fill")

    # The next start reuses the store and reconciles instead of seeding again.
    again = EngineProcess(tmp_path, "--duration", "1")
    engines.append(again)
    code, records = again.finish()
    assert code == 0, again.lines
    starting = _events(records, "engine starting")
    assert starting[0]["store_state"].startswith("existing")


def test_second_engine_on_the_same_data_dir_is_refused(
    tmp_path: Path, engines: list[EngineProcess]
) -> None:
    first = EngineProcess(tmp_path)
    engines.append(first)
    first.wait_for("engine started")

    second = _run_once(tmp_path)
    assert second.returncode == 1
    assert second.stderr.strip() == LOCK_MESSAGE.format(dir=tmp_path)
    assert first.proc.poll() is None, "the first engine must keep running"

    first.proc.send_signal(signal.SIGTERM)
    code, records = first.finish(timeout=20)
    assert code == 0
    assert _events(records, "stopping")[0]["reason"] == "SIGTERM"


@pytest.mark.parametrize("kind", ["file", "under_a_file"])
def test_unusable_data_dir_is_one_clear_line(tmp_path: Path, kind: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory\n")
    data_dir = blocker if kind == "file" else blocker / "data"
    result = _run_once(data_dir)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(data_dir) in lines[0]
    assert "not a directory" in lines[0].lower()


def test_foreign_sqlite_file_is_a_store_error(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "engine.sqlite")
    conn.execute("CREATE TABLE mine (x)")
    conn.commit()
    conn.close()
    result = _run_once(tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "not an engine store" in lines[0]


# --- the demo's pieces, in process ---------------------------------------------------------------


def test_demo_leader_keeps_positions_small() -> None:
    leader = demo.DemoLeader(random.Random(7), ["ESZ6", "NQZ6"], weights=[3, 1])
    positions: Counter[str] = Counter()
    partials = 0
    for _ in range(5000):
        trade = leader.decide(positions)
        assert trade.qty != 0
        assert 1 <= abs(trade.qty) <= 5
        if trade.fills is not None:
            partials += 1
            assert sum(trade.fills) == abs(trade.qty)
            assert all(part > 0 for part in trade.fills)
        positions[trade.symbol] += trade.qty
        assert abs(positions[trade.symbol]) <= 5
    assert partials > 0


def test_market_walks_on_ticks_and_quotes_the_micros_alike() -> None:
    market = demo.Market(random.Random(1), demo.DEMO_INSTRUMENTS)
    for _ in range(500):
        quotes = market.step()
        assert quotes["MESZ6"] == quotes["ESZ6"]
        assert quotes["MNQZ6"] == quotes["NQZ6"]
        for instrument in demo.DEMO_INSTRUMENTS:
            price = quotes[instrument.symbol]
            assert price > 0
            assert price % instrument.tick == 0
    a = demo.Market(random.Random(3), demo.DEMO_INSTRUMENTS)
    b = demo.Market(random.Random(3), demo.DEMO_INSTRUMENTS)
    assert [a.step() for _ in range(20)] == [b.step() for _ in range(20)]
