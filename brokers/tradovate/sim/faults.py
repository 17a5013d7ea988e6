"""What the local server does to a user's requests besides answering them — the faults tests
ask for, on any endpoint: over HTTP, as REST requests on the trading socket, and the socket
requests themselves (``user/syncrequest``, ``md/subscribeQuote``, ``authorize``).

- Planned faults (:meth:`Faults.plan`), each for the next ``count`` requests of a user to one
  endpoint (or to any endpoint but ``authorize``): a penalty ticket (``ticket``), a ticket
  asking for a captcha (``captcha``), HTTP 423 (``throttle``), HTTP 429 / ``{"s":429}``
  (``lockout``), HTTP 401 (``unauthorized``), an answer that is not JSON (``corrupt``: the
  request is served, its answer lost), any answer instead of serving (``answer``), no answer
  at all (``silence``, socket requests only).
- Standing faults per user: ``locked_out`` (every request answers 429), ``outage`` (503,
  sockets refused).
- A rate limit per user (``burst``, ``per_s``) for REST requests, and per-host limits for chosen
  endpoints (``ip_limits``: counting served requests only, as Tradovate counts successful
  ones); over either, a penalty ticket.

A ticket is ``{"p-ticket", "p-time", "p-captcha"}``; the same request sent again with that ticket
once ``p-time`` has passed is past the rate limits (earlier, it gets a ticket for the time left);
planned faults still apply to it (``penalize_next(count=2)``: a second ticket).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

import trio

FaultKind = Literal[
    "ticket", "captcha", "throttle", "lockout", "unauthorized", "corrupt", "answer", "silence"
]
FAULT_KINDS: tuple[str, ...] = (
    "ticket",
    "captcha",
    "throttle",
    "lockout",
    "unauthorized",
    "corrupt",
    "answer",
    "silence",
)
AUTHORIZE = "authorize"


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class Planned:
    """One planned fault: for the next ``count`` requests to ``endpoint`` (``None``: any)."""

    kind: FaultKind
    endpoint: str | None
    count: int
    seconds: float = 0.2  # a ticket's p-time
    status: int = 200  # an answer's status
    data: Any = None  # an answer's d / body

    def matches(self, endpoint: str, socket: bool) -> bool:
        if self.kind == "silence" and not socket:
            return False
        if self.endpoint is None:
            return endpoint != AUTHORIZE
        return self.endpoint == endpoint


@dataclass
class UserFaults:
    planned: list[Planned] = field(default_factory=list)
    locked_out: bool = False  # every request answers HTTP 429 ({"s":429} on the socket)
    outage: bool = False  # requests answer 503, sockets are refused
    tickets_issued: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to answer instead of serving the request; ``None`` fields mean serve it."""

    status: int | None = None
    body: Any = None
    corrupt: bool = False  # serve it, then answer something that is not JSON
    silent: bool = False  # answer nothing

    @property
    def serve(self) -> bool:
        return self.status is None and self.body is None and not self.silent


PASS = Verdict()


def endpoint_of(path: str) -> str:
    return path.strip().strip("/").lower()


@dataclass
class Faults:
    burst: float | None = None  # None: no rate limit per user
    per_s: float = 1.0
    penalty_s: float = 1.0
    ip_limits: dict[str, tuple[float, float]] = field(default_factory=dict)  # endpoint -> limit
    users: dict[int, UserFaults] = field(default_factory=dict)
    ip_tickets: int = 0  # tickets issued for a per-host limit
    _buckets: dict[int, _Bucket] = field(default_factory=dict)
    _ip_buckets: dict[str, _Bucket] = field(default_factory=dict)
    _tickets: dict[str, tuple[int, float]] = field(default_factory=dict)  # ticket -> user, after
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def of(self, user_id: int) -> UserFaults:
        return self.users.setdefault(user_id, UserFaults())

    def plan(
        self,
        user_id: int,
        kind: str,
        *,
        endpoint: str | None = None,
        count: int = 1,
        seconds: float = 0.2,
        status: int = 200,
        data: Any = None,
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r} (one of {', '.join(FAULT_KINDS)})")
        if count < 1:
            raise ValueError("a planned fault needs count ≥ 1")
        where = None if endpoint is None else endpoint_of(endpoint)
        planned = Planned(kind, where, count, seconds, status, data)  # type: ignore[arg-type]
        self.of(user_id).planned.append(planned)

    def check(
        self,
        user_id: int,
        endpoint: str,
        ticket: object = None,
        *,
        socket: bool = False,
        rate_limited: bool = True,
    ) -> Verdict:
        """Before a request of ``user_id`` to ``endpoint`` is served (``ticket``: its
        ``p-ticket``, if any; ``socket``: a request on a socket; ``rate_limited``: whether the
        per-user rate limit applies to it)."""
        endpoint = endpoint_of(endpoint)
        faults = self.of(user_id)
        if faults.outage:
            return Verdict(status=503)
        if faults.locked_out:
            return Verdict(status=429)
        now = trio.current_time()
        honoured = False
        if isinstance(ticket, str) and ticket in self._tickets:
            owner, after = self._tickets[ticket]
            if owner != user_id or now < after:
                return self._ticket(user_id, max(0.0, after - now), False, ticket)
            del self._tickets[ticket]
            honoured = True  # past the rate limits; planned faults still apply
        planned = next((p for p in faults.planned if p.matches(endpoint, socket)), None)
        if planned is not None:
            planned.count -= 1
            if planned.count == 0:
                faults.planned.remove(planned)
            return self._planned(user_id, planned)
        if honoured:
            return self._served(endpoint, now, user_id, honoured=True)
        if rate_limited and self.burst is not None and not self._take(user_id, now):
            return self._ticket(user_id, self.penalty_s, False)
        return self._served(endpoint, now, user_id)

    def _planned(self, user_id: int, planned: Planned) -> Verdict:
        match planned.kind:
            case "ticket" | "captcha":
                return self._ticket(user_id, planned.seconds, planned.kind == "captcha")
            case "throttle":
                return Verdict(status=423)
            case "lockout":
                return Verdict(status=429)
            case "unauthorized":
                return Verdict(status=401)
            case "corrupt":
                return Verdict(corrupt=True)
            case "silence":
                return Verdict(silent=True)
            case _:
                return Verdict(status=planned.status, body=planned.data)

    def _served(self, endpoint: str, now: float, user_id: int, honoured: bool = False) -> Verdict:
        """Past the user's faults: the per-host limit of ``endpoint``, if any (a request with
        an honoured ticket is counted, never ticketed again)."""
        limit = self.ip_limits.get(endpoint)
        if limit is None:
            return PASS
        burst, per_s = limit
        bucket = self._ip_buckets.get(endpoint)
        if bucket is None:
            bucket = self._ip_buckets[endpoint] = _Bucket(burst, now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * per_s)
        bucket.stamp = now
        if bucket.tokens >= 1 or honoured:
            bucket.tokens = max(0.0, bucket.tokens - 1)
            return PASS
        self.ip_tickets += 1
        return self._ticket(user_id, (1 - bucket.tokens) / per_s, False)

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
        self, user_id: int, wait: float, captcha: bool, ticket: str | None = None
    ) -> Verdict:
        if ticket is None:
            ticket = f"ticket-{next(self._ids)}"
            self._tickets[ticket] = (user_id, trio.current_time() + wait)
        self.of(user_id).tickets_issued += 1
        return Verdict(body={"p-ticket": ticket, "p-time": wait, "p-captcha": captcha})
