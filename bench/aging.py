"""The demo, aged: the engine with the demo's setup, leader and market on the virtual clock and
the deterministic runtime, for as many days as asked, in minutes instead of weeks.

The setup is the demo's (``engine/app/demo.py``): one leader and three followers on the paper
broker. The leader trades every 3 to 8 seconds of engine time, day and night, as the demo does;
the market moves once before each trade (the live demo quotes every 0.25 s: the journal here
holds fewer quotes). The engine maintains itself as the live process does (``Engine.maintain``
once a minute of engine time), journals everything into ``DATA/engine.journal/``, and applies
each 17:00 CT reset on time. Used by ``bench/recovery.py`` (an aged data directory to restart
from) and by the long-run test (``tests/engine/test_long_run.py``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.app import demo
from engine.core.engine import Engine, EngineSettings
from engine.storage.journal import Journal, JournalLimits
from engine.storage.store import Store

START = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)  # a Monday, 08:00 in Chicago
MAINTAIN_EVERY = timedelta(minutes=1)
JOURNAL_DIR = "engine.journal"
STORE_FILE = "engine.sqlite"


@dataclass
class AgingDemo:
    """One engine on a data directory, driven by the demo's leader and market."""

    data_dir: Path
    clock: VirtualClock
    broker: PaperBroker
    store: Store
    engine: Engine
    leader: demo.DemoLeader
    market: demo.Market
    interval: tuple[float, float] = demo.LEADER_INTERVAL  # seconds between the leader's trades
    trades: int = 0
    _maintained: datetime | None = None

    def run(self, until: datetime, on_trade: Callable[[AgingDemo], None] | None = None) -> None:
        """Trade and tick until the engine clock reaches ``until``."""
        clock, engine, broker = self.clock, self.engine, self.broker
        while True:
            at = clock.now() + timedelta(seconds=self.leader.delay(self.interval))
            if at > until:
                engine.advance_to(until)
                return
            engine.advance_to(at)
            for symbol, price in self.market.step().items():
                broker.set_price(symbol, price)
            positions = {s: _held(broker, s) for s in self.leader.symbols}
            trade = self.leader.decide(positions)
            broker.trade(demo.LEADER, trade.symbol, trade.qty, trade.fills)
            engine.wait_idle()
            self.trades += 1
            if self._maintained is None or clock.now() - self._maintained >= MAINTAIN_EVERY:
                self._maintained = clock.now()
                engine.maintain()
            if on_trade is not None:
                on_trade(self)

    def close(self) -> None:
        self.engine.stop()
        self.store.close()


def _held(broker: PaperBroker, symbol: str) -> int:
    info = broker.positions(demo.LEADER).get(symbol)
    return 0 if info is None else info.qty


def open_demo(
    data_dir: Path,
    *,
    seed: int = 1,
    start: datetime = START,
    settings: EngineSettings | None = None,
    journal: JournalLimits | None = None,
    clock: VirtualClock | None = None,
    broker: PaperBroker | None = None,
) -> AgingDemo:
    """The demo engine on ``data_dir``: seeded and started on a new store, restarted (every
    connection returning) on an existing one. ``clock`` and ``broker`` carry over from an
    earlier engine on the same data directory, as a real broker outlives the engine."""
    clock = clock or VirtualClock(start)
    contracts = ContractTable()
    broker = broker or PaperBroker(clock, contracts)
    store = Store(data_dir / STORE_FILE)
    engine = Engine(
        store=store,
        clock=clock,
        brokers={"paper": broker},
        contracts=contracts,
        settings=settings or EngineSettings(runtime="deterministic"),
        journal=Journal(data_dir / JOURNAL_DIR, clock, journal),
    )
    fresh = demo.seed_if_empty(engine)
    if fresh:
        for connection in engine.topology.connections.values():
            accounts = engine.topology.accounts_of(connection.id)
            broker.add_accounts(connection.id, tuple(accounts))
    market = demo.Market(random.Random(f"market:{seed}"), demo.DEMO_INSTRUMENTS)
    for symbol, price in market.quotes().items():
        broker.set_price(symbol, price)
    engine.start(reconcile=not fresh)
    engine.wait_idle()
    leader = demo.DemoLeader(random.Random(f"leader:{seed}"), market.symbols, weights=[3, 1])
    return AgingDemo(data_dir, clock, broker, store, engine, leader, market)
