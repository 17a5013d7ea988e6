"""Per-login request pacing: a token bucket, a cap on requests in flight, and penalty waits.

One :class:`RateBudget` belongs to one connection (one Tradovate user), so a login whose budget
is spent, or that is waiting out a penalty ticket, delays only its own requests. Requests go out
concurrently up to ``max_concurrent``; the bucket lets ``burst`` leave at once (a fan-out of 20
follower orders) and refills at ``per_second``. Time is trio's clock: this is I/O pacing, not
domain time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


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
        self._lock = trio.Lock()  # FIFO: requests get their turn in the order they asked
        self.waited = 0  # requests that had to wait for the bucket (for tests and metrics)

    def _refill(self, now: float) -> None:
        if self._stamp is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.per_second)
        self._stamp = now

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
                    self._refill(now)
                    if self._tokens >= 1:
                        self._tokens -= 1
                        break
                    self.waited += 1
                    await trio.sleep((1 - self._tokens) / self.per_second)
            yield

    def penalize(self, seconds: float) -> None:
        """The broker asked us to wait (a penalty ticket): nothing leaves for ``seconds``."""
        until = trio.current_time() + max(0.0, seconds)
        self._not_before = max(self._not_before, until)
