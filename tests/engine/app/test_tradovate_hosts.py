"""``[broker] kind = "tradovate"`` pointed at another Tradovate-compatible server by its host
overrides (``rest_url``, ``ws_url``, ``md_url``, ``auth_url``, ``token_url``), as a real
``python -m engine run`` process: here the project's local server, on loopback in this test's
process, stands in for a partner sandbox or a conformance server. The authorize URL is the
override's, a connection signed in on that server's page comes up ``connected``, and a leader
trade there is copied through it. An override that would send the traffic off this machine
in plain http is refused at start in one line."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trio

from tests.engine.engine_process import ROOT, start_engine, stop_engine

HAS_ADAPTER = importlib.util.find_spec("brokers.tradovate") is not None
T = TypeVar("T")

CLIENT_ID = "sandbox-app"
CLIENT_SECRET = "sandbox-secret-value-7781"  # the test server's, made up here
CONNECTION = "tv"
ES = "ESZ6"


class ServerThread:
    """The local Tradovate server serving in a trio loop on a thread of its own; the engine
    under test is another process and reaches it over loopback sockets only."""

    def __init__(self, sim: Any, token: trio.lowlevel.TrioToken) -> None:
        self.sim = sim
        self.token = token
        self.base_url: str = sim.base_url

    def call(self, fn: Callable[[Any], T]) -> T:
        """``fn(sim)`` in the server's trio loop."""
        return trio.from_thread.run_sync(fn, self.sim, trio_token=self.token)


