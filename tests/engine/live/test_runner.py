"""``python -m engine run`` as a real process: the demo copies leader fills, SIGINT stops it
cleanly (commands refused, orders in flight settled, store and journal flushed, exit 0), a second
engine on the same data directory is refused, and a bad configuration is one clear message. On
the local Tradovate server (``--tradovate-sim``) the demo copies once its connections are signed
in through the API's re-authorize and the server's own page.

Each test starts the engine with ``sys.executable`` from the repository root and reads its
JSON-lines log. The hidden ``--demo-interval`` makes the demo leader trade every 0.5 s.
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from engine.app import demo
from engine.storage.frames import encode_frame
from tests.engine.engine_process import start_engine, stop_engine

ROOT = Path(__file__).resolve().parents[3]
LOCK_MESSAGE = (
    "another engine is running on {dir}/ (process {pid}, holding the lock {dir}/engine.lock)"
)


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
        "--port",
        "0",
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
    # The demo's followers copy orders (S8): a follower order is a mirror of a leader's working
    # order, or a copy of a leader fill; every copy names the fill that caused it, logged
    # before it.
    assert {o["kind"] for o in orders} <= {"copy", "mirror"}
    orders = [o for o in orders if o["kind"] == "copy"]
    for order in orders:
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
    assert second.stderr.strip() == LOCK_MESSAGE.format(dir=tmp_path, pid=first.proc.pid)
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


def _damaged_frame() -> bytes:
    frame = bytearray(encode_frame(["J", "g1", "F1"]))
    frame[-1] ^= 0xFF
    return bytes(frame)


@pytest.mark.parametrize(
    ("log_file", "content", "said"),
    [
        ("engine.fanouts", lambda: _damaged_frame() + encode_frame(["J", "g1", "F1"]), "byte 0"),
        ("engine.fanouts", lambda: encode_frame(["Q", 1]), "unknown frame kind 'Q'"),
        ("engine.status", lambda: _damaged_frame() + encode_frame(["J"]), "byte 0"),
        ("engine.status", lambda: encode_frame({"not": "a status"}), "frame 1"),
        ("engine.intents", lambda: _damaged_frame() + encode_frame(["J"]), "byte 0"),
    ],
)
def test_a_damaged_log_in_the_data_dir_refuses_the_start(
    tmp_path: Path, log_file: str, content: Callable[[], bytes], said: str
) -> None:
    """A frame damaged before the end of a log, or whole but not what the log holds, is a
    clear last line and exit 2 (no traceback), and the file is left as it was for whoever
    looks into it."""
    assert _run_once(tmp_path).returncode == 0  # a first run makes the data dir
    path = tmp_path / log_file
    path.write_bytes(content())
    before = path.read_bytes()
    result = _run_once(tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert log_file in last and said in last, last
    assert path.read_bytes() == before


def test_graceful_stop_settles_every_order(tmp_path: Path) -> None:
    """SIGTERM in the middle of busy trading: the API stops taking commands, every order the
    engine sent has its outcome recorded (a resting mirror's is that it works; one whose
    intent was being written as the stop began is recorded as not sent), the journal and the
    store are flushed, exit 0."""
    data = tmp_path / "data"
    engine = start_engine(data, "--demo-interval", "0.1", stderr=tmp_path / "err.txt")
    auth = {"Authorization": f"Bearer {engine.token}"}
    with httpx.Client(base_url=engine.url, headers=auth, timeout=10) as http:
        assert http.get("/api/status").json()["stopping"] is False
        time.sleep(2)
        engine.proc.send_signal(signal.SIGTERM)
        code = engine.proc.wait(timeout=30)
    assert code == 0
    records = _parse((tmp_path / "err.txt").read_text().splitlines(keepends=True))
    names = [r["event"] for r in records]
    assert names.index("stopping") < names.index("stopped") == len(names) - 1
    assert not _events(records, "stopping with orders in flight")
    conn = sqlite3.connect(data / "engine.sqlite")
    try:
        statuses = Counter(r[0] for r in conn.execute("SELECT status FROM orders"))
    finally:
        conn.close()
    assert statuses["filled"] > 0
    # "working": a mirror the broker accepted that rests there (S8), an answered order too.
    assert set(statuses) <= {"filled", "done", "rejected", "not_sent", "working"}, statuses
    assert not (data / "api.url").exists()
    # A new engine starts on what was left, and reconciles.
    again = start_engine(data)
    assert stop_engine(again) == 0


def test_the_api_refuses_commands_while_stopping(tmp_path: Path) -> None:
    engine = start_engine(tmp_path / "data")
    auth = {"Authorization": f"Bearer {engine.token}"}
    with httpx.Client(base_url=engine.url, headers=auth, timeout=10) as http:
        assert http.post("/api/accounts/DEMO-F1/lock").status_code == 202
        assert stop_engine(engine) == 0
        with pytest.raises(httpx.ConnectError):
            http.post("/api/flatten")


def test_bad_config_is_one_line_per_problem(tmp_path: Path) -> None:
    config = tmp_path / "engine.toml"
    config.write_text("[api]\nport = 'x'\n[log]\nlevel = 'loud'\n")
    result = subprocess.run(
        [sys.executable, "-m", "engine", "run", "--config", str(config)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"{config}: api.port: expected an integer (got 'x')",
        f"{config}: log.level: expected 'debug', 'info', 'warning' or 'error' (got 'loud')",
    ]


def test_a_config_seeds_the_store_and_sets_the_api(tmp_path: Path) -> None:
    config = tmp_path / "engine.toml"
    config.write_text(
        'data_dir = "state"\n'
        '[demo]\nleader = "MY-LEAD"\n'
        '[[connections]]\nid = "mine"\n'
        '[[accounts]]\nid = "MY-LEAD"\nconnection = "mine"\n'
        '[[accounts]]\nid = "MY-F"\nconnection = "mine"\nlimits = { daily_loss_limit = "900" }\n'
        '[[groups]]\nid = "g"\nleader = "MY-LEAD"\n'
        'followers = [{ account = "MY-F", ratio = "2" }]\n'
    )
    engine = start_engine(tmp_path / "state", "--config", str(config))
    auth = {"Authorization": f"Bearer {engine.token}"}
    try:
        with httpx.Client(base_url=engine.url, headers=auth, timeout=10) as http:
            accounts = {a["id"]: a for a in http.get("/api/accounts").json()}
            assert set(accounts) == {"MY-LEAD", "MY-F"}
            assert accounts["MY-F"]["limits"] == {"daily_loss_limit": "900"}
            deadline = time.monotonic() + 15
            while not http.get("/api/accounts/MY-F").json()["positions"]:
                assert time.monotonic() < deadline, "the configured leader's trade was not copied"
                time.sleep(0.2)
    finally:
        assert stop_engine(engine) == 0


def _run_config(tmp_path: Path, text: str, env: dict[str, str], *extra: str) -> Any:
    config = tmp_path / "engine.toml"
    config.write_text(text)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRADOVATE_")}
    return subprocess.run(
        [sys.executable, "-m", "engine", "run", "--config", str(config), "--data-dir",
         str(tmp_path / "data"), "--port", "0", "--log-format", "json", *extra],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
    )  # fmt: skip


HAS_TRADOVATE = importlib.util.find_spec("brokers.tradovate") is not None


@pytest.mark.skipif(HAS_TRADOVATE, reason="this build has the Tradovate adapter")
def test_tradovate_without_the_adapter_is_refused_clearly(tmp_path: Path) -> None:
    secrets = {"TRADOVATE_CLIENT_ID": "id", "TRADOVATE_CLIENT_SECRET": "secret"}
    result = _run_config(tmp_path, '[broker]\nkind = "tradovate"\n', secrets)
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith('broker.kind = "tradovate": not available in this build')
    )


@pytest.mark.skipif(not HAS_TRADOVATE, reason="this build has no Tradovate adapter")
def test_tradovate_takes_its_secrets_from_the_environment(tmp_path: Path) -> None:
    toml = '[broker]\nkind = "tradovate"\n'
    missing = _run_config(tmp_path, toml, {"TRADOVATE_CLIENT_ID": "id"})
    assert missing.returncode == 2, missing.stderr
    assert missing.stderr.strip().splitlines()[-1] == (
        "broker: environment variable TRADOVATE_CLIENT_SECRET is not set"
    )
    secret = "tradovate-secret-value-42"
    env = {"TRADOVATE_CLIENT_ID": "id", "TRADOVATE_CLIENT_SECRET": secret}
    ran = _run_config(tmp_path, toml, env, "--duration", "1")
    assert ran.returncode == 0, ran.stderr
    assert secret not in ran.stderr + (tmp_path / "data" / "engine.log").read_text()


@pytest.mark.skipif(not HAS_TRADOVATE, reason="this build has no Tradovate adapter")
def test_a_store_of_another_broker_is_refused_in_one_line(tmp_path: Path) -> None:
    """The paper demo's store under another broker: one line, no traceback, untouched."""
    data = tmp_path / "data"
    assert _run_once(data).returncode == 0
    env = {"TRADOVATE_CLIENT_ID": "id", "TRADOVATE_CLIENT_SECRET": "secret"}
    result = _run_config(tmp_path, '[broker]\nkind = "tradovate"\n', env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"{data / 'engine.sqlite'}: connection 'demo-lead' is on broker 'paper' but this"
        " run's broker.kind is 'tradovate'; use another --data-dir (or run on 'paper')"
    ]


