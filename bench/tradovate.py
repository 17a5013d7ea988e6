"""Fan-out through the Tradovate adapter: a leader fill pushed on the local server's socket →
all 20 followers' ``placeorder`` requests received by the server.

As in production, the broker is another process: the local Tradovate server runs in a child
process (``--serve``, driven over its stdin/stdout), the engine (threads runtime, wall clock) and
the adapter in this one, talking HTTP and WebSocket over 127.0.0.1. Both ends of the measure are
taken in the server: when it pushes the leader's fill, and when the 20th follower order arrives.
The connections are authorized through the server's OAuth pages and token endpoint. The
per-login rate budget is relaxed for the bench (a run sends thousands of orders in a minute, far
past Tradovate's hourly allowance); the cap on requests in flight per login is measured at its
default (25, the whole fan-out) and at 8. Writes ``bench/results.json`` ("tradovate") and the
table in ``bench/README.md``.

    .venv/bin/python -m bench.tradovate [--fills 200] [--followers 20]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import trio

from bench.results import update_results
from brokers.clock import WallClock
from brokers.instruments import ContractTable
from brokers.tradovate import TradovateBroker, TradovateSettings
from brokers.tradovate.sim import RunningSim, SimRequest, serve_sim
from engine.app.logs import configure_logging
from engine.core.engine import Engine, EngineSettings
from engine.core.topology import AccountConfig, ConnectionConfig, GroupConfig
from engine.domain.copying import Membership
from engine.storage.store import Store

SYMBOL = "ESZ6"
SECRET_ENV = "BENCH_TRADOVATE_CLIENT_SECRET"  # handed to the child, never on its command line
REDIRECT = "http://127.0.0.1/callback"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- the child: the local Tradovate server, driven by lines on stdin ---------------------------


class Countdown:
    """Prints ``done <ns>`` when the n-th follower order has arrived."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.expected = 0
        self.count = 0

    def arm(self, expected: int) -> None:
        self.expected, self.count = expected, 0

    def hit(self, request: SimRequest) -> None:
        body = request.body
        if request.path != "order/placeorder" or not isinstance(body, dict):
            return
        if "p-ticket" in body:
            return
        self.count += 1
        if self.count == self.expected:
            print(f"done {request.at_ns}", file=self.out, flush=True)


def serve(followers: int) -> None:
    out = sys.stdout
    counter = Countdown(out)

    async def main() -> None:
        users = {"lead": ["LEAD"], "prop": [f"F{i}" for i in range(followers)]}
        async with serve_sim(WallClock(), users=users, client_secret=os.environ[SECRET_ENV]) as sim:
            sim.server.request_hook = counter.hit
            sim.set_price(SYMBOL, Decimal(5000))
            print(f"ready {sim.base_url} {sim.client_id}", file=out, flush=True)
            token = trio.lowlevel.current_trio_token()
            done = trio.Event()
            commands = threading.Thread(
                target=_commands, args=(sim, counter, token, done), daemon=True
            )
            commands.start()
            await done.wait()

    trio.run(main)


def _commands(
    sim: RunningSim, counter: Countdown, token: trio.lowlevel.TrioToken, done: trio.Event
) -> None:
    for line in sys.stdin:
        word, _, arg = line.strip().partition(" ")
        if word == "arm":
            trio.from_thread.run_sync(counter.arm, int(arg), trio_token=token)
        elif word == "trade":

            def trade(side: int = int(arg)) -> int:
                start = time.perf_counter_ns()
                sim.trade("LEAD", SYMBOL, side)  # the fill goes out on the leader's socket
                return start

            start = trio.from_thread.run_sync(trade, trio_token=token)
            print(f"pushed {start}", file=sys.stdout, flush=True)
        else:
            break
    trio.from_thread.run_sync(done.set, trio_token=token)


# --- the parent: the engine and the adapter -------------------------------------------------------


