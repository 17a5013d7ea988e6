"""``python -m engine cockpit`` and the Cockpit's address when the engine's output is not a
terminal (``make run > run.log 2>&1 &``): the log gives the address without the token and says
where the token is; the command prints the whole address, and it opens the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.engine.engine_process import ROOT, start_engine, stop_engine


def cockpit(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "cockpit", "--data-dir", str(data_dir)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_backgrounded_engine_logs_its_address_and_cockpit_prints_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out, err = tmp_path / "run.out", tmp_path / "run.log"
    engine = start_engine(data, stdout=out, stderr=err)
    try:
        answer = cockpit(data)
        assert answer.returncode == 0, answer.stderr
        assert answer.stdout == f"{engine.url}/#token={engine.token}\n"
        address = answer.stdout.strip()
        url, _, token = address.partition("/#token=")
        status = httpx.get(f"{url}/api/status", headers={"Authorization": f"Bearer {token}"})
        assert status.status_code == 200
        assert httpx.get(f"{url}/").status_code == 200  # the page the address opens
    finally:
        assert stop_engine(engine) == 0
    lines = [json.loads(line) for line in err.read_text().splitlines() if line.startswith("{")]
    announced = [line for line in lines if line["event"] == "Cockpit"]
    assert len(announced) == 1
    assert announced[0]["address"] == f"{engine.url}/"
    assert f"the API token is in {data / 'api.token'}" in announced[0]["sign_in"]
    assert "python -m engine cockpit --data-dir" in announced[0]["sign_in"]
    written = out.read_text() + err.read_text() + (data / "engine.log").read_text()
    assert engine.token not in written


def test_no_engine_running_is_one_line(tmp_path: Path) -> None:
    answer = cockpit(tmp_path / "nowhere")
    assert answer.returncode == 2
    assert answer.stdout == ""
    assert answer.stderr.splitlines() == [
        f"no engine is running on {tmp_path / 'nowhere'}/ (no {tmp_path / 'nowhere' / 'api.url'}):"
        f" start one with python -m engine run --data-dir {tmp_path / 'nowhere'}"
    ]


def test_an_address_left_behind_or_a_refused_token_is_said(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = start_engine(data)
    try:
        token_file = data / "api.token"
        token_file.write_text("x" * 43 + "\n")
        os.chmod(token_file, 0o600)
        answer = cockpit(data)
        assert answer.returncode == 1
        assert "token not accepted" in answer.stderr
        assert str(token_file) in answer.stderr
        token_file.write_text(engine.token + "\n")
    finally:
        assert stop_engine(engine) == 0
    (data / "api.url").write_text(engine.url + "\n")  # as a kill -9 leaves it
    answer = cockpit(data)
    assert answer.returncode == 2
    assert f"no engine answers at {engine.url}" in answer.stderr
