"""Tick → risk evaluation → liquidation, with 1,000 accounts holding ES.

Every account holds one ES contract bought at 5000 and has a daily loss limit one tick wider
than the previous account's, so as a stream of ticks drifts down the accounts breach one after
another. Every account also runs the prop-firm rules (S9) a funded account has: a commission on
each fill, max contracts, and an intraday trailing threshold that moves with every new high
(wide enough that the daily loss limit breaches first); ``--plain`` runs without them, for the
comparison. For each tick rate the stream runs for a few seconds on the live (threads) runtime and
the bench reports whether the engine kept up (idle within 100 ms of the last tick), the time from
the first tick at or below an account's breach price to its liquidation being accepted by the
paper broker (p50, p99), and the process's peak memory. Writes ``"risk"`` into
``bench/results.json`` and the table in ``bench/README.md``.

    .venv/bin/python -m bench.risk [--accounts 1000] [--rates 250 500 1000 2000] [--seconds 3]
        [--plain]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.results import update_results
from bench.timed_broker import TimedBroker, live_engine
from brokers.base import OrderRequest, OrderType
from brokers.clock import WallClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.app.logs import configure_logging
from engine.core.topology import AccountConfig, ConnectionConfig
from engine.storage.store import Store

SYMBOL = "ESZ6"
START = Decimal(5000)
TICK = Decimal("0.25")
TICK_VALUE = Decimal("12.5")  # one ES tick on one contract
PER_LOGIN = 20
# S9 on every account: what a funded account's profile sets.
PROP_RULES = {
    "commission": Decimal("2.10"),
    "max_contracts": Decimal(5),
    "max_loss": Decimal(40000),
    "max_loss_mode": "intraday_trailing",
    "max_loss_stop": Decimal(0),
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_rate(
    accounts: int, rate: int, seconds: float, tmp: Path, *, rules: bool = True
) -> dict[str, Any]:
    clock = WallClock()
    contracts = ContractTable()
    paper = PaperBroker(clock, contracts)
    liquidated: dict[str, int] = {}
    lock = threading.Lock()

    def placed(order: OrderRequest, at_ns: int) -> None:
        if order.order_type is OrderType.LIQUIDATE:
            with lock:
                liquidated.setdefault(order.account, at_ns)

    store = Store(tmp / f"risk-{rate}.sqlite")
    engine = live_engine(store, clock, TimedBroker(paper, placed), contracts)
    logins = (accounts + PER_LOGIN - 1) // PER_LOGIN
    connections = [ConnectionConfig(f"login{i}") for i in range(logins)]
    configs = [
        AccountConfig(
            f"A{i}",
            f"login{i // PER_LOGIN}",
            limits={
                "daily_loss_limit": TICK_VALUE * (i + 1),
                **(PROP_RULES if rules else {}),
            },
        )
        for i in range(accounts)
    ]
    engine.seed(connections, configs, [])
    for c in connections:
        paper.add_accounts(c.id, tuple(a.id for a in configs if a.connection == c.id))
    engine.start()
    paper.set_price(SYMBOL, START)
    for config in configs:
        paper.trade(config.id, SYMBOL, 1)
    engine.runtime.wait_idle(120)

    # A walk that drifts down past every account's breach price, with noise of ±2 ticks.
    total = int(rate * seconds)
    rng = random.Random(rate)
    drop = accounts + 20
    path = [START - TICK * (k * drop // total) + TICK * rng.randint(-2, 2) for k in range(total)]
    first_at: dict[int, int] = {}  # breach depth in ticks -> first tick time
    deepest = 0
    interval = 1e9 / rate
    began = time.perf_counter_ns()
    for k, price in enumerate(path):
        due = began + int(k * interval)
        now = time.perf_counter_ns()
        if now < due:  # sleep, never spin: a spinning feeder would hold the GIL
            time.sleep((due - now) / 1e9)
        depth = int((START - price) / TICK)
        stamp = time.perf_counter_ns()
        while deepest < depth:
            deepest += 1
            first_at[deepest] = stamp
        paper.set_price(SYMBOL, price)
    sent_ns = time.perf_counter_ns() - began
    idle_from = time.perf_counter_ns()
    engine.runtime.wait_idle(120)
    drain_ms = (time.perf_counter_ns() - idle_from) / 1e6
    latencies = [
        (liquidated[f"A{i}"] - first_at[i + 1]) / 1e6
        for i in range(accounts)
        if f"A{i}" in liquidated and (i + 1) in first_at
    ]
    engine.stop()
    store.close()
    achieved = total / (sent_ns / 1e9)
    return {
        "rate": rate,
        "achieved_ticks_per_s": round(achieved),
        "drain_ms": round(drain_ms, 1),
        "kept_up": drain_ms <= 100 and achieved >= 0.95 * rate,
        "breaches": len(latencies),
        "breach_p50_ms": round(statistics.median(latencies), 3) if latencies else None,
        "breach_p99_ms": round(_percentile(latencies, 0.99), 3) if latencies else None,
        # The goal: the tail within 3 times the median, whatever the machine's speed.
        "ratio_p99_p50": (
            round(_percentile(latencies, 0.99) / statistics.median(latencies), 1)
            if latencies
            else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--rates", type=int, nargs="*", default=[250, 500, 1000, 2000, 4000])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--plain", action="store_true", help="without the S9 rules")
    args = parser.parse_args()
    configure_logging(level="error")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-risk-") as tmp:
        for rate in args.rates:
            row = run_rate(args.accounts, rate, args.seconds, Path(tmp), rules=not args.plain)
            rows.append(row)
            print(
                f"{rate:5d} ticks/s target: {row['achieved_ticks_per_s']:5d} sent, drained in "
                f"{row['drain_ms']:7.1f} ms, kept up {row['kept_up']!s:5}, {row['breaches']} "
                f"breaches, p50 {row['breach_p50_ms']} ms, p99 {row['breach_p99_ms']} ms"
            )
    sustained = max((r["achieved_ticks_per_s"] for r in rows if r["kept_up"]), default=0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.plain:  # a comparison only: the results keep the run with the rules
        print(f"plain: sustained {sustained} ticks/s with {args.accounts} accounts")
        return
    update_results(
        "risk",
        {
            "accounts": args.accounts,
            "prop_rules": {} if args.plain else {k: str(v) for k, v in PROP_RULES.items()},
            "sustained_ticks_per_s": sustained,
            "peak_memory_mb": round(peak_mb, 1),
            "rates": rows,
        },
    )
    print(f"sustained {sustained} ticks/s with {args.accounts} accounts; peak {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