class Server:
    def __init__(self, followers: int, secret: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.tradovate", "--serve", "--followers", str(followers)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, SECRET_ENV: secret},
        )
        word, base_url, client_id = self.read().split(" ")
        assert word == "ready"
        self.base_url, self.client_id = base_url, client_id

    def read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the local Tradovate server stopped")
        return line.strip()

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def fan_out(self, expected: int, side: int) -> float:
        self.send(f"arm {expected}")
        self.send(f"trade {side}")
        pushed = int(self.read().split(" ")[1])
        done = int(self.read().split(" ")[1])
        return (done - pushed) / 1e6

    def close(self) -> None:
        self.send("quit")
        self.process.wait(10)


async def _authorize(broker: TradovateBroker, base_url: str, client_id: str, user: str) -> None:
    """The OAuth round trip a user's browser makes, against the local server."""
    state = secrets.token_urlsafe(16)
    url = broker.authorize_url(user, state, REDIRECT)
    async with httpx.AsyncClient() as browser:
        await browser.get(url)
        approved = await browser.post(
            f"{base_url}/oauth/approve",
            data={"user": user, "client_id": client_id, "redirect_uri": REDIRECT, "state": state},
        )
    back = parse_qs(urlsplit(approved.headers["location"]).query)
    assert back["state"] == [state]
    await broker.exchange_code(user, back["code"][0], REDIRECT)


def measure(followers: int, fills: int, concurrent: int, tmp: Path) -> list[float]:
    secret = secrets.token_urlsafe(24)
    server = Server(followers, secret)
    ws = "ws" + server.base_url.removeprefix("http")
    settings = TradovateSettings(
        rest_url=f"{server.base_url}/v1",
        ws_url=f"{ws}/v1/websocket",
        md_url=f"{ws}/md/v1/websocket",
        auth_url=f"{server.base_url}/oauth",
        client_id=server.client_id,
        client_secret=secret,  # type: ignore[arg-type]  # pydantic wraps it in SecretStr
        token_dir=tmp / f"tokens-{concurrent}",
        budget_burst=10_000,
        budget_per_s=10_000.0,
        max_concurrent=concurrent,
    )
    clock = WallClock()
    broker = TradovateBroker(settings, clock)
    names = [f"F{i}" for i in range(followers)]
    store = Store(tmp / f"tradovate-{concurrent}.sqlite")
    engine = Engine(
        store=store,
        clock=clock,
        brokers={"tradovate": broker},
        contracts=ContractTable(),
        settings=EngineSettings(runtime="threads"),
    )
    engine.seed(
        [ConnectionConfig("lead", "tradovate"), ConnectionConfig("prop", "tradovate")],
        [AccountConfig("LEAD", "lead"), *(AccountConfig(n, "prop") for n in names)],
        [GroupConfig("g", "LEAD", [Membership(n, Decimal(1)) for n in names])],
    )
    samples: list[float] = []

    async def run() -> None:
        async with broker.running():
            for user in ("lead", "prop"):
                await _authorize(broker, server.base_url, server.client_id, user)
            await trio.to_thread.run_sync(engine.start)
            await settle()
            warmup = min(20, fills // 5)
            for n in range(fills + warmup):
                side = 1 if n % 2 == 0 else -1
                elapsed = await trio.to_thread.run_sync(server.fan_out, followers, side)
                if n >= warmup:
                    samples.append(elapsed)
                await settle()

    async def settle() -> None:
        for _ in range(2):
            await trio.to_thread.run_sync(engine.wait_idle)
            await broker.settled()

    try:
        trio.run(run)
    finally:
        engine.stop()
        store.close()
        server.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fills", type=int, default=200)
    parser.add_argument("--followers", type=int, default=20)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure_logging(level="error")
    if args.serve:
        serve(args.followers)
        return
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-tradovate-") as tmp:
        for concurrent in (25, 8):
            samples = measure(args.followers, args.fills, concurrent, Path(tmp))
            row = {
                "followers": args.followers,
                "logins": 1,
                "max_concurrent": concurrent,
                "fills": args.fills,
                "p50_ms": round(statistics.median(samples), 3),
                "p99_ms": round(_percentile(samples, 0.99), 3),
            }
            rows.append(row)
            print(
                f"{args.followers} followers, {concurrent} requests at once: "
                f"p50 {row['p50_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms"
            )
    update_results("tradovate", rows)


if __name__ == "__main__":
    main()
