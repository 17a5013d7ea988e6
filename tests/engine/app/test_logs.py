"""Logs: JSON lines to a file in the data directory and readable lines on the terminal, with no
token, OAuth code or secret ever written (S1.2) — checked on the redaction itself and by
grepping the whole log of a real engine run for the secrets the test used."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import structlog

from engine.app.logs import REDACTED, SECRETS, close_log_file, configure_logging, redact
from tests.engine.engine_process import start_engine, stop_engine


@pytest.fixture
def restore_logging() -> object:
    """Put structlog and the root logger back as a test process starts, so tests that capture
    log lines later (``structlog.testing.capture_logs``) see every level again."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    close_log_file()
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_redaction_by_key_value_and_pattern() -> None:
    SECRETS.add("registered-secret-value")
    event = {
        "event": "calling back with code=abc123&state=xyz789",
        "token": "t0ken",
        "client_secret": "cs",
        "Authorization": "Bearer abcdefgh",
        "note": "the value registered-secret-value leaked",
        "header": "Authorization: Bearer abcdefgh.ijk",
        "nested": {"access_token": "x", "fine": ["a registered-secret-value"]},
        "account": "F1",
        "qty": 3,
    }
    out = redact(None, "info", dict(event))
    text = json.dumps(out)
    for secret in ("abc123", "xyz789", "t0ken", "registered-secret-value", "abcdefgh"):
        assert secret not in text
    assert out["token"] == REDACTED
    assert out["account"] == "F1"
    assert out["qty"] == 3
    assert "code=[redacted]" in out["event"]


def test_json_file_and_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: object
) -> None:
    path = tmp_path / "engine.log"
    configure_logging("info", json=False, file=path)
    log = structlog.get_logger("test")
    log.info("leader fill", account="LEAD", token="should-not-appear")
    log.debug("hidden")
    logging.getLogger("engine.http").warning("server said code=zzz999")
    logging.getLogger("httpx").info('HTTP Request: POST https://broker/order/placeorder "200 OK"')
    logging.getLogger("httpx").warning("the client's own warning")
    close_log_file()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["event"] for r in lines] == [
        "leader fill",
        "server said code=[redacted]",
        "the client's own warning",  # its line per request is not logged
    ]
    assert lines[0]["account"] == "LEAD"
    assert lines[0]["level"] == "info"
    assert "timestamp" in lines[0]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    terminal = capsys.readouterr().err
    assert "leader fill" in terminal
    assert not terminal.lstrip().startswith("{")  # readable, not JSON
    assert "should-not-appear" not in terminal + path.read_text()
    assert "zzz999" not in terminal


def test_no_secret_reaches_the_log_of_a_run(tmp_path: Path) -> None:
    """A real engine: first start (off a terminal the token is not printed: the Cockpit's
    address is, with where the token is kept), a reauthorize and its callback (state and code in
    the URL), calls with good and bad tokens."""
    data = tmp_path / "data"
    env = {**os.environ, "TRADOVATE_CLIENT_SECRET": "env-secret-1234567"}
    engine = start_engine(
        data,
        "--log-format",
        "console",
        env=env,
        stdout=tmp_path / "stdout.txt",
        stderr=tmp_path / "stderr.txt",
    )
    secrets = [engine.token]
    try:
        auth = {"Authorization": f"Bearer {engine.token}"}
        with httpx.Client(base_url=engine.url, headers=auth, timeout=10) as http:
            answer = http.post("/api/connections/demo-prop/reauthorize").json()
            query = parse_qs(urlsplit(answer["authorize_url"]).query)
            secrets += [query["code"][0], query["state"][0]]
            assert (
                http.get(f"/oauth/callback?{urlsplit(answer['authorize_url']).query}").status_code
                == 200
            )
            bad = "Bearer guessed-token-abcdef"
            assert http.get("/api/status", headers={"Authorization": bad}).status_code == 401
            secrets.append("guessed-token-abcdef")
            assert (
                http.get(
                    "/oauth/callback?code=forged-code-777777&state=forged-state-8888888"
                ).status_code
                == 400
            )
            secrets += ["forged-code-777777", "forged-state-8888888"]
    finally:
        assert stop_engine(engine) == 0
    log = (data / "engine.log").read_text()
    terminal = (tmp_path / "stderr.txt").read_text()
    assert '"event": "connection re-authorized"' in log
    for secret in secrets:
        assert secret not in log, secret
        assert secret not in terminal, secret
    assert "env-secret-1234567" not in log + terminal
    stdout = (tmp_path / "stdout.txt").read_text()
    assert engine.token not in stdout  # stdout is a file here: `python -m engine cockpit` shows it
    assert engine.url in stdout + terminal and "api.token" in stdout + terminal

    again = start_engine(data, "--log-format", "console", stdout=tmp_path / "stdout2.txt")
    assert stop_engine(again) == 0
    assert engine.token not in (tmp_path / "stdout2.txt").read_text()
    assert engine.token not in (data / "engine.log").read_text()


def test_the_log_file_is_rotated_past_its_size_keeping_the_newest(
    tmp_path: Path, restore_logging: object
) -> None:
    """``[log] max_mb`` and ``keep``: the file never grows past its size; ``engine.log.1`` is
    the newest earlier file, and no more than ``keep`` are kept (each 0600, as the log is)."""
    path = tmp_path / "engine.log"
    configure_logging("info", json=True, file=path, max_bytes=2000, keep=2)
    log = structlog.get_logger("rotation")
    for n in range(200):
        log.info("line", n=n)
    close_log_file()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["engine.log", "engine.log.1", "engine.log.2"]
    for name in names:
        assert (tmp_path / name).stat().st_size <= 2000
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    newest = [json.loads(line)["n"] for line in path.read_text().splitlines()]
    earlier = [
        json.loads(line)["n"] for line in (tmp_path / "engine.log.1").read_text().splitlines()
    ]
    assert newest[-1] == 199
    assert earlier[-1] + 1 == newest[0]
