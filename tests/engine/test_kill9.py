"""``kill -9`` the live engine at random points, many times, and check nothing was lost.

The engine runs as a real process (``python -m engine run``) on one data directory, with the
paper broker's state in a file (``--paper-state``), so the broker outlives the engine like a real
one. Each iteration starts the engine, lets the demo leader trade every 0.15 s, and SIGKILLs it
after a random 0.8-2.5 s: kills land in the middle of fan-outs, and some iterations first
flatten the demo group or lock a follower (the hidden ``--signal-commands``: SIGUSR1, SIGUSR2)
and kill a few milliseconds later, in the middle of the flatten. A last run stops cleanly (after
``--duration``, the same graceful stop as SIGINT) once its start-up reconciliation is done.

Then, from the store (``engine.sqlite``) and the broker's state file:
- the engine started again after every kill (a corrupt store or journal is an engine bug);
- every account's positions in the store equal the broker's;
- the broker never refused an order as a duplicate and accepted no client order id twice;
- the activity, order and reconciliation records only grew from one kill to the next, and every
  order the broker accepted is in the intent log and in the order ledger;
- a lock, once durable, stays; memberships are as configured;
- every follower is within its target on the leader's side (S2.2, S3.2: never more than
  ``t(L)``, never on the other side).

The random points come from a seeded RNG: the seed is printed and named in every failure; set
``KILL9_SEED`` to run one again. ``KILL9_ITERATIONS`` overrides the number of kills (default 6).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine import demo
from engine.copy_rule import target
from engine.frames import read_frames
from engine.instruments import map_symbol

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = int(os.environ.get("KILL9_ITERATIONS", "6"))
FINAL_DURATION = 3.0
START_TIMEOUT = 20.0
# What each iteration does before its kill, in turn (a lock needs doing once only).
PLAN = ("trade", "flatten", "trade", "flatten", "lock", "trade")
FOLLOWERS = {m.account: m for g in demo.demo_setup()[2] for m in g.members}


def _seed() -> int:
    given = os.environ.get("KILL9_SEED")
    return int(given) if given else random.SystemRandom().randrange(1_000_000)


@dataclass
class Snapshot:
    """What the store holds after one run ended (by a kill, or the last one cleanly)."""

    counts: dict[str, int]
    risk: dict[str, tuple[str, str]]  # account -> (status, lock reason)
    memberships: list[tuple[str, str, str, int | None, str]]
    positions: dict[str, dict[str, int]]
    order_ids: set[str]
    integrity: str


@dataclass
class Iteration:
    number: int
    action: str
    delay: float  # seconds from the start of the process to the kill
    returncode: int | None
    started: bool  # the log said "engine started" before the kill
    after: Snapshot
    log: Path


@dataclass
class Kill9Run:
    seed: int
    data_dir: Path
    iterations: list[Iteration] = field(default_factory=list)
    final_code: int | None = None
    final_log: list[dict[str, Any]] = field(default_factory=list)
    final: Snapshot | None = None
    broker: dict[str, Any] = field(default_factory=dict)
    intents: list[str] = field(default_factory=list)

    def where(self, iteration: int | None = None) -> str:
        at = f", iteration {iteration}" if iteration is not None else ""
        return f"[kill9 seed {self.seed}{at}; KILL9_SEED={self.seed} to repeat; {self.data_dir}]"

    def broker_positions(self) -> dict[str, dict[str, int]]:
        return {
            account: {symbol: int(p["qty"]) for symbol, p in held.items()}
            for account, held in self.broker["positions"].items()
        }


# --- running the engine ---------------------------------------------------------------------------


def _command(data_dir: Path, seed: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "engine",
        "run",
        "--data-dir",
        str(data_dir),
        "--paper-state",
        str(data_dir / "paper.json"),
        "--seed",
        str(seed),
        "--demo-interval",
        "0.15",
        "--log-format",
        "json",
        *extra,
    ]


def _start(data_dir: Path, seed: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            _command(data_dir, seed, *extra),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _logged(log: Path, event: str) -> bool:
    try:
        return f'"event": "{event}"' in log.read_text(errors="replace")
    except FileNotFoundError:
        return False


def _wait_logged(proc: subprocess.Popen[bytes], log: Path, event: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _logged(log, event):
            return True
        if proc.poll() is not None:
            return _logged(log, event)
        time.sleep(0.01)
    return False


def _kill(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=10)


# --- reading what is left --------------------------------------------------------------------------


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=5)  # never creates it
    conn.row_factory = sqlite3.Row
    return conn


def _snapshot(data_dir: Path) -> Snapshot:
    path = data_dir / "engine.sqlite"
    if not path.exists():  # killed before the store was created
        return Snapshot({}, {}, [], {}, set(), "ok")
    conn = _connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "activity" not in tables:  # killed before the schema was written (one transaction)
            integrity = conn.execute("PRAGMA quick_check").fetchone()[0]
            return Snapshot({}, {}, [], {}, set(), integrity)
        integrity = conn.execute("PRAGMA quick_check").fetchone()[0]
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("activity", "orders", "reconciliations")
        }
        risk = {
            r["account"]: (r["status"], r["lock_reason"])
            for r in conn.execute("SELECT account, status, lock_reason FROM risk_state")
        }
        memberships = [
            (r["group_id"], r["account"], r["ratio"], r["max_qty"], r["symbol_map"])
            for r in conn.execute("SELECT * FROM memberships ORDER BY group_id, position")
        ]
        positions: dict[str, dict[str, int]] = {}
        for r in conn.execute("SELECT account, symbol, qty FROM positions WHERE qty != 0"):
            positions.setdefault(r["account"], {})[r["symbol"]] = int(r["qty"])
        order_ids = {r[0] for r in conn.execute("SELECT client_order_id FROM orders")}
    finally:
        conn.close()
    return Snapshot(counts, risk, memberships, positions, order_ids, integrity)


def _run(data_dir: Path, seed: int) -> Kill9Run:
    print(f"kill9: seed {seed} (KILL9_SEED={seed} repeats it), data in {data_dir}")
    rng = random.Random(seed)
    run = Kill9Run(seed, data_dir)
    for number in range(ITERATIONS):
        action = PLAN[number % len(PLAN)]
        if action == "lock" and any(i.action == "lock" for i in run.iterations):
            action = "trade"
        log = data_dir / f"run-{number}.log"
        began = time.monotonic()
        proc = _start(data_dir, seed * 100 + number, log, "--signal-commands")
        started = False
        try:
            if action == "trade":
                time.sleep(rng.uniform(0.8, 2.5))
            else:
                # A command needs the engine up; the kill follows it within a few milliseconds.
                started = _wait_logged(proc, log, "engine started", START_TIMEOUT)
                time.sleep(rng.uniform(0.2, 1.2))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGUSR1 if action == "flatten" else signal.SIGUSR2)
                time.sleep(rng.uniform(0.0, 0.03))
            started = started or _logged(log, "engine started")
        finally:
            code = _kill(proc)
        delay = time.monotonic() - began
        print(f"kill9: iteration {number} {action}: killed after {delay:.2f} s (exit {code})")
        run.iterations.append(
            Iteration(number, action, delay, code, started, _snapshot(data_dir), log)
        )

    # The last run: start, reconcile, trade a little, stop cleanly; then nothing moves.
    log = data_dir / "run-final.log"
    proc = _start(data_dir, seed * 100 + 99, log, "--duration", str(FINAL_DURATION))
    try:
        run.final_code = proc.wait(timeout=FINAL_DURATION + 40)
    except subprocess.TimeoutExpired:
        run.final_code = _kill(proc)
    run.final_log = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    run.final = _snapshot(data_dir)
    run.broker = json.loads((data_dir / "paper.json").read_text())
    frames, _ = read_frames(data_dir / "engine.intents")
    run.intents = [str(frame[0]) for frame in frames]
    return run


@pytest.fixture(scope="module")
def kill9(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kill9Run]:
    data_dir = tmp_path_factory.mktemp("kill9")
    began = time.monotonic()
    run = _run(data_dir, _seed())
    print(f"kill9: {ITERATIONS} kills and a clean run in {time.monotonic() - began:.1f} s")
    yield run


# --- the checks -----------------------------------------------------------------------------------


def test_the_engine_starts_again_after_every_kill(kill9: Kill9Run) -> None:
    for it in kill9.iterations:
        text = it.log.read_text(errors="replace")
        assert it.returncode == -signal.SIGKILL, (
            f"{kill9.where(it.number)} the engine ended by itself (exit {it.returncode}) before"
            f" the kill:\n{text}"
        )
        assert "Traceback" not in text, f"{kill9.where(it.number)}\n{text}"
        assert it.after.integrity == "ok", f"{kill9.where(it.number)} {it.after.integrity}"
        if it.action != "trade":
            assert it.started, f"{kill9.where(it.number)} no 'engine started':\n{text}"
    names = [r.get("event") for r in kill9.final_log]
    assert kill9.final_code == 0, f"{kill9.where()} final run exit {kill9.final_code}: {names}"
    assert "engine started" in names, kill9.where()
    assert names[-1] == "stopped", kill9.where()
    starting = next(r for r in kill9.final_log if r.get("event") == "engine starting")
    assert starting["store_state"].startswith("existing"), kill9.where()
    assert kill9.final is not None
    assert kill9.final.integrity == "ok", kill9.where()


def test_positions_in_the_store_match_the_broker(kill9: Kill9Run) -> None:
    assert kill9.final_code == 0, kill9.where()
    assert kill9.final is not None
    broker = kill9.broker_positions()
    accounts = [demo.LEADER, *FOLLOWERS]
    for account in accounts:
        assert kill9.final.positions.get(account, {}) == broker.get(account, {}), (
            f"{kill9.where()} {account}: store {kill9.final.positions.get(account, {})}"
            f" != broker {broker.get(account, {})}"
        )
    assert set(broker) <= set(accounts), kill9.where()


def test_no_client_order_id_was_placed_twice(kill9: Kill9Run) -> None:
    duplicates = kill9.broker["duplicate_rejections"]
    assert duplicates == [], f"{kill9.where()} the broker refused duplicates: {duplicates}"
    accepted = kill9.broker["client_order_ids"]
    assert len(accepted) == len(set(accepted)), kill9.where()
    assert accepted, f"{kill9.where()} the engine never placed an order"


def test_every_order_the_broker_accepted_was_durable_before_it_was_sent(kill9: Kill9Run) -> None:
    """S2.6: the intent is durable (the intent log) before the order is sent."""
    missing = set(kill9.broker["client_order_ids"]) - set(kill9.intents)
    assert not missing, f"{kill9.where()} accepted but never in the intent log: {missing}"


def test_every_order_the_broker_accepted_is_in_the_order_ledger(kill9: Kill9Run) -> None:
    """S7.2: no record lost — the order ledger (``orders``) has every order the broker has."""
    assert kill9.final is not None
    missing = set(kill9.broker["client_order_ids"]) - kill9.final.order_ids
    assert not missing, (
        f"{kill9.where()} {len(missing)} orders the broker accepted are missing from the"
        f" order ledger: {sorted(missing)}"
    )


def test_records_only_grow(kill9: Kill9Run) -> None:
    assert kill9.final is not None
    before: dict[str, int] = {}
    snapshots = [(it.number, it.after) for it in kill9.iterations]
    snapshots.append((len(kill9.iterations), kill9.final))
    for number, snapshot in snapshots:
        for table, count in snapshot.counts.items():
            assert count >= before.get(table, 0), (
                f"{kill9.where(number)} {table}: {count} rows after, {before.get(table)} before"
            )
        before = snapshot.counts
    assert kill9.final.counts["activity"] > 0, kill9.where()


def test_locks_and_memberships_survive(kill9: Kill9Run) -> None:
    assert kill9.final is not None
    configured = [
        (demo.GROUP, m.account, str(m.ratio), m.max_qty, m.symbol_map) for m in FOLLOWERS.values()
    ]
    locked_at: int | None = None
    seeded = False
    snapshots = [(it.number, it.after) for it in kill9.iterations]
    snapshots.append((len(kill9.iterations), kill9.final))
    for number, snapshot in snapshots:
        members = [
            (g, a, r, q, tuple(sorted(json.loads(m).items())) if m else ())
            for g, a, r, q, m in snapshot.memberships
        ]
        if not members and not seeded:
            continue  # killed before the demo setup was first written
        seeded = True
        assert members == configured, f"{kill9.where(number)} memberships {members}"
        status = snapshot.risk.get(demo.LOCKED)
        if locked_at is not None:
            assert status is not None, kill9.where(number)
            assert status[0] == "LOCKED", (
                f"{kill9.where(number)} {demo.LOCKED} was locked after iteration {locked_at},"
                f" now {status}"
            )
        elif status is not None and status[0] == "LOCKED":
            locked_at = number
        for account, (state, reason) in snapshot.risk.items():
            if account != demo.LOCKED:
                assert state == "OK", f"{kill9.where(number)} {account} {state} ({reason})"
    if any(it.action == "lock" and it.started for it in kill9.iterations):
        lock = next(it for it in kill9.iterations if it.action == "lock")
        logged = _logged(lock.log, "activity") and '"kind": "lock"' in lock.log.read_text()
        if logged:  # acknowledged (logged) before the kill: it must be durable
            assert locked_at is not None, f"{kill9.where(lock.number)} the lock was lost"


def test_every_follower_is_within_its_target_on_the_leaders_side(kill9: Kill9Run) -> None:
    """S2.2/S3.2 after the last reconciliation and the copies since: for every symbol the
    leader holds, each follower holds between 0 and ``t(L)`` on the leader's side, and nothing
    in a symbol the leader is flat in."""
    assert kill9.final_code == 0, kill9.where()
    broker = kill9.broker_positions()
    leader = broker.get(demo.LEADER, {})
    symbols = {i.symbol for i in demo.DEMO_INSTRUMENTS} | set(leader)
    for account, membership in FOLLOWERS.items():
        symbol_map = dict(membership.symbol_map)
        held = dict(broker.get(account, {}))
        for symbol in sorted(symbols):
            mine = map_symbol(symbol, symbol_map)
            goal = target(leader.get(symbol, 0), Decimal(membership.ratio), membership.max_qty)
            position = held.pop(mine, 0)
            low, high = sorted((0, goal))
            assert low <= position <= high, (
                f"{kill9.where()} {account} holds {position} {mine}; leader {demo.LEADER}"
                f" holds {leader.get(symbol, 0)} {symbol}, target {goal}: outside [{low}, {high}]"
            )
        assert not held, f"{kill9.where()} {account} holds symbols it does not copy: {held}"
