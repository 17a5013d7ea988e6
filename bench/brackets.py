"""Bracket fan-out latency (S8): a leader's bracket reaching the engine → the last follower's
mirror of it accepted by the paper broker, beside the fill fan-out measured in the same run.

Runs the live (threads) runtime with N followers copying orders (S8.1), spread over logins of
``--per-login`` accounts each as in ``bench/fanout.py``. Each round the leader places a bracket
at the paper broker — a limit entry two ticks from the market with a stop-loss and a
take-profit — and the clock runs from the leader's ``OrderAccepted`` of the entry reaching the
engine (the leader's session hands it over) to the N-th follower bracket (entry and both legs,
one request, S8.2) accepted by the broker. The leader then cancels it, the followers' mirrors
are cancelled after it (S8.5), and once the engine is idle the next round starts. The fill
fan-out (``bench.fanout.measure_engine``) runs beside it for the same followers, so the ratio
of the two is taken on the same machine at the same time. Writes ``bench/results.json``
("brackets") and the table in ``bench/README.md``.

    .venv/bin/python -m bench.brackets [--rounds 300] [--per-login 20] [--sizes 20 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.fanout import measure_engine as measure_fills
from bench.results import update_results
from bench.timed_broker import Countdown, OnPlaced, TimedBroker, live_engine
from brokers.base import (
    BrokerEvent,
    BrokerSession,
    EventSink,
    OrderAccepted,
    OrderRequest,
    OrderType,
)
from brokers.clock import WallClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.app.logs import configure_logging
from engine.core.topology import AccountConfig, ConnectionConfig, GroupConfig
from engine.domain.copying import CopyMode, Membership
from engine.storage.store import Store

SYMBOL = "ESZ6"
SIZES = (20, 1000)
LAST = Decimal(5000)
TICK = Decimal("0.25")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class LeaderClock:
    """The time the leader's first ``OrderAccepted`` of a round reached the engine."""

    def __init__(self) -> None:
        self.armed = False
        self.start_ns = 0

    def arm(self) -> None:
        self.armed, self.start_ns = True, 0

    def sink(self, inner: EventSink) -> EventSink:
        def deliver(event: BrokerEvent) -> None:
            if self.armed and isinstance(event, OrderAccepted) and event.account == "LEAD":
                self.armed, self.start_ns = False, time.perf_counter_ns()
            inner(event)

        return deliver


class BracketTimedBroker(TimedBroker):
    """:class:`TimedBroker` whose leader session also times the leader's acceptances."""

    def __init__(self, inner: PaperBroker, on_placed: OnPlaced, leader: LeaderClock) -> None:
        super().__init__(inner, on_placed)
        self.leader = leader

    def session(self, connection: str, accounts: tuple[str, ...], sink: EventSink) -> BrokerSession:
        if connection == "lead":
            sink = self.leader.sink(sink)
        return super().session(connection, accounts, sink)


def measure_brackets(followers: int, rounds: int, per_login: int, tmp: Path) -> list[float]:
    clock = WallClock()
    contracts = ContractTable()
    paper = PaperBroker(clock, contracts)
    counter = Countdown()
    leader = LeaderClock()

    def placed(order: OrderRequest, at_ns: int) -> None:
        if order.account != "LEAD" and order.bracket:
            counter.hit(at_ns)

    store = Store(tmp / f"brackets-{followers}.sqlite")
    engine = live_engine(store, clock, BracketTimedBroker(paper, placed, leader), contracts)
    logins = (followers + per_login - 1) // per_login
    connections = [ConnectionConfig("lead")] + [ConnectionConfig(f"p{i}") for i in range(logins)]
    accounts = [AccountConfig("LEAD", "lead")] + [
        AccountConfig(f"F{i}", f"p{i // per_login}") for i in range(followers)
    ]
    members = [Membership(f"F{i}", Decimal(1), copy=CopyMode.ORDERS) for i in range(followers)]
    engine.seed(connections, accounts, [GroupConfig("g", "LEAD", members)])
    for connection in connections:
        paper.add_accounts(
            connection.id, tuple(a.id for a in accounts if a.connection == connection.id)
        )
    engine.start()
    paper.set_price(SYMBOL, LAST)
    engine.wait_idle()
    samples: list[float] = []
    warmup = min(20, rounds // 5)
    for n in range(rounds + warmup):
        side = 1 if n % 2 == 0 else -1
        entry = LAST - side * 2 * TICK  # a buy below the market, a sell above it: it rests
        counter.arm(followers)
        leader.arm()
        placed_order = paper.place_working(
            "LEAD",
            SYMBOL,
            side,
            OrderType.LIMIT,
            price=entry,
            bracket_stop=entry - side * 8 * TICK,
            bracket_target=entry + side * 12 * TICK,
        )
        if not counter.done.wait(60):
            raise RuntimeError(f"only {counter.count} of {followers} follower brackets arrived")
        if n >= warmup:
            samples.append((counter.last_ns - leader.start_ns) / 1e6)
        assert placed_order.entry is not None
        paper.cancel("LEAD", placed_order.entry)  # the mirrors are cancelled after it (S8.5)
        engine.wait_idle()
        left = [a for a in range(followers) if paper.working_orders(f"F{a}")]
        if left:
            raise RuntimeError(f"{len(left)} followers still have mirrors after the cancel")
    engine.stop()
    store.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--per-login", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args()
    configure_logging(level="error")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-brackets-") as tmp:
        for size in args.sizes:
            rounds = args.rounds if size <= 100 else max(50, args.rounds // 5)
            brackets = measure_brackets(size, rounds, args.per_login, Path(tmp))
            fills = measure_fills(size, rounds, args.per_login, Path(tmp))
            row = {
                "followers": size,
                "logins": (size + args.per_login - 1) // args.per_login,
                "rounds": rounds,
                "p50_ms": round(statistics.median(brackets), 3),
                "p99_ms": round(_percentile(brackets, 0.99), 3),
                "fill_p50_ms": round(statistics.median(fills), 3),
                "fill_p99_ms": round(_percentile(fills, 0.99), 3),
            }
            row["ratio_p50"] = round(row["p50_ms"] / row["fill_p50_ms"], 2)
            row["ratio_p99"] = round(row["p99_ms"] / row["fill_p99_ms"], 2)
            rows.append(row)
            print(
                f"{size:5d} followers on {row['logins']:3d} logins: bracket p50 "
                f"{row['p50_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms; fill p50 "
                f"{row['fill_p50_ms']:.3f} ms, p99 {row['fill_p99_ms']:.3f} ms"
            )
    update_results("brackets", rows)


if __name__ == "__main__":
    main()
