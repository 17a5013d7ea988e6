"""A live engine as a real process for tests: ``python -m engine run`` on a data directory, its
API on a free port (read from ``DATA/api.url``), stopped with SIGINT as a person would."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.__main__ import build_parser
from engine.cli.commands import main as cli_main

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class EngineProcess:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    url: str
    token: str


def start_engine(
    data_dir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    stdout: Path | None = None,
    stderr: Path | None = None,
) -> EngineProcess:
    """Start and wait until the API listens; ``stdout`` and ``stderr`` go to files if given."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url_file = data_dir / "api.url"
    url_file.unlink(missing_ok=True)  # a kill -9 leaves the last one behind
    out = stdout.open("wb") if stdout is not None else subprocess.DEVNULL
    err = stderr.open("wb") if stderr is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "--data-dir", str(data_dir), "--port", "0",
         "--seed", "3", "--log-format", "json", "--demo-interval", "0.5", *extra],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        env=env,
    )  # fmt: skip
    for file in (out, err):
        if not isinstance(file, int):
            file.close()
    deadline = time.monotonic() + 30
    while not url_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the engine did not start (exit {proc.poll()})")
        time.sleep(0.05)
    url = url_file.read_text().strip()
    token = (data_dir / "api.token").read_text().strip()
    return EngineProcess(proc, data_dir, url, token)


def stop_engine(engine: EngineProcess) -> int:
    engine.proc.send_signal(signal.SIGINT)
    try:
        return engine.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        engine.proc.kill()
        return engine.proc.wait()


def run_for_a_second(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``engine run`` on ``data`` for one second (any port, JSON logs), to its exit: its status
    and what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "engine", "run", "--data-dir", str(data), "--port", "0",
         "--log-format", "json", "--duration", "1", *extra],
        check=False,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def run_cli(engine: EngineProcess, *argv: str) -> tuple[int, str]:
    """A CLI command (``python -m engine ARGV``) against ``engine``, in this process: its exit
    status and what it printed."""
    args = build_parser().parse_args([*argv, "--data-dir", str(engine.data_dir)])
    out = io.StringIO()
    code = cli_main(args, out=out)
    return code, out.getvalue()
