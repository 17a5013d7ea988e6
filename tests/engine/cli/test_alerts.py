"""``python -m engine alerts test`` (S10.4) against a JSON webhook on loopback: one test message
per target, one line per target (``json#1: ok`` or ``json#2: failed: why``, never a URL), exit
1 when one failed, and one clear line for targets that cannot be read."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.__main__ import build_parser
from engine.cli.alerts import main
from tests.engine.engine_process import ROOT
from tests.engine.live.alert_receiver import Receiver, receiving

SECRET = "hookT0kenNeverShown"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def _config(tmp_path: Path, urls: str | None, mode: int = 0o600) -> Path:
    config = tmp_path / "engine.toml"
    config.write_text('[alerts]\nurls_file = "alerts.urls"\n')
    if urls is not None:
        file = tmp_path / "alerts.urls"
        file.write_text(urls)
        file.chmod(mode)
    return config


def _run(config: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = main(build_parser().parse_args(["alerts", "test", "--config", str(config)]), out)
    return code, out.getvalue()


def test_each_target_gets_one_test_message_and_a_line(
    tmp_path: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = f"{receiver.url(f'hook/{SECRET}')}\n{receiver.url(f'other/{SECRET}')}\n"
    code, out = _run(_config(tmp_path, urls))
    assert (code, out) == (0, "json#1: ok\njson#2: ok\n")
    assert sorted(p.path for p in receiver.posts) == [f"/hook/{SECRET}", f"/other/{SECRET}"]
    assert {p.title for p in receiver.posts} == {"[info] test"}
    assert "this target gets its alerts" in receiver.posts[0].message
    assert capsys.readouterr().err == ""


def test_a_failing_target_is_a_line_with_its_reason_and_exit_1(
    tmp_path: Path, receiver: Receiver
) -> None:
    urls = f"{receiver.url(f'fail/{SECRET}')}\n{receiver.url('hook')}\n"
    code, out = _run(_config(tmp_path, urls))
    assert code == 1
    failed, ok = out.splitlines()
    assert failed.startswith("json#1: failed: ") and "500" in failed
    assert ok == "json#2: ok"
    assert SECRET not in out
    assert len(receiver.attempts) == 2  # once each: no retries here


def test_a_target_that_cannot_be_reached_fails_without_its_url(tmp_path: Path) -> None:
    code, out = _run(_config(tmp_path, f"json://127.0.0.1:9/{SECRET}\n"))
    assert code == 1
    assert out.startswith("json#1: failed: ")
    assert SECRET not in out


def test_a_file_others_can_read_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, f"json://127.0.0.1:9/{SECRET}\n", mode=0o640)
    assert _run(config) == (2, "")
    err = capsys.readouterr().err
    assert err.startswith(f"{config}: alerts.urls_file: ")
    assert "is open to others (mode 0640)" in err and "chmod 600" in err
    assert SECRET not in err


def test_a_missing_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, None)
    assert _run(config) == (2, "")
    assert capsys.readouterr().err == (
        f"{config}: alerts.urls_file: {tmp_path / 'alerts.urls'} does not exist\n"
    )


def test_no_alerts_table_says_how_to_set_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "engine.toml"
    config.write_text("")
    assert _run(config) == (2, "")
    assert "no alert targets: set [alerts] urls_file" in capsys.readouterr().err


def test_an_unset_variable_is_refused_as_a_command(tmp_path: Path) -> None:
    """The command as typed: one line on stderr, exit 2, no traceback."""
    config = tmp_path / "engine.toml"
    config.write_text('[alerts]\nurls_env = "MIMIK_TEST_ALERT_URLS"\n')
    env = {k: v for k, v in os.environ.items() if k != "MIMIK_TEST_ALERT_URLS"}
    done = subprocess.run(
        [sys.executable, "-m", "engine", "alerts", "test", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"{config}: alerts.urls_env: environment variable MIMIK_TEST_ALERT_URLS is not set (or"
        " empty); it holds the alert URLs, separated by spaces or newlines\n"
    )