@contextmanager
def local_server(users: dict[str, list[str]]) -> Iterator[ServerThread]:
    serve_sim = importlib.import_module("brokers.tradovate.sim").serve_sim
    ready = threading.Event()
    found: dict[str, Any] = {}

    async def serve() -> None:
        async with serve_sim(users=users, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
            found["server"] = ServerThread(sim, trio.lowlevel.current_trio_token())
            found["stop"] = stop = trio.Event()
            ready.set()
            await stop.wait()

    def main() -> None:
        try:
            trio.run(serve)
        except BaseException as error:  # shown by the test, not lost on the thread
            found["error"] = error
        finally:
            ready.set()

    thread = threading.Thread(target=main, name="local-tradovate", daemon=True)
    thread.start()
    assert ready.wait(15), "the local Tradovate server did not start"
    if "server" not in found:
        raise AssertionError(f"the local Tradovate server failed: {found.get('error')!r}")
    server: ServerThread = found["server"]
    try:
        yield server
    finally:
        trio.from_thread.run_sync(found["stop"].set, trio_token=server.token)
        thread.join(15)
    assert "error" not in found, found.get("error")


def _until(what: str, check: Callable[[], T], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)
    return found


def _env(**values: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRADOVATE_")}
    return {**clean, **values}


def _records(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


@pytest.mark.skipif(not HAS_ADAPTER, reason="this build has no Tradovate adapter")
def test_the_engine_runs_on_the_hosts_of_its_configuration(tmp_path: Path) -> None:
    with local_server({CONNECTION: ["LEAD", "F1"]}) as server:
        base = server.base_url
        ws = "ws" + base.removeprefix("http")
        hosts = {
            "rest_url": f"{base}/v1",
            "ws_url": f"{ws}/v1/websocket",
            "md_url": f"{ws}/md/v1/websocket",
            "auth_url": f"{base}/oauth",
            "token_url": f"{base}/v1/auth/oauthtoken",
        }
        config = tmp_path / "engine.toml"
        config.write_text(
            '[broker]\nkind = "tradovate"\nenvironment = "live"\n'
            + "".join(f'{key} = "{url}"\n' for key, url in hosts.items())
            + f'[[connections]]\nid = "{CONNECTION}"\n'
            f'[[accounts]]\nid = "LEAD"\nconnection = "{CONNECTION}"\n'
            f'[[accounts]]\nid = "F1"\nconnection = "{CONNECTION}"\n'
            '[[groups]]\nid = "main"\nleader = "LEAD"\nfollowers = [{ account = "F1" }]\n'
        )
        data, stderr = tmp_path / "data", tmp_path / "stderr.log"
        env = _env(TRADOVATE_CLIENT_ID=CLIENT_ID, TRADOVATE_CLIENT_SECRET=CLIENT_SECRET)
        engine = start_engine(data, "--config", str(config), env=env, stderr=stderr)
        try:
            auth = {"Authorization": f"Bearer {engine.token}"}
            with httpx.Client(base_url=engine.url, headers=auth, timeout=10) as http:
                states = {c["id"]: c["state"] for c in http.get("/api/connections").json()}
                assert states == {CONNECTION: "reauth_required"}

                answer = http.post(f"/api/connections/{CONNECTION}/reauthorize")
                assert answer.status_code == 200, answer.text
                authorize_url = answer.json()["authorize_url"]
                assert authorize_url.startswith(f"{hosts['auth_url']}?"), authorize_url
                query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
                assert query["client_id"] == CLIENT_ID
                with httpx.Client(timeout=10) as browser:
                    page = browser.get(authorize_url)
                    assert page.status_code == 200, page.text
                    assert f"Sign in as {CONNECTION}" in page.text
                    approved = browser.post(
                        f"{base}/oauth/approve",
                        data={
                            "user": CONNECTION,
                            "client_id": query["client_id"],
                            "redirect_uri": query["redirect_uri"],
                            "state": query["state"],
                        },
                    )
                    assert approved.status_code == 302, approved.text
                    back = approved.headers["location"]
                    assert back.startswith(f"{engine.url}/oauth/callback?"), back
                    done = browser.get(back)
                assert done.status_code == 200, done.text

                def state() -> str:
                    connections = http.get("/api/connections").json()
                    return str(connections[0]["state"])

                _until("the connection connected", lambda: state() == "connected")
                # Its token is kept apart from any Tradovate issued (data/tradovate/).
                (kept,) = data.glob(f"tradovate-*/tradovate-{CONNECTION}.token")
                assert not (data / "tradovate").exists()
                assert server.call(lambda sim: len(sim.requests_to("auth/oauthtoken"))) == 1
                # Its trading socket on the ws host, subscribed to the login's changes.
                _until("the trading socket synced", lambda: server.call(_synced))

                # The leader trades at that server; the copy goes out through it.
                server.call(lambda sim: sim.set_price(ES, Decimal(5000)))
                server.call(lambda sim: sim.trade("LEAD", ES, 2))
                _until("F1 filled at the server", lambda: server.call(_position("F1")) == 2)
                _until(
                    "F1's position in the API",
                    lambda: http.get("/api/accounts/F1").json()["positions"],
                )
                placed = server.call(lambda sim: len(sim.requests_to("order/placeorder")))
                assert placed == 1
                _until("quotes asked on the md host", lambda: server.call(_quoting))
        finally:
            assert stop_engine(engine) == 0

    records = _records(stderr)
    (overridden,) = [r for r in records if r.get("event") == "tradovate hosts overridden"]
    assert overridden["environment"] == "live"
    assert overridden["hosts"] == [f"{key} {url}" for key, url in hosts.items()]
    assert overridden["directory"] == str(kept.parent)
    logged = stderr.read_text() + (data / "engine.log").read_text()
    assert CLIENT_SECRET not in logged
    assert not [r for r in records if r.get("level") == "error"], records


def _position(account: str) -> Callable[[Any], int]:
    def read(sim: Any) -> int:
        position: int = sim.position(account, ES)
        return position

    return read


def _synced(sim: Any) -> bool:
    user = sim.exchange.user(CONNECTION).id
    return any(
        s.kind == "trading" and s.subscribed and s.user_id == user for s in sim.server.hub.sockets
    )


def _quoting(sim: Any) -> bool:
    return any(s.kind == "md" and s.quotes for s in sim.server.hub.sockets)


def _run(config: Path, text: str) -> subprocess.CompletedProcess[str]:
    config.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "engine", "run", "--config", str(config), "--data-dir",
         str(config.parent / "data"), "--port", "0", "--log-format", "json"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(TRADOVATE_CLIENT_ID="id", TRADOVATE_CLIENT_SECRET="secret-value"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("key", "url", "expected"),
    [
        ("rest_url", "http://10.0.0.5/v1",
         "expected an https:// URL, or http:// on a loopback address"),
        ("md_url", "ws://md.sandbox.example.com/v1/websocket",
         "expected a wss:// URL, or ws:// on a loopback address"),
    ],
)  # fmt: skip
def test_a_plain_host_off_this_machine_is_refused_at_start(
    tmp_path: Path, key: str, url: str, expected: str
) -> None:
    config = tmp_path / "engine.toml"
    result = _run(config, f'[broker]\nkind = "tradovate"\n{key} = "{url}"\n')
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"{config}: broker.{key}: {expected} (got {url!r})"
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "engine.sqlite").exists()