# --- on the local Tradovate server (--tradovate-sim) ---------------------------------------------


def _until(what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)
    return found


def _sign_in(http: httpx.Client, connection: str) -> tuple[str, str]:
    """Re-authorize ``connection`` as a person does: the Cockpit's button (the API answers the
    authorize URL), the local server's page and its "Sign in as" button, then back to the
    engine's callback. Returns the code and the state the browser carried."""
    answer = http.post(f"/api/connections/{connection}/reauthorize")
    assert answer.status_code == 200, answer.text
    authorize_url = answer.json()["authorize_url"]
    where = urlsplit(authorize_url)
    with httpx.Client(timeout=10) as browser:
        page = browser.get(authorize_url)
        assert page.status_code == 200, page.text
        assert f"Sign in as {connection}" in page.text
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action is not None, page.text
        form = {
            name: html.unescape(value)
            for name, value in re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', page.text)
        }
        approved = browser.post(
            f"{where.scheme}://{where.netloc}{action[1]}", data={**form, "user": connection}
        )
        assert approved.status_code == 302, approved.text
        back = approved.headers["location"]
        assert back.startswith(f"{str(http.base_url).rstrip('/')}/oauth/callback?"), back
        done = browser.get(back)
    assert done.status_code == 200, done.text
    assert f"Connection {connection} re-authorized" in done.text
    query = parse_qs(urlsplit(back).query)
    return query["code"][0], query["state"][0]


