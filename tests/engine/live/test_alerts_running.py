"""S10.4 in the running engine (``python -m engine run``, paper broker, the demo setup without
its trading leader): alerts go to a JSON webhook on loopback named by ``[alerts] urls_env``.

A target that hangs delays no copy: while its request is held open, a leader fill on the paper
desk is copied to the followers (the order of events is asserted, not a time). A follower made
to drift by a trade at its own broker gives the webhook exactly one ``drift`` alert (S10.1). The
target's token is in no log line, no metric and no API answer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.engine.engine_process import (
    EngineProcess,
    run_for_a_second,
    start_engine,
    stop_engine,
)
from tests.engine.live.alert_receiver import Receiver

TOKEN = "webh00kTokenOfTheTrader"
SETUP = """
[alerts]
urls_env = "MIMIK_ALERT_URLS"

[engine]
drift_grace_seconds = 0.5
drift_check_seconds = 0.5

[demo]
leader = ""
"""


def _start(tmp_path: Path, url: str) -> EngineProcess:
    config = tmp_path / "engine.toml"
    config.write_text(SETUP)
    env = {**os.environ, "MIMIK_ALERT_URLS": url}
    return start_engine(
        tmp_path / "data", "--config", str(config), env=env, stderr=tmp_path / "err.txt"
    )


def _client(engine: EngineProcess) -> httpx.Client:
    auth = {"Authorization": f"Bearer {engine.token}"}
    return httpx.Client(base_url=engine.url, headers=auth, timeout=10)


def _position(http: httpx.Client, account: str, symbol: str) -> int:
    return int(http.get(f"/api/accounts/{account}").json()["positions"].get(symbol, 0))


def _until(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _trade(http: httpx.Client, account: str, side: str, qty: int = 1) -> None:
    answer = http.post(
        "/api/paper/trade",
        json={"account": account, "side": side, "qty": qty, "symbol": "ESZ6"},
    )
    assert answer.status_code == 200, answer.text


def _no_token_anywhere(tmp_path: Path, http: httpx.Client) -> None:
    assert TOKEN not in http.get("/metrics").text
    for path in ("/api/status", "/api/activity", "/api/connections", "/api/accounts"):
        assert TOKEN not in http.get(path).text, path
    assert TOKEN not in (tmp_path / "err.txt").read_text()
    assert TOKEN not in (tmp_path / "data" / "engine.log").read_text()


def test_a_hanging_target_delays_no_copy(tmp_path: Path, receiver: Receiver) -> None:
    """DEMO-F2's lock is an alert whose request the target holds open (apprise's read timeout
    raised to a minute); the leader's buy is copied to DEMO-F1 while it is still open."""
    engine = _start(tmp_path, receiver.url(f"hang/{TOKEN}", rto="60"))
    try:
        with _client(engine) as http:
            assert http.post("/api/accounts/DEMO-F2/lock").status_code == 202
            receiver.wait_for("the hung request", lambda: receiver.hanging == 1)
            _trade(http, "DEMO-LEAD", "buy")
            _until("the copy", lambda: _position(http, "DEMO-F1", "ESZ6") == 1)
            assert receiver.hanging == 1, "the copy waited for the hung alert"
            assert receiver.posts == []
            receiver.release()
            receiver.wait_for("the lock alert", lambda: receiver.posts)
            assert receiver.posts[0].title == "[warning] lock DEMO-F2"
            _no_token_anywhere(tmp_path, http)
    finally:
        receiver.release()
        assert stop_engine(engine) == 0


def test_a_hanging_target_does_not_hold_the_stop(tmp_path: Path, receiver: Receiver) -> None:
    """SIGINT while an alert's request hangs: the engine stops as usual, exit 0 (a send left
    in a thread the interpreter waits for at its exit would hold it until killed)."""
    engine = _start(tmp_path, receiver.url(f"hang/{TOKEN}", rto="60"))
    with _client(engine) as http:
        assert http.post("/api/accounts/DEMO-F2/lock").status_code == 202
    receiver.wait_for("the hung request", lambda: receiver.hanging == 1)
    assert stop_engine(engine) == 0
    assert receiver.hanging == 1  # it was still open when the engine had gone


def test_a_follower_made_to_drift_is_exactly_one_alert(tmp_path: Path, receiver: Receiver) -> None:
    """The leader buys 1 ES (so ES is watched, S10.1) and DEMO-F1 copies it; then a trade by
    hand at DEMO-F1's paper broker leaves it +2 against an expected +1: past drift_grace the
    episode opens with one ``drift`` entry and the webhook gets one alert for it. Later checks
    of the same episode add none: the lock of DEMO-F2 a few checks later is the next
    message."""
    engine = _start(tmp_path, receiver.url(f"hook/{TOKEN}"))
    try:
        with _client(engine) as http:
            _trade(http, "DEMO-LEAD", "buy")
            _until("the copy", lambda: _position(http, "DEMO-F1", "ESZ6") == 1)
            _trade(http, "DEMO-F1", "buy")
            receiver.wait_for("the drift alert", lambda: receiver.posts)
            time.sleep(1.6)  # three more drift checks of the open episode
            assert http.post("/api/accounts/DEMO-F2/lock").status_code == 202
            receiver.wait_for("the mark", lambda: len(receiver.posts) >= 2)
            titles = [p.title for p in receiver.posts]
            assert titles == ["[warning] drift DEMO-F1", "[warning] lock DEMO-F2"], titles
            assert "drifts +1 ESZ6" in receiver.posts[0].message
            _no_token_anywhere(tmp_path, http)
    finally:
        assert stop_engine(engine) == 0


def test_a_file_open_to_others_refuses_the_start(tmp_path: Path) -> None:
    """The trader counts on the alerts: targets that cannot be read stop the start, in one
    line that quotes no URL."""
    urls = tmp_path / "alerts.urls"
    urls.write_text(f"json://127.0.0.1:9/{TOKEN}\n")
    urls.chmod(0o644)
    config = tmp_path / "engine.toml"
    config.write_text('[alerts]\nurls_file = "alerts.urls"\n')
    done = run_for_a_second(tmp_path / "data", "--config", str(config))
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"alerts.urls_file: {urls} is open to others (mode 0644); it holds secrets:"
        f" run chmod 600 {urls}"
    )
    assert TOKEN not in done.stderr
