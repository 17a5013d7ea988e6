"""Fill fan-out latency: leader fill in → last follower order accepted by the paper broker.

Runs the live (threads) runtime with N followers spread over logins of ``--per-login`` accounts
each (a trader's prop accounts sit under a few logins), and beside it the same work done by a
plain loop with no actors (the floor). Writes ``bench/results.json`` ("fanout") and the table in
``bench/README.md``.

    .venv/bin/python bench/fanout.py [--fills 300] [--per-login 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.results import update_results
from bench.timed_broker import Countdown, TimedBroker, live_engine
from brokers.base import OrderRequest
from brokers.clock import WallClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.app.logs import configure_logging
from engine.core.topology import AccountConfig, ConnectionConfig, GroupConfig
from engine.domain.copy_rule import copy_quantity
from engine.domain.copying import Membership
from engine.domain.ledger import LedgerRow
from engine.domain.order_ids import OrderKind, client_order_id
from engine.storage.records import Records
from engine.storage.store import Store

SYMBOL = "ESZ6"
SIZES = (1, 10, 20, 100, 1000)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_engine(followers: int, fills: int, per_login: int, tmp: Path) -> list[float]:
    clock = WallClock()
    contracts = ContractTable()
    paper = PaperBroker(clock, contracts)
    counter = Countdown()

    def placed(order: OrderRequest, at_ns: int) -> None:
        if order.account != "LEAD":
            counter.hit(at_ns)

    store = Store(tmp / f"fanout-{followers}.sqlite")
    engine = live_engine(store, clock, TimedBroker(paper, placed), contracts)
    logins = (followers + per_login - 1) // per_login
    connections = [ConnectionConfig("lead")] + [ConnectionConfig(f"p{i}") for i in range(logins)]
    accounts = [AccountConfig("LEAD", "lead")] + [
        AccountConfig(f"F{i}", f"p{i // per_login}") for i in range(followers)
    ]
    group = GroupConfig("g", "LEAD", [Membership(f"F{i}", Decimal(1)) for i in range(followers)])
    engine.seed(connections, accounts, [group])
    for connection in connections:
        paper.add_accounts(
            connection.id, tuple(a.id for a in accounts if a.connection == connection.id)
        )
    engine.start()
    paper.set_price(SYMBOL, Decimal(5000))
    engine.wait_idle()
    samples: list[float] = []
    warmup = min(20, fills // 5)
    for n in range(fills + warmup):
        counter.arm(followers)
        side = 1 if n % 2 == 0 else -1
        start = time.perf_counter_ns()
        paper.trade("LEAD", SYMBOL, side)
        if not counter.done.wait(30):
            raise RuntimeError(f"only {counter.count} of {followers} follower orders arrived")
        if n >= warmup:
            samples.append((counter.last_ns - start) / 1e6)
        engine.wait_idle()
    engine.stop()
    store.close()
    return samples


def measure_floor(followers: int, fills: int, tmp: Path) -> list[float]:
    """The same work with no actors: the leader's trade at the paper broker (which the engine's
    figure includes too), then S2.2 per follower, one ledger transaction, place."""
    clock = WallClock()
    contracts = ContractTable()
    paper = PaperBroker(clock, contracts)
    store = Store(tmp / f"floor-{followers}.sqlite")
    records = Records(store, clock)
    paper.add_accounts("lead", ("LEAD",))
    sessions: list[Any] = []
    for i in range(followers):
        sessions.append(paper.session(f"p{i}", (f"F{i}",), lambda event: None))
    paper.set_price(SYMBOL, Decimal(5000))
    positions = [0] * followers
    leader = 0
    samples: list[float] = []
    place: Callable[[OrderRequest], None]
    for n in range(fills):
        side = 1 if n % 2 == 0 else -1
        start = time.perf_counter_ns()
        paper.trade("LEAD", SYMBOL, side)
        before, leader = leader, leader + side
        rows, requests = [], []
        for i in range(followers):
            qty = copy_quantity(before, leader, positions[i], Decimal(1), None)
            coid = client_order_id(OrderKind.COPY, f"LEAD:{n}", f"F{i}", SYMBOL, 1)
            rows.append(LedgerRow(coid, f"F{i}", f"p{i}", SYMBOL, qty, "market", "copy", str(n)))
            requests.append(OrderRequest(coid, f"F{i}", SYMBOL, qty))
            positions[i] += qty
        records.orders_sending(rows)
        for i, request in enumerate(requests):
            place = sessions[i].place_order
            place(request)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    store.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fills", type=int, default=300)
    parser.add_argument("--per-login", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args()
    configure_logging(level="error")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        for size in args.sizes:
            fills = args.fills if size <= 100 else max(50, args.fills // 5)
            engine = measure_engine(size, fills, args.per_login, Path(tmp))
            floor = measure_floor(size, fills, Path(tmp))
            row = {
                "followers": size,
                "logins": (size + args.per_login - 1) // args.per_login,
                "fills": fills,
                "p50_ms": round(statistics.median(engine), 3),
                "p99_ms": round(_percentile(engine, 0.99), 3),
                "floor_p50_ms": round(statistics.median(floor), 3),
                "floor_p99_ms": round(_percentile(floor, 0.99), 3),
            }
            # The goal is a ratio to the floor measured in the same run (the machine's mood
            # cancels out): engine p50 / floor p50 and engine p99 / floor p99.
            row["ratio_p50"] = round(row["p50_ms"] / row["floor_p50_ms"], 2)
            row["ratio_p99"] = round(row["p99_ms"] / row["floor_p99_ms"], 2)
            rows.append(row)
            print(
                f"{size:5d} followers on {row['logins']:3d} logins: p50 {row['p50_ms']:.3f} ms, "
                f"p99 {row['p99_ms']:.3f} ms (floor p50 {row['floor_p50_ms']:.3f} ms, p99 "
                f"{row['floor_p99_ms']:.3f} ms; ratio {row['ratio_p50']} / {row['ratio_p99']})"
            )
    update_results("fanout", rows)


if __name__ == "__main__":
    main()
