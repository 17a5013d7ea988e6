"""Request pacing: a budget per login, budgets per host, penalty waits, and renewal spacing.

- :class:`RateBudget` belongs to one connection (one Tradovate user), so a login whose budget is
  spent, or that is waiting out a penalty ticket, delays only its own requests. Requests go out
  concurrently up to ``max_concurrent``; the bucket lets ``burst`` leave at once (a fan-out of 20
  follower orders) and refills at ``per_second``. An HTTP 423 (a lock-out is near) makes the
  login wait, then halves its rate and burst for a while (:meth:`RateBudget.slow_down`).
- :class:`HostBudget` is shared by every login of the process: Tradovate limits some endpoints
  per IP address (``user/syncrequest``, ``auth/renewaccesstoken``), counting successful
  requests — a request that did not succeed gives its token back.
- :class:`RenewalPlanner` spreads the token renewals of many logins on the engine clock.
- :func:`doubling` and :func:`jittered`: the waits after failures (a renewal, a quote
  subscription, a socket that would not come up or stay up).

Time is trio's clock for the budgets (I/O pacing, not domain time) and the engine clock for the
renewal plan (renewals are due at engine-clock instants).
"""

from __future__ import annotations

import random
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import trio

MIN_FACTOR = 1 / 64  # repeated 423s slow a login down to this fraction of its budget, no less
# The jitter's own generator: the adapter's threads never move the process's global random state
# (which a test drawing its examples, or a seeded demo, may depend on).
_JITTER = random.Random()


def doubling(initial: float, failures: int, ceiling: float) -> float:
    """The wait after ``failures`` failures in a row: ``initial`` after the first, doubling
    with each one after it, never more than ``ceiling``."""
    return min(initial * 2.0 ** min(failures - 1, 30), ceiling)


def jittered(initial: float, failures: int, ceiling: float) -> float:
    """A reconnection's wait: :func:`doubling`, drawn at random from its upper half so logins
    that failed together do not come back together."""
    return doubling(initial, failures, ceiling) * _JITTER.uniform(0.5, 1.0)


class RateBudget:
    def __init__(self, burst: int, per_second: float, max_concurrent: int) -> None:
        if burst < 1 or per_second <= 0 or max_concurrent < 1:
            raise ValueError("a rate budget needs burst ≥ 1, per_second > 0, max_concurrent ≥ 1")
        self.burst = burst
        self.per_second = per_second
        self._tokens = float(burst)
        self._stamp: float | None = None
        self._limiter = trio.CapacityLimiter(max_concurrent)
        self._not_before = 0.0  # trio time before which nothing may be sent (a penalty)
        self._factor = 1.0  # < 1 while slowed down after an HTTP 423
        self._slow_until = 0.0
        self._lock = trio.Lock()  # FIFO: requests get their turn in the order they asked
        self.waited = 0  # requests that had to wait for the bucket (for tests and metrics)
        self.slowdowns = 0  # HTTP 423s met (for tests and metrics)

    @property
    def factor(self) -> float:
        """The fraction of the budget in force (1 unless slowed down after a 423)."""
        return self._factor

    def _limits(self, now: float) -> tuple[float, float]:
        if self._factor < 1 and now >= self._slow_until:
            self._factor = 1.0
        return self.per_second * self._factor, max(1.0, self.burst * self._factor)

    def _refill(self, now: float) -> float:
        rate, cap = self._limits(now)
        if self._stamp is not None:
            self._tokens = min(cap, self._tokens + (now - self._stamp) * rate)
        self._stamp = now
        return rate

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request's place: a free concurrency slot and one token of the bucket."""
        async with self._limiter:
            async with self._lock:
                while True:
                    now = trio.current_time()
                    if now < self._not_before:
                        self.waited += 1
                        await trio.sleep_until(self._not_before)
                        continue
                    rate = self._refill(now)
                    if self._tokens >= 1:
                        self._tokens -= 1
                        break
                    self.waited += 1
                    await trio.sleep((1 - self._tokens) / rate)
            yield

    def penalize(self, seconds: float) -> None:
        """The broker asked us to wait (a penalty ticket): nothing leaves for ``seconds``."""
        until = trio.current_time() + max(0.0, seconds)
        self._not_before = max(self._not_before, until)

    def slow_down(self, wait_s: float, period_s: float) -> None:
        """An HTTP 423: wait ``wait_s``, then half the rate and burst (again halved at each
        further 423) until ``period_s`` has passed without one."""
        now = trio.current_time()
        self._refill(now)
        self.slowdowns += 1
        self.penalize(wait_s)
        self._factor = max(MIN_FACTOR, self._factor / 2)
        self._slow_until = now + max(0.0, wait_s) + period_s
        self._tokens = min(self._tokens, max(1.0, self.burst * self._factor))


class _Bucket:
    def __init__(self, burst: int, per_second: float) -> None:
        self.burst = burst
        self.per_second = per_second
        self.tokens = float(burst)
        self.stamp: float | None = None
        self.lock = trio.Lock()

    def refill(self, now: float) -> None:
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now


class HostBudget:
    """Token buckets by endpoint for this host (every login of the process), counting
    successful requests: :meth:`take` before sending, :meth:`give_back` if it did not succeed."""

    def __init__(self, limits: Mapping[str, tuple[int, float]]) -> None:
        """``limits``: endpoint → (burst, refills per second)."""
        self._buckets = {
            _endpoint(path): _Bucket(burst, per_second)
            for path, (burst, per_second) in limits.items()
        }
        self.waited = 0  # requests that had to wait (for tests and metrics)

    def limits(self, path: str) -> bool:
        return _endpoint(path) in self._buckets

    async def take(self, path: str) -> bool:
        """Wait for a token of ``path``'s bucket; ``False`` when ``path`` has no host budget."""
        bucket = self._buckets.get(_endpoint(path))
        if bucket is None:
            return False
        async with bucket.lock:
            while True:
                now = trio.current_time()
                bucket.refill(now)
                if bucket.tokens >= 1:
                    bucket.tokens -= 1
                    return True
                self.waited += 1
                await trio.sleep((1 - bucket.tokens) / bucket.per_second)

    def give_back(self, path: str) -> None:
        """The request did not succeed: it does not count against the host."""
        bucket = self._buckets.get(_endpoint(path))
        if bucket is not None:
            bucket.tokens = min(bucket.burst, bucket.tokens + 1)


def _endpoint(path: str) -> str:
    return path.strip("/").lower()


class RenewalPlanner:
    """When each login renews its token: at the start of its window, unless another login of
    this process renews within ``spacing`` of it — then later, never past the window's end."""

    def __init__(self, spacing: timedelta) -> None:
        self.spacing = spacing
        self._planned: dict[str, datetime] = {}
        self._lock = threading.Lock()  # sessions are made on the engine's threads

    def plan(self, login: str, earliest: datetime, latest: datetime) -> datetime:
        with self._lock:
            instant = earliest
            for other in sorted(t for who, t in self._planned.items() if who != login):
                if other <= instant - self.spacing:
                    continue
                if other >= instant + self.spacing:
                    break
                instant = other + self.spacing
            instant = min(instant, max(earliest, latest))
            self._planned[login] = instant
            return instant

    def forget(self, login: str) -> None:
        with self._lock:
            self._planned.pop(login, None)
