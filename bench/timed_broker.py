"""A broker wrapper that timestamps every order as the paper broker accepts it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from brokers.base import Broker, BrokerSession, EventSink, ModifyRequest, OrderRequest
from brokers.clock import Clock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.app.collector import tune_collector
from engine.core.engine import Engine, EngineSettings
from engine.storage.store import Store

OnPlaced = Callable[[OrderRequest, int], None]


class TimedSession(BrokerSession):
    def __init__(self, inner: BrokerSession, on_placed: OnPlaced) -> None:
        self.inner, self.on_placed = inner, on_placed

    def place_order(self, order: OrderRequest) -> None:
        self.inner.place_order(order)  # returns once the broker has accepted it
        self.on_placed(order, time.perf_counter_ns())

    def modify_order(self, request: ModifyRequest) -> None:
        self.inner.modify_order(request)

    def cancel_working(
        self, account: str, symbol: str | None, broker_order_ids: tuple[str, ...] = ()
    ) -> None:
        self.inner.cancel_working(account, symbol, broker_order_ids)

    def request_snapshot(self, request_id: str) -> None:
        self.inner.request_snapshot(request_id)

    def close(self) -> None:
        self.inner.close()

    def open(self) -> None:
        self.inner.open()


class TimedBroker(Broker):
    def __init__(self, inner: PaperBroker, on_placed: OnPlaced) -> None:
        self.inner, self.on_placed = inner, on_placed

    def session(self, connection: str, accounts: tuple[str, ...], sink: EventSink) -> BrokerSession:
        return TimedSession(self.inner.session(connection, accounts, sink), self.on_placed)


class Countdown:
    """Signals when the n-th matching order has been accepted; keeps the last time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.expected = 0
        self.count = 0
        self.done = threading.Event()
        self.last_ns = 0

    def arm(self, expected: int) -> None:
        with self.lock:
            self.expected, self.count = expected, 0
            self.done.clear()

    def hit(self, at_ns: int) -> None:
        with self.lock:
            self.count += 1
            if self.count == self.expected:
                self.last_ns = at_ns
                self.done.set()


def live_engine(store: Store, clock: Clock, broker: Broker, contracts: ContractTable) -> Engine:
    """An engine as ``make run`` builds it (threads runtime, the collector's policy of an
    engine process) on the given broker."""
    tune_collector()
    return Engine(
        store=store,
        clock=clock,
        brokers={"paper": broker},
        contracts=contracts,
        settings=EngineSettings(runtime="threads"),
    )
