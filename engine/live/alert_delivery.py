"""One alert target's delivery (S10.4): its own queue and its own task in the trio loop, so a
target that is slow, down or hung holds up nothing but its own messages — never an actor, a
copy, the API or another target (decision 0023).

``put`` never blocks: an alert goes into the target's queue (``QUEUE`` alerts at most; past
that it is dropped, counted and logged, as nothing must wait on a target). The task takes the
queue in order and sends each alert through apprise in a worker thread of its own (apprise's
calls block: a connect, a read that may hang until apprise's read timeout). A failed send is
retried on S5.6's schedule (``engine.domain.backoff``: 1, 2, 4, 8 s) up to ``ATTEMPTS`` times,
then given up: logged with its reason — the target's name, never its URL — and counted in
``/metrics``. At most ``rate`` messages go to a target in any minute; the alerts past that are
held back and counted by kind, and the first moment the minute allows another message they go
as one: ``7 more alerts: 3 drift, 4 missed_copy``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import structlog
import trio

from brokers.clock import Clock
from engine.app.alert_metrics import AlertMetrics
from engine.app.alert_targets import Target, send_alert
from engine.domain.activity import Level
from engine.domain.alerting import Alert, RateWindow, summary, worse
from engine.domain.backoff import backoff

log = structlog.get_logger("engine.live.alerts")

QUEUE = 1000  # alerts waiting for one target, at most
ATTEMPTS = 5  # sends of one message before it is given up (waits of 1, 2, 4 and 8 s between)


def retry_wait(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (S5.6's schedule)."""
    return backoff(attempt).total_seconds()


class Delivery:
    """A target's queue and the task that empties it."""

    def __init__(
        self,
        target: Target,
        metrics: AlertMetrics,
        clock: Clock,
        rate: int,
        *,
        attempts: int = ATTEMPTS,
        wait: Callable[[int], float] = retry_wait,
        capacity: int = QUEUE,
    ) -> None:
        self.target = target
        self.name = target.name
        self.metrics = metrics
        self.clock = clock
        self.window = RateWindow(rate)
        self.attempts = attempts
        self.wait = wait
        self._put, self._take = trio.open_memory_channel[Alert](capacity)
        # One thread for this target: a hung send holds it, not the loop's shared threads.
        self._thread = trio.CapacityLimiter(1)
        self._held: Counter[str] = Counter()
        self._held_level = Level.INFO
        metrics.target(self.name)

    # -- the trio thread ---------------------------------------------------------------------

    def put(self, alert: Alert) -> None:
        """Queue ``alert``; never blocks (a full queue drops it, counted)."""
        try:
            self._put.send_nowait(alert)
        except trio.WouldBlock:
            self.metrics.dropped.labels(self.name).inc()
            log.warning(
                "alert dropped: the target's queue is full",
                target=self.name,
                kind=alert.kind,
                queue=QUEUE,
            )
            return
        self.metrics.queued.labels(self.name).inc()

    async def run(self) -> None:
        """Send what comes, in order, within the rate; until cancelled."""
        while True:
            now = trio.current_time()
            if self._held and self.window.allows(now):
                held, level = self._held, self._held_level
                self._held, self._held_level = Counter(), Level.INFO
                self.window.take(now)
                await self._deliver(summary(held, level, self.clock.now()))
                continue
            timeout = self.window.free_at(now) - now if self._held else math.inf
            with trio.move_on_after(timeout):
                alert = await self._take.receive()
                self.metrics.queued.labels(self.name).dec()
                now = trio.current_time()
                if not self._held and self.window.allows(now):
                    self.window.take(now)
                    await self._deliver(alert)
                else:
                    self._held[alert.kind] += 1
                    self._held_level = worse(self._held_level, alert.level)
                    self.metrics.summarised.labels(self.name).inc()

    async def _deliver(self, alert: Alert) -> None:
        """Send one message, retried with backoff; given up after ``attempts`` failures."""
        reason = ""
        for attempt in range(1, self.attempts + 1):
            failed = await trio.to_thread.run_sync(
                send_alert, self.target, alert, limiter=self._thread, abandon_on_cancel=True
            )
            if failed is None:
                self.metrics.delivered.labels(self.name).inc()
                return
            reason = failed
            if attempt == self.attempts:
                break
            wait = self.wait(attempt)
            self.metrics.retries.labels(self.name).inc()
            log.warning(
                "alert not delivered; retrying",
                target=self.name,
                kind=alert.kind,
                attempt=attempt,
                retry_in_s=wait,
                reason=reason,
            )
            await trio.sleep(wait)
        self.metrics.failed.labels(self.name).inc()
        log.error(
            "alert delivery failed",
            target=self.name,
            kind=alert.kind,
            attempts=self.attempts,
            reason=reason,
        )


__all__ = ["ATTEMPTS", "QUEUE", "Delivery", "retry_wait"]
