"""Engine restart with 1,000 accounts: from a cold start on an existing store to trading again.

50 logins of 20 accounts; 50 copy groups (a leader and 19 followers each), every account
holding ES and carrying risk limits. The engine is stopped abruptly, then a new one is built
from the store: actors rebuilt from durable state, every connection reconciled with the broker,
missed resets applied. "Trading again" is the first leader fill after the restart copied to all
its followers. Writes ``"recovery"`` into ``bench/results.json``.

    .venv/bin/python -m bench.recovery [--accounts 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
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
from engine.core.engine import Engine
from engine.core.topology import AccountConfig, ConnectionConfig, GroupConfig
from engine.domain.copying import Membership
from engine.storage.store import Store

SYMBOL = "ESZ6"
PER_LOGIN = 20


def build(store: Store, broker: TimedBroker, clock: WallClock, contracts: ContractTable) -> Engine:
    return live_engine(store, clock, broker, contracts)


def run(accounts: int, tmp: Path) -> dict[str, Any]:
    clock, contracts = WallClock(), ContractTable()
    paper = PaperBroker(clock, contracts)
    counter = Countdown()
    watching: set[str] = set()

    def placed(order: OrderRequest, at_ns: int) -> None:
        if order.account in watching:
            counter.hit(at_ns)

    broker = TimedBroker(paper, placed)
    path = tmp / "engine.sqlite"
    store = Store(path)
    engine = build(store, broker, clock, contracts)
    logins = accounts // PER_LOGIN
    connections = [ConnectionConfig(f"login{i}") for i in range(logins)]
    configs = [
        AccountConfig(
            f"A{i}",
            f"login{i // PER_LOGIN}",
            limits={"daily_loss_limit": Decimal(5000), "trailing_drawdown": Decimal(3000)},
        )
        for i in range(accounts)
    ]
    groups = [
        GroupConfig(
            f"g{n}",
            f"A{n * PER_LOGIN}",
            [Membership(f"A{n * PER_LOGIN + k}", Decimal(1)) for k in range(1, PER_LOGIN)],
        )
        for n in range(logins)
    ]
    engine.seed(connections, configs, groups)
    for c in connections:
        paper.add_accounts(c.id, tuple(a.id for a in configs if a.connection == c.id))
    engine.start()
    paper.set_price(SYMBOL, Decimal(5000))
    for group in groups:
        paper.trade(group.leader, SYMBOL, 1)  # every follower copies it
    engine.runtime.wait_idle(120)
    engine.stop()
    store.close()

    started = time.perf_counter()
    store = Store(path)
    engine = build(store, broker, clock, contracts)
    built = time.perf_counter()
    engine.start(reconcile=True)
    engine.runtime.wait_idle(120)
    reconciled = time.perf_counter()
    followers = [m.account for m in groups[0].members]
    watching.update(followers)
    counter.arm(len(followers))
    paper.trade(groups[0].leader, SYMBOL, 1)
    if not counter.done.wait(60):
        raise RuntimeError("the first fill after the restart was not copied")
    trading = time.perf_counter()
    positions_ok = all(
        (view := engine.account_view(a.id)) is not None and view.positions == {SYMBOL: 1}
        for a in configs
        if a.id not in (groups[0].leader, *followers)
    )
    engine.stop()
    store.close()
    return {
        "accounts": accounts,
        "logins": logins,
        "groups": len(groups),
        "open_store_and_build_s": round(built - started, 3),
        "start_and_reconcile_s": round(reconciled - built, 3),
        "first_fanout_s": round(trading - reconciled, 3),
        "restart_to_trading_s": round(trading - started, 3),
        "positions_restored": positions_ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1000)
    args = parser.parse_args()
    configure_logging(level="error")
    with tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp:
        row = run(args.accounts, Path(tmp))
    print(
        f"restart with {row['accounts']} accounts: trading again after "
        f"{row['restart_to_trading_s']} s (build {row['open_store_and_build_s']} s, start and "
        f"reconcile {row['start_and_reconcile_s']} s, first fan-out {row['first_fanout_s']} s)"
    )
    update_results("recovery", row)


if __name__ == "__main__":
    main()
