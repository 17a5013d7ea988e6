"""The live engine's alerts (S10.4): which events become alerts, and to whom they go.

Sources: the activity log (a records listener, called on the actor threads), an account held
by the supervisor (its ``restart`` entry, told from the others: ``supervisor_hold``), and a
connection away from ``connected`` for longer than ``[alerts] connection_down_seconds``
(:mod:`engine.live.connection_watch`). The listener does as little as an actor can afford: an
entry that could matter is appended to a list under a lock and the trio loop is woken once for
whatever came since it last looked (``TrioToken.run_sync_soon``; the same hand-off as the event
stream's); it never blocks and never raises. In the loop each entry is filtered by ``kinds`` and
``min_level`` and put into every target's own queue (:mod:`engine.live.alert_delivery`), whose
task sends it. Entries written before the loop runs (a breach found by the start's
reconciliation) wait for it.

Alerts are live-engine only: a replay has no targets.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import structlog
import trio

from brokers.clock import Clock
from engine.app.alert_metrics import AlertMetrics
from engine.app.alert_targets import Target
from engine.app.alerts_config import AlertsConfig
from engine.domain.activity import ActivityEntry, Kind
from engine.domain.alerting import CONNECTION_DOWN, SUPERVISOR_HOLD, Alert, alert_of
from engine.live.alert_delivery import Delivery
from engine.live.connection_watch import ConnectionWatch

log = structlog.get_logger("engine.live.alerts")

WAITING = 10_000  # entries kept for the loop while it does not take them (before it runs)


class AlertRouter:
    def __init__(
        self,
        config: AlertsConfig,
        targets: list[Target],
        metrics: AlertMetrics,
        clock: Clock,
    ) -> None:
        self.filter = config.filter()
        self.deliveries = [Delivery(t, metrics, clock, config.rate) for t in targets]
        self.watch = ConnectionWatch(config.connection_down_seconds, self.publish, clock)
        kinds = self.filter.kinds
        # The kinds of entry worth handing to the loop: those chosen, and those the event
        # alerts are made of.
        wanted = {kind for kind in Kind if kind.value in kinds}
        if CONNECTION_DOWN in kinds:
            wanted |= {Kind.STATE_CHANGE, Kind.DELETION}
        if SUPERVISOR_HOLD in kinds:
            wanted.add(Kind.RESTART)
        self._wanted = frozenset(wanted)
        self._token: trio.lowlevel.TrioToken | None = None
        self._lock = threading.Lock()
        self._incoming: deque[ActivityEntry] = deque(maxlen=WAITING)
        self._scheduled = False

    @property
    def targets(self) -> list[str]:
        return [d.name for d in self.deliveries]

    # -- from any thread ---------------------------------------------------------------------

    def record(self, topic: str, payload: Any) -> None:
        """A records listener: never blocks on anything but a short lock, never raises."""
        if topic != "activity" or not isinstance(payload, ActivityEntry):
            return
        if payload.kind not in self._wanted:
            return
        with self._lock:
            self._incoming.append(payload)
            token = self._token
            if token is None or self._scheduled:
                return  # the loop takes it when it starts, or with the earlier ones
            self._scheduled = True
        try:
            token.run_sync_soon(self._take)
        except Exception:  # the loop is gone: nothing is sent any more
            with self._lock:
                self._incoming.clear()

    # -- the trio thread ---------------------------------------------------------------------

    async def run(self) -> None:
        """Every target's task and the connection watch, until cancelled."""
        log.info("alerts on", targets=self.targets, kinds=sorted(self.filter.kinds))
        async with trio.open_nursery() as nursery:
            for delivery in self.deliveries:
                nursery.start_soon(delivery.run)
            await nursery.start(self.watch.run)  # its timers' nursery open before any entry
            with self._lock:
                self._token = trio.lowlevel.current_trio_token()
                self._scheduled = True
            self._take()

    def _take(self) -> None:
        with self._lock:
            entries = list(self._incoming)
            self._incoming.clear()
            self._scheduled = False
        for entry in entries:
            try:
                self.watch.seen(entry)
                self.publish(alert_of(entry))
            except Exception as error:  # one odd entry must not stop the alerts
                log.error("alert not made", kind=entry.kind.value, error=repr(error))

    def publish(self, alert: Alert) -> None:
        """Every target's queue gets ``alert`` if it passes ``kinds`` and ``min_level``."""
        if not self.filter.passes(alert):
            return
        for delivery in self.deliveries:
            delivery.put(alert)


__all__ = ["AlertRouter"]
