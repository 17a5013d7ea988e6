"""Prometheus metrics of a live engine, observed from outside the actors.

Counters and the fan-out histogram are fed by what the engine already publishes: the records'
listeners (activity entries, orders written to the intent log, order outcomes) and the broker
events a live run sees before the engine does (``ObservedBroker`` in ``engine/live.py``). Gauges
(connection states, actor restarts, mailbox depth, orders in flight) are read when Prometheus
scrapes, off the trio thread. Nothing here changes the engine.

Fan-out latency is the time from a leader's fill reaching the engine to each follower order it
caused being written to the intent log, just before it is sent to the broker — the path S2
describes, measured on the engine clock's monotonic reading.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from brokers.base import BrokerEvent, Fill
from engine.app.alert_metrics import AlertMetrics
from engine.app.copy_metrics import CopyMetrics, tick_sizes
from engine.domain.activity import ActivityEntry, Kind
from engine.domain.ledger import NOT_SENT, LedgerRow

if TYPE_CHECKING:
    from engine.core.engine import Engine

FANOUT_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
MAX_TRACKED = 4096  # leader fills and orders remembered for the latency and outcome labels
FINAL_STATUSES = frozenset({"filled", "rejected", "done", NOT_SENT})
CONNECTION_STATES = ("connected", "reauth_required", "disconnected")


def rejection_reason(message: str) -> str:
    """A small, fixed set of labels for rejections (S5.4, S5.5, S2.7, S2.8)."""
    if "LIQUIDATE_ONLY" in message:
        return "liquidate_only"
    if "LOCKED" in message:
        return "locked"
    if message.startswith("broker rejected"):
        return "broker"
    return "other"


def breach_reason(message: str) -> str:
    for reason in ("risk_breach_weekly", "risk_breach_daily"):
        if reason in message:
            return reason
    return "other"


class EngineMetrics:
    """The engine's metrics in their own registry (so tests can build many)."""

    def __init__(self, monotonic_ns: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._now = monotonic_ns
        self._lock = threading.Lock()
        self._fills: OrderedDict[str, int] = OrderedDict()  # "account:fill_id" -> ns
        self._orders: OrderedDict[str, str] = OrderedDict()  # client order id -> kind
        self.in_flight = 0
        r = self.registry
        self.fanout = Histogram(
            "mimik_fanout_latency_seconds",
            "Leader fill received to follower order written and sent, per follower order",
            buckets=FANOUT_BUCKETS,
            registry=r,
        )
        self.orders = Counter(
            "mimik_orders",
            "Orders the engine sent, by kind and outcome (sent, filled, rejected, done, not_sent)",
            ["kind", "outcome"],
            registry=r,
        )
        self.rejections = Counter(
            "mimik_rejections",
            "Orders refused by a risk gate or the broker, by reason",
            ["reason"],
            registry=r,
        )
        self.breaches = Counter(
            "mimik_breaches", "Risk limit breaches (S5.3), by lock reason", ["reason"], registry=r
        )
        self.activity = Counter(
            "mimik_activity_entries",
            "Activity entries written, by kind and level",
            ["kind", "level"],
            registry=r,
        )
        self.missed_copies = Counter(
            "mimik_missed_copies",
            "Market orders the engine sent left unanswered past copy_fill_timeout (S10.3)",
            ["account"],
            registry=r,
        )
        self.leader_fills = Counter(
            "mimik_broker_fills", "Fills the broker reported, engine orders or not", registry=r
        )
        self.http = Counter(
            "mimik_api_requests",
            "Control API requests, by method and status class",
            ["method", "status"],
            registry=r,
        )
        # S10.5: copy latency and slippage, from the records' fills and orders.
        self.copies = CopyMetrics(r, monotonic_ns, self._fills.get)
        self.alerts = AlertMetrics(r)  # S10.4's deliveries, per target

    # -- feeds -------------------------------------------------------------------------------

    def broker_event(self, event: BrokerEvent) -> None:
        """Every broker event, before the engine sees it (never raises)."""
        if isinstance(event, Fill):
            self.leader_fills.inc()
            if event.client_order_id is None:  # a trade the engine did not place: a leader's
                with self._lock:
                    self._fills[f"{event.account}:{event.fill_id}"] = self._now()
                    while len(self._fills) > MAX_TRACKED:
                        self._fills.popitem(last=False)

    def record(self, topic: str, payload: Any) -> None:
        """A records listener (called on actor threads; never raises)."""
        try:
            if topic == "order" and isinstance(payload, LedgerRow):
                self._order(payload)
                self.copies.order(payload)
            elif topic == "fill" and isinstance(payload, Fill):
                self.copies.fill(payload)
            elif topic == "order_status" and isinstance(payload, tuple):
                self._status(str(payload[0]), str(payload[1]))
            elif topic == "activity" and isinstance(payload, ActivityEntry):
                self._activity(payload)
        except Exception:  # metrics must never break an actor
            pass

    def _order(self, row: LedgerRow) -> None:
        now = self._now()
        with self._lock:
            self._orders[row.client_order_id] = row.kind
            while len(self._orders) > MAX_TRACKED:
                self._orders.popitem(last=False)
            self.in_flight += 1
            started = self._fills.get(row.cause) if row.kind == "copy" else None
        self.orders.labels(row.kind, "sent").inc()
        if started is not None:
            self.fanout.observe(max(0, now - started) / 1e9)

    def _status(self, client_order_id: str, status: str) -> None:
        if status not in FINAL_STATUSES:
            return
        with self._lock:
            kind = self._orders.pop(client_order_id, None)
            if kind is not None:
                self.in_flight = max(0, self.in_flight - 1)
        self.orders.labels(kind or "unknown", status).inc()

    def _activity(self, entry: ActivityEntry) -> None:
        self.activity.labels(entry.kind.value, entry.level.value).inc()
        if entry.kind is Kind.REJECTION:
            self.rejections.labels(rejection_reason(entry.message)).inc()
        elif entry.kind is Kind.BREACH:
            self.breaches.labels(breach_reason(entry.message)).inc()
        elif entry.kind is Kind.MISSED_COPY:
            self.missed_copies.labels(entry.account or "").inc()

    # -- scrape ------------------------------------------------------------------------------

    def watch(self, engine: Engine) -> None:
        """Read the engine's gauges at each scrape."""
        self.registry.register(_EngineCollector(engine, self))
        self.copies.tick = tick_sizes(engine.contracts)

    def render(self) -> bytes:
        """The text exposition; reads actors, so call it off the trio thread."""
        return generate_latest(self.registry)


class _EngineCollector(Collector):
    def __init__(self, engine: Engine, metrics: EngineMetrics) -> None:
        self.engine = engine
        self.metrics = metrics

    def describe(self) -> Iterable[Any]:
        return []  # read at collect time only: nothing to describe up front

    def collect(self) -> Iterator[Any]:
        engine = self.engine
        states = GaugeMetricFamily(
            "mimik_connection_state",
            "1 for each connection's current state (connected, reauth_required, disconnected)",
            labels=["connection", "state"],
        )
        for connection in [c.id for c in engine.connections()]:
            try:
                current = engine.connection_state(connection)
            except Exception:  # a connection deleted meanwhile, or a busy actor
                continue
            if current is None:
                continue
            for state in CONNECTION_STATES:
                states.add_metric([connection, state], 1.0 if current == state else 0.0)
        yield states
        restarts = CounterMetricFamily(
            "mimik_actor_restarts", "Actor restarts by the supervisor", labels=[]
        )
        restarts.add_metric([], float(engine.restarts()))
        yield restarts
        depth = GaugeMetricFamily(
            "mimik_mailbox_depth",
            "Messages queued or being handled, per actor thread",
            labels=["thread"],
        )
        for thread, value in engine.mailbox_depths().items():
            depth.add_metric([thread], float(value))
        yield depth
        dead = CounterMetricFamily(
            "mimik_dead_letters", "Messages told to an actor that no longer exists", labels=[]
        )
        dead.add_metric([], float(engine.dead_letters()))
        yield dead
        flight = GaugeMetricFamily(
            "mimik_orders_in_flight", "Orders sent whose outcome has not come back", labels=[]
        )
        flight.add_metric([], float(self.metrics.in_flight))
        yield flight
        durable = GaugeMetricFamily(
            "mimik_durable_ok",
            "1 while the engine can make its state durable; 0 while it cannot (new orders"
            " held back, decision 0014)",
            labels=[],
        )
        durable.add_metric([], 1.0 if engine.health().ok else 0.0)
        yield durable
        blind = GaugeMetricFamily(
            "mimik_positions_without_prices",
            "Positions held in symbols that have no prices now (S10.3 stale_prices), per account",
            labels=["account"],
        )
        for account in sorted(engine.topology_snapshot().accounts):
            view = engine.account_view(account)
            if view is not None:
                blind.add_metric([account], float(len(view.stale_prices)))
        yield blind
        yield self._drift(engine)

    @staticmethod
    def _drift(engine: Engine) -> GaugeMetricFamily:
        drift = GaugeMetricFamily(
            "mimik_follower_drift",
            "A follower's open drift episode (S10.1): its position minus where its leader puts"
            " it, per account and symbol; no sample while none is open",
            labels=["account", "symbol"],
        )
        for account in sorted(engine.topology_snapshot().accounts):
            view = engine.account_view(account)
            if view is not None:
                for symbol, qty in sorted(view.drift.items()):
                    drift.add_metric([account, symbol], float(qty))
        return drift


__all__ = ["EngineMetrics", "breach_reason", "rejection_reason"]
