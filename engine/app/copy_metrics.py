"""Copy latency and slippage in the metrics (S10.5), as the reports count them, observed live.

Fed by the records' listeners (``EngineMetrics.record``): a leader fill's arrival (its fills
row, or earlier the broker event a live run sees first), a copy order written to the ledger,
and each fill of that copy. Per fill that is a few dictionary operations under a lock on the
actor's thread — nothing is read from the store or computed beyond a subtraction.

- ``mimik_copy_latency_seconds{until="order_sent"}``: leader fill received to copy order sent
  (``mimik_fanout_latency_seconds`` measures the same span, per follower order of any fill);
- ``mimik_copy_latency_seconds{until="fill_received"}``: leader fill received to the copy's
  first fill received;
- ``mimik_copy_slippage_ticks``: each copy fill's price minus its leader fill's, in the
  follower contract's ticks, adverse positive for the follower's side (its buckets go below
  zero, so the client library gives it no ``_sum``: the reports give the mean).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal

from prometheus_client import CollectorRegistry, Histogram

from brokers.base import Fill
from brokers.instruments import ContractTable, SymbolError
from engine.domain.ledger import LedgerRow
from engine.domain.order_ids import OrderKind, kind_of
from engine.domain.reports import slippage_ticks

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
TICK_BUCKETS = (-10.0, -5.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0)
MAX_TRACKED = 4096  # leader fills and copy orders remembered

TickSize = Callable[[str], Decimal | None]
Received = Callable[[str], int | None]  # a leader fill's arrival (ns) the broker events saw


class CopyMetrics:
    def __init__(
        self, registry: CollectorRegistry, monotonic_ns: Callable[[], int], received: Received
    ) -> None:
        self._now = monotonic_ns
        self._received = received
        self._lock = threading.Lock()
        self._leaders: OrderedDict[str, tuple[int, Decimal]] = OrderedDict()  # cause -> ns, price
        self._copies: OrderedDict[str, tuple[str, int]] = OrderedDict()  # coid -> cause, fills
        self.tick: TickSize = lambda symbol: None  # the contract table's, once an engine is watched
        self.latency = Histogram(
            "mimik_copy_latency_seconds",
            "Leader fill received until its copy order was sent (order_sent) and until the"
            " copy's first fill was received (fill_received)",
            ["until"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.slippage = Histogram(
            "mimik_copy_slippage_ticks",
            "Each copy fill's price minus its leader fill's, in ticks, adverse positive",
            buckets=TICK_BUCKETS,
            registry=registry,
        )

    def _origin(self, cause: str) -> int | None:
        """When the leader fill arrived: as the broker events saw it first, else its row."""
        seen = self._received(cause)
        if seen is not None:
            return seen
        leader = self._leaders.get(cause)
        return None if leader is None else leader[0]

    def order(self, row: LedgerRow) -> None:
        """A copy order written to the ledger, about to be sent."""
        if row.kind != "copy":
            return
        now = self._now()
        with self._lock:
            self._copies[row.client_order_id] = (row.cause, 0)
            while len(self._copies) > MAX_TRACKED:
                self._copies.popitem(last=False)
            started = self._origin(row.cause)
        if started is not None:
            self.latency.labels("order_sent").observe(max(0, now - started) / 1e9)

    def fill(self, fill: Fill) -> None:
        """A fill an account's book took: a leader's (no engine order) is remembered, a
        copy's measured against it."""
        now = self._now()
        if fill.client_order_id is None:
            with self._lock:
                self._leaders[f"{fill.account}:{fill.fill_id}"] = (now, fill.price)
                while len(self._leaders) > MAX_TRACKED:
                    self._leaders.popitem(last=False)
            return
        if kind_of(fill.client_order_id) is not OrderKind.COPY:
            return
        with self._lock:
            copy = self._copies.get(fill.client_order_id)
            if copy is None:
                return
            cause, fills = copy
            if fill.order_done:
                del self._copies[fill.client_order_id]
            else:
                self._copies[fill.client_order_id] = (cause, fills + 1)
            started = self._origin(cause) if fills == 0 else None
            leader = self._leaders.get(cause)
        if started is not None:
            self.latency.labels("fill_received").observe(max(0, now - started) / 1e9)
        tick = self.tick(fill.symbol)
        if leader is not None and tick:
            ticks = slippage_ticks(fill.qty, fill.price, leader[1], tick)
            self.slippage.observe(float(ticks))


def tick_sizes(contracts: ContractTable) -> TickSize:
    """The contract table's tick size of a symbol; ``None`` for one it does not know."""

    def tick(symbol: str) -> Decimal | None:
        try:
            return contracts.tick_size(symbol)
        except SymbolError:
            return None

    return tick


__all__ = ["CopyMetrics", "tick_sizes"]
