"""Under load: how fast the API answers, and how fast a SIGTERM stops the engine.

A real engine process (``python -m engine run``) on the paper broker with a leader copied to 34
followers on two logins, the simulated market on, and the leader trading as configured:

- ``reads``: the leader trades as fast as the engine takes it (a trade every millisecond: more
  than the engine copies, so the actors' mailboxes are never empty), and ``GET /api/accounts``
  is called back to back for a while; the latency of each call, p50/p99/max.
- ``stop``: the leader trades every 0.2-0.4 s (a busy trader); after a while the engine gets
  SIGTERM, and the time to its exit is measured, with the orders its log shows written after
  "stopping" and those the broker received of them (the paper broker's state file).

Writes ``"load"`` into ``bench/results.json`` and the table in ``bench/README.md``.

    .venv/bin/python -m bench.load [--followers 34] [--read-seconds 10] [--stops 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.results import update_results

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0
SYMBOLS_EACH = 17  # followers per login


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def write_config(directory: Path, followers: int, interval: tuple[float, float]) -> Path:
    logins = (followers + SYMBOLS_EACH - 1) // SYMBOLS_EACH
    lines = [
        "[demo]",
        'leader = "LEAD"',
        f"leader_interval_seconds = [{interval[0]}, {interval[1]}]",
        "seed = 7",
        "",
        "[[connections]]",
        'id = "lead"',
    ]
    for n in range(logins):
        lines += ["[[connections]]", f'id = "prop{n}"']
    lines += ["[[accounts]]", 'id = "LEAD"', 'connection = "lead"', 'balance = "1000000"']
    for n in range(followers):
        lines += [
            "[[accounts]]",
            f'id = "F{n}"',
            f'connection = "prop{n // SYMBOLS_EACH}"',
            'balance = "1000000"',
        ]
    members = ", ".join(f'{{ account = "F{n}", ratio = "1" }}' for n in range(followers))
    lines += ["[[groups]]", 'id = "g"', 'leader = "LEAD"', f"followers = [{members}]", ""]
    path = directory / "engine.toml"
    path.write_text("\n".join(lines))
    return path


class Engine:
    """One engine process, its JSON-lines log in a file."""

    def __init__(self, directory: Path, config: Path, *extra: str) -> None:
        self.data = directory / "data"
        self.log = directory / "engine.err"
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine", "run", "--config", str(config),
                 "--data-dir", str(self.data), "--port", "0", "--log-format", "json", *extra],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        url_file = self.data / "api.url"
        while not url_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"the engine did not start:\n{self.log.read_text()}")
            time.sleep(0.05)
        self.url = url_file.read_text().strip()
        self.token = (self.data / "api.token").read_text().strip()

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def measure_reads(followers: int, seconds: float, tmp: Path) -> dict[str, Any]:
    directory = tmp / "reads"
    directory.mkdir()
    engine = Engine(directory, write_config(directory, followers, (0.001, 0.001)))
    samples: list[float] = []
    depth = 0.0
    try:
        auth = {"Authorization": f"Bearer {engine.token}"}
        with httpx.Client(base_url=engine.url, headers=auth, timeout=120) as http:
            time.sleep(2)  # the backlog builds up
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                start = time.perf_counter()
                response = http.get("/api/accounts")
                samples.append((time.perf_counter() - start) * 1e3)
                response.raise_for_status()
                assert len(response.json()) == followers + 1
            for line in http.get("/metrics").text.splitlines():
                if line.startswith("mimik_mailbox_depth{"):
                    depth = max(depth, float(line.rsplit(" ", 1)[1]))
    finally:
        engine.proc.send_signal(signal.SIGTERM)
        try:
            engine.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            engine.kill()
    fills = sum(1 for r in engine.records() if r.get("event") == "leader fill")
    return {
        "followers": followers,
        "seconds": seconds,
        "reads": len(samples),
        "leader_fills": fills,
        "mailbox_depth_at_end": int(depth),
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(_percentile(samples, 0.99), 2),
        "max_ms": round(max(samples), 2),
    }


def measure_stop(followers: int, trading: float, tmp: Path, run: int) -> dict[str, Any]:
    directory = tmp / f"stop{run}"
    directory.mkdir()
    broker_state = directory / "paper.json"
    engine = Engine(
        directory,
        write_config(directory, followers, (0.2, 0.4)),
        "--paper-state",
        str(broker_state),
    )
    try:
        time.sleep(trading)
        sent = time.monotonic()
        engine.proc.send_signal(signal.SIGTERM)
        code = engine.proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        engine.kill()
    records = engine.records()
    names = [r.get("event") for r in records]
    stopping = names.index("stopping")
    after = {
        r["client_order_id"]
        for r in records[stopping:]
        if r.get("event") in ("follower order", "engine order")
    }
    accepted = set(json.loads(broker_state.read_text()).get("client_order_ids", []))
    return {
        "exit_code": code,
        "seconds": round(took, 2),
        "orders_written_after_stopping": len(after),
        "of_them_at_the_broker": len(after & accepted),
        "leader_fills": names.count("leader fill"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--followers", type=int, default=34)
    parser.add_argument("--read-seconds", type=float, default=10.0)
    parser.add_argument("--stops", type=int, default=3)
    parser.add_argument("--trading-seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as name:
        tmp = Path(name)
        reads = measure_reads(args.followers, args.read_seconds, tmp)
        print(
            f"GET /api/accounts under load ({reads['reads']} reads, {reads['leader_fills']} "
            f"leader fills, mailbox depth {reads['mailbox_depth_at_end']}): "
            f"p50 {reads['p50_ms']} ms, p99 {reads['p99_ms']} ms, max {reads['max_ms']} ms"
        )
        stops = []
        for run in range(args.stops):
            stop = measure_stop(args.followers, args.trading_seconds, tmp, run)
            stops.append(stop)
            print(
                f"SIGTERM -> exit {stop['exit_code']} in {stop['seconds']} s; orders written "
                f"after stopping {stop['orders_written_after_stopping']}, of them at the broker "
                f"{stop['of_them_at_the_broker']}"
            )
    update_results("load", {"reads": reads, "stops": stops})


if __name__ == "__main__":
    main()