def test_the_demo_runs_on_the_local_tradovate_server(tmp_path: Path) -> None:
    """``--tradovate-sim``: the engine starts the local server in its own loop; the demo's
    connections wait in reauth_required until signed in through the API's re-authorize and the
    server's own page; then the demo leader's trades at the server are copied — the followers'
    orders reach the server as placeorder with the engine's client order ids, and their
    positions show in the API. No code, state or token reaches a log."""
    data, log_file = tmp_path / "data", tmp_path / "stderr.log"
    engine = start_engine(data, "--tradovate-sim", stderr=log_file)
    auth = {"Authorization": f"Bearer {engine.token}"}

    def records() -> list[dict[str, Any]]:
        return _parse(log_file.read_text().splitlines(keepends=True))

    try:
        with httpx.Client(base_url=engine.url, headers=auth, timeout=10) as http:
            connections = {c["id"]: c["state"] for c in http.get("/api/connections").json()}
            assert connections == {
                demo.LEADER_CONNECTION: "reauth_required",
                demo.PROP_CONNECTION: "reauth_required",
            }
            # No paper desk on a real broker's engine: trades and prices are the broker's.
            desk = http.post("/api/paper/price", json={"symbol": "ESZ6", "last": "4990"})
            assert desk.status_code == 409, desk.text
            assert "tradovate-sim" in desk.json()["message"]
            time.sleep(0.6)  # a leader interval: nothing is traded before its login is up
            assert not _events(records(), "leader fill")
            travelled = [
                *_sign_in(http, demo.PROP_CONNECTION),
                *_sign_in(http, demo.LEADER_CONNECTION),
            ]
            _until(
                "both connections connected",
                lambda: {c["state"] for c in http.get("/api/connections").json()} == {"connected"},
            )

            def first_copies() -> list[dict[str, Any]]:
                seen = records()
                fills = _events(seen, "leader fill")
                if not fills:
                    return []
                cause = f"{demo.LEADER}:{fills[0]['fill_id']}"
                orders = [o for o in _events(seen, "follower order") if o["cause"] == cause]
                return orders if len(orders) == 3 else []

            copies = _until("the first leader fill copied to the three followers", first_copies)
            assert {o["account"] for o in copies} == {"DEMO-F1", "DEMO-F2", "DEMO-F3"}
            server = _events(records(), "local tradovate serving")[0]["url"]
            token_file = data / "tradovate-sim" / f"tradovate-{demo.PROP_CONNECTION}.token"
            token = json.loads(token_file.read_text())["access_token"]
            travelled.append(token)
            at_server = f"{server}/v1/command/list"
            bearer = {"Authorization": f"Bearer {token}"}

            def placed() -> set[str]:
                commands = httpx.get(at_server, headers=bearer, timeout=10).json()
                return {c["clOrdId"] for c in commands if c.get("isAutomated") and "clOrdId" in c}

            wanted = {o["client_order_id"] for o in copies}
            _until("the copies placed at the local server", lambda: wanted <= placed())
            _until(
                "DEMO-F1's position in the API",
                lambda: http.get("/api/accounts/DEMO-F1").json()["positions"],
            )
    finally:
        assert stop_engine(engine) == 0
    logged = log_file.read_text() + (data / "engine.log").read_text()
    for secret in travelled:
        assert secret not in logged
    assert not [r for r in records() if r.get("level") == "error"]


def test_a_local_tradovate_host_off_this_machine_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "engine.toml"
    result = _run_config(tmp_path, '[broker]\nkind = "tradovate-sim"\nhost = "0.0.0.0"\n', {})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f'{config}: broker.host: expected a loopback address ("127.0.0.1", "::1" or "localhost"):'
        " the local Tradovate server signs in whoever reaches it, so it serves this machine only"
        " (got '0.0.0.0')"
    ]


def test_a_busy_chosen_port_is_one_clear_line(tmp_path: Path, busy_port: int) -> None:
    port = busy_port
    result = subprocess.run(
        [sys.executable, "-m", "engine", "run", "--data-dir", str(tmp_path), "--port",
         str(port), "--log-format", "json"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"the API cannot listen on 127.0.0.1:{port}: Address already in use"
    )


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
