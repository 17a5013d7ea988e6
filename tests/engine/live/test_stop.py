"""SIGTERM on a real engine process under load: from the moment the stop begins no order leaves,
the orders already sent are settled or recorded ``unknown`` — which the next start resolves by
asking the broker (S2.6) — and the process exits promptly, also with event-stream clients that
never read.

The load: a leader copied to 20 followers on two logins, trading every 5 ms — more than the
engine copies, so its actors always have a backlog — with the paper broker's state in a file
(``--paper-state``), which says which client order ids the broker accepted. How long the stop
takes is measured in ``bench/load.py``; here only that it ends (a generous bound).
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.engine_process import EngineProcess, start_engine

FOLLOWERS = 20
EXIT_TIMEOUT = 10.0  # seconds: far more than the stop takes; a hung stop fails here
WAIT = 60.0  # seconds the engine gets to reach a state the test waits for


@pytest.fixture
def engines() -> Iterator[list[EngineProcess]]:
    """The engines a test started; any still running at its end (a failed test) is killed."""
    started: list[EngineProcess] = []
    yield started
    for engine in started:
        if engine.proc.poll() is None:
            engine.proc.kill()
            engine.proc.wait()


def write_config(path: Path) -> Path:
    lines = [
        "[demo]",
        'leader = "LEAD"',
        "seed = 5",
        '[[connections]]\nid = "lead"',
        '[[connections]]\nid = "prop0"',
        '[[connections]]\nid = "prop1"',
        '[[accounts]]\nid = "LEAD"\nconnection = "lead"\nbalance = "1000000"',
    ]
    for n in range(FOLLOWERS):
        lines.append(f'[[accounts]]\nid = "F{n}"\nconnection = "prop{n % 2}"\nbalance = "1000000"')
    members = ", ".join(f'{{ account = "F{n}", ratio = "1" }}' for n in range(FOLLOWERS))
    lines.append(f'[[groups]]\nid = "g"\nleader = "LEAD"\nfollowers = [{members}]')
    path.write_text("\n".join(lines) + "\n")
    return path


def read_log(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            records.append(json.loads(line))  # a traceback or stray line fails the test here
    return records


def wait_for(what: str, done: Callable[[], bool], engine: EngineProcess) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        if engine.proc.poll() is not None or time.monotonic() > deadline:
            engine.proc.kill()
            pytest.fail(f"{what}: not within {WAIT} s (exit {engine.proc.poll()})")
        time.sleep(0.1)


def count(path: Path, event: str) -> int:
    return path.read_text().count(f'"event": "{event}"')


def ledger(data: Path) -> Counter[str]:
    conn = sqlite3.connect(data / "engine.sqlite")
    try:
        return Counter(str(r[0]) for r in conn.execute("SELECT status FROM orders"))
    finally:
        conn.close()


def test_sigterm_under_load_sends_nothing_more_and_exits(
    tmp_path: Path, engines: list[EngineProcess]
) -> None:
    data, paper, err = tmp_path / "data", tmp_path / "paper.json", tmp_path / "err.txt"
    config = write_config(tmp_path / "engine.toml")
    run = ("--config", str(config), "--paper-state", str(paper))
    engine = start_engine(data, *run, "--demo-interval", "0.005", stderr=err)
    engines.append(engine)
    wait_for("200 follower orders", lambda: count(err, "follower order") >= 200, engine)
    engine.proc.send_signal(signal.SIGTERM)
    assert engine.proc.wait(timeout=EXIT_TIMEOUT) == 0

    records = read_log(err)
    names = [r["event"] for r in records]
    stopping = names.index("stopping")
    assert records[stopping]["reason"] == "SIGTERM"
    assert names[-1] == "stopped"
    # Placing stopped first: an order whose intent was logged after "stopping" never left.
    orders = ("follower order", "engine order")
    after = {r["client_order_id"] for r in records[stopping:] if r["event"] in orders}
    accepted = set(json.loads(paper.read_text())["client_order_ids"])
    assert accepted, "the broker accepted nothing: no load"
    assert not after & accepted, "orders whose intents were written after the stop began left"
    # Every order the engine wrote has its outcome, or is recorded as not sent or unknown.
    statuses = ledger(data)
    assert "sent" not in statuses, statuses
    assert set(statuses) <= {"filled", "done", "rejected", "not_sent", "unknown"}, statuses

    # The next start asks the broker about each unknown one (S2.6) and trades on.
    again = start_engine(data, *run, "--demo-interval", "3600", stderr=tmp_path / "again.txt")
    engines.append(again)
    again.proc.send_signal(signal.SIGTERM)
    assert again.proc.wait(timeout=EXIT_TIMEOUT) == 0
    statuses = ledger(data)
    assert not {"sent", "unknown"} & set(statuses), statuses


def never_reading_stream(url: str, token: str) -> socket.socket:
    """A client that asks for the event stream and never reads a byte of the answer."""
    host, port = url.removeprefix("http://").split(":")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect((host, int(port)))
    client.sendall(
        f"GET /api/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
        .encode()
    )  # fmt: skip
    return client


def test_sigterm_with_event_stream_clients_that_never_read_exits(
    tmp_path: Path, engines: list[EngineProcess]
) -> None:
    """A client that reads nothing blocks the server's write to it for as long as the kernel
    keeps its connection: the stop must not wait for that."""
    data, err = tmp_path / "data", tmp_path / "err.txt"
    config = write_config(tmp_path / "engine.toml")
    engine = start_engine(data, "--config", str(config), "--demo-interval", "0.02", stderr=err)
    engines.append(engine)
    clients = [never_reading_stream(engine.url, engine.token) for _ in range(8)]
    try:
        # Three events or so per order: far more than a client's buffers and queue hold.
        wait_for("1000 follower orders", lambda: count(err, "follower order") >= 1000, engine)
        engine.proc.send_signal(signal.SIGTERM)
        assert engine.proc.wait(timeout=EXIT_TIMEOUT) == 0
    finally:
        for client in clients:
            client.close()
    names = [r["event"] for r in read_log(err)]
    assert names.index("stopping") < names.index("stopped")
    assert names.count("event stream cut: the client does not keep up") == len(clients)
