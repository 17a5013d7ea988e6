"""What the local server does to a user's requests besides answering them: rate limits and
penalty tickets, lock-outs, 401s, malformed answers, outages — the faults tests ask for.

The rate limit is a token bucket per user on trio's clock (``burst`` at once, ``per_s``
refill). A request over it gets a penalty ticket ``{"p-ticket", "p-time", "p-captcha"}``; the
same request sent again with that ticket once ``p-time`` has passed goes through.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import trio


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class UserFaults:
    penalties: int = 0  # the next requests get a ticket whatever the bucket says
    penalty_s: float = 0.2
    captcha: int = 0  # the next tickets ask for a captcha
    unauthorized: int = 0  # the next requests answer HTTP 401
    corrupt: int = 0  # the next answers are not JSON
    locked_out: bool = False  # every request answers HTTP 429
    outage: bool = False  # requests answer 503, sockets are refused
    tickets_issued: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to answer instead of serving the request; ``None`` fields mean serve it."""

    status: int | None = None
    body: dict[str, object] | None = None
    corrupt: bool = False


PASS = Verdict()


@dataclass
class Faults:
    burst: float | None = None  # None: no rate limit
    per_s: float = 1.0
    penalty_s: float = 1.0
    users: dict[int, UserFaults] = field(default_factory=dict)
    _buckets: dict[int, _Bucket] = field(default_factory=dict)
    _tickets: dict[str, tuple[int, float]] = field(default_factory=dict)  # ticket -> user, after
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def of(self, user_id: int) -> UserFaults:
        return self.users.setdefault(user_id, UserFaults())

    def check(self, user_id: int, ticket: object) -> Verdict:
        """Before a request of ``user_id`` is served (``ticket``: its ``p-ticket``, if any)."""
        faults = self.of(user_id)
        if faults.outage:
            return Verdict(status=503)
        if faults.locked_out:
            return Verdict(status=429)
        if faults.unauthorized > 0:
            faults.unauthorized -= 1
            return Verdict(status=401)
        now = trio.current_time()
        if isinstance(ticket, str) and ticket in self._tickets:
            owner, after = self._tickets[ticket]
            if owner == user_id and now >= after:
                del self._tickets[ticket]
                return self._corrupt(faults)
            return self._ticket(user_id, faults, max(0.0, after - now), ticket)
        if faults.captcha > 0 or faults.penalties > 0:
            if faults.captcha == 0:
                faults.penalties -= 1
            return self._ticket(user_id, faults, faults.penalty_s)
        if self.burst is not None and not self._take(user_id, now):
            return self._ticket(user_id, faults, self.penalty_s)
        return self._corrupt(faults)

    def _corrupt(self, faults: UserFaults) -> Verdict:
        if faults.corrupt > 0:
            faults.corrupt -= 1
            return Verdict(corrupt=True)
        return PASS

    def _take(self, user_id: int, now: float) -> bool:
        assert self.burst is not None
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.per_s)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        return False

    def _ticket(
        self, user_id: int, faults: UserFaults, wait: float, ticket: str | None = None
    ) -> Verdict:
        captcha = faults.captcha > 0
        if captcha:
            faults.captcha -= 1
        if ticket is None:
            ticket = f"ticket-{next(self._ids)}"
            self._tickets[ticket] = (user_id, trio.current_time() + wait)
        faults.tickets_issued += 1
        return Verdict(body={"p-ticket": ticket, "p-time": wait, "p-captcha": captcha})
