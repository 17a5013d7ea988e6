"""Tradovate's REST API as the adapter uses it: paced, penalty tickets honoured, errors typed.

Every call, over HTTP or as a request on a socket, goes through the login's
:class:`~brokers.tradovate.pacing.RateBudget` and, for the endpoints Tradovate limits per IP
address, the host's :class:`~brokers.tradovate.pacing.HostBudget`. What comes back:

- A penalty ticket (``{"p-ticket", "p-time", "p-captcha"}``, over HTTP or in a socket reply's
  ``d``) is never data: the whole login waits ``p-time`` and the call is sent again, identical
  plus ``p-ticket``. A ticket asking for more than ``max_ticket_wait_s``, or tickets that keep
  coming, fail the call (:class:`Throttled`: nothing was done at the broker).
- A captcha, HTTP 429 or ``{"s":429}``: the login is locked out. The guard hears it before the
  error is raised (:class:`RateLimited`), so no other request of the login follows it; while
  locked out, nothing is sent at all (``LoginGuard.blocked``).
- HTTP 423 (a lock-out is near): the login's budget waits and slows down; the call is sent again
  once, after the wait (a second 423 is :class:`Throttled`).
- HTTP 401: one renewal of the token (``LoginGuard.recover``), then the call again with it. A
  refused renewal is the login's expiry (:class:`Unauthorized`, the guard has said so); a 401
  after a good renewal is this call's refusal (:class:`NoPermission`), not the login's.
- Business errors answered with HTTP 200 (``failureReason``/``failureText``, ``errorText``,
  ``violations``) raise :class:`Rejected` carrying the broker's text; ``failureReason:
  "Success"`` is not one.

Error messages name the endpoint and the status, never a token or a body that might hold one.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import structlog

from brokers.tradovate.pacing import HostBudget, RateBudget
from brokers.tradovate.socket import SocketClosed
from brokers.tradovate.wire import FrameError, Reply, dumps, loads

log = structlog.get_logger("brokers.tradovate")

RENEWAL = "auth/renewaccesstoken"
SUCCESS = "Success"  # a failureReason that is no failure
MAX_TICKET_S = 3600.0  # a ticket's p-time beyond an hour is taken as an hour

# A request on a socket: (endpoint, body) -> its reply.
SocketRequest = Callable[[str, Any], Awaitable[Reply]]


class BrokerError(Exception):
    """A REST call that did not give an answer we can use."""


class Unauthorized(BrokerError):
    """HTTP 401 the login could not get past: its token was refused (a renewal refused: the
    login needs a new authorization, and the guard has said so) or could not be renewed."""


class NoPermission(Unauthorized):
    """HTTP 401 again after a successful renewal: this operation is refused ("no permission");
    the login itself is fine."""


class RateLimited(BrokerError):
    """A captcha or HTTP 429: the login is locked out for a while (the guard knows already)."""


class Throttled(BrokerError):
    """The broker would not serve the call now (a penalty ticket too long to wait, tickets that
    kept coming, HTTP 423 twice): nothing was done at the broker."""


class Unavailable(BrokerError):
    """No answer (network, timeout, HTTP 5xx): the outcome of a command is unknown."""


class BadResponse(BrokerError):
    """An answer that is not what Tradovate sends: the outcome of a command is unknown."""


class NotFound(BrokerError):
    """HTTP 404."""


class Rejected(BrokerError):
    """A business error in an HTTP 200 answer; ``reason`` is the broker's text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def business_error(data: Any) -> str | None:
    """The broker's text when ``data`` is a business or validation error, else ``None``."""
    if not isinstance(data, Mapping):
        return None
    reason, text = data.get("failureReason"), data.get("failureText")
    if reason == SUCCESS:
        return None
    if reason or text:
        return ": ".join(str(part) for part in (reason, text) if part)
    if data.get("errorText"):
        return str(data["errorText"])
    violations = data.get("violations")
    if violations:
        if isinstance(violations, list):
            parts = [
                str(v.get("description") or v.get("constraint") or v)
                if isinstance(v, Mapping)
                else str(v)
                for v in violations
            ]
            return "invalid request: " + "; ".join(parts)
        return f"invalid request: {violations}"
    return None


@dataclass
class _Call:
    """One call as it goes through tickets, a 423 and a 401."""

    method: str
    path: str
    params: dict[str, Any]
    body: dict[str, Any] | None
    via: SocketRequest | None
    http_fallback: bool
    tickets: int = 0
    throttles: int = 0
    recovered: bool = False


class LoginGuard(Protocol):
    """What the login's link tells the REST client, and hears from it."""

    @property
    def token_generation(self) -> int:
        """Changes each time the access token does."""

    def blocked(self) -> str | None:
        """Why nothing of the login may be sent now (a lock-out), or ``None``."""

    def locked_out(self, why: str) -> None:
        """A captcha or HTTP 429 met: stop the login's requests for the cooldown."""

    async def recover(self, generation: int) -> bool:
        """A 401 met with the token of ``generation``: renew it once (unless it was renewed
        since); whether the call may be sent again with a good token."""


class RestClient:
    """One login's REST calls. ``token`` gives the current access token (or ``None``)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: Callable[[], str | None],
        budget: RateBudget,
        *,
        guard: LoginGuard | None = None,
        host: HostBudget | None = None,
        max_penalty_retries: int = 5,
        max_ticket_wait_s: float = 60.0,
        throttle_wait_s: float = 10.0,
        throttle_period_s: float = 600.0,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.budget = budget
        self.guard = guard
        self.host = host
        self.max_penalty_retries = max_penalty_retries
        self.max_ticket_wait_s = max_ticket_wait_s
        self.throttle_wait_s = throttle_wait_s
        self.throttle_period_s = throttle_period_s
        self.penalties = 0  # tickets honoured (for tests and metrics)

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self._call("GET", path, dict(params or {}), None)

    async def post(
        self,
        path: str,
        body: Mapping[str, Any],
        via: SocketRequest | None = None,
        *,
        http_fallback: bool = True,
    ) -> Any:
        """``via`` sends it as a request on a socket instead of over HTTP (same endpoint, same
        body, same answers). A 401 there is followed by a renewal and the call again over HTTP
        with the new token, unless ``http_fallback`` is off (a request that only a socket
        serves, such as ``user/syncrequest``): then it raises :class:`NoPermission`."""
        return await self._call("POST", path, {}, dict(body), via, http_fallback=http_fallback)

    async def command(
        self, path: str, body: Mapping[str, Any], via: SocketRequest | None = None
    ) -> Mapping[str, Any]:
        """A POST whose answer is an object; a business error raises :class:`Rejected`.

        ``via`` sends it as a request on the trading socket instead of over HTTP (same
        endpoint, same body, same answers; no connection to find, and its answer comes in order
        with the socket's pushes)."""
        data = await self.post(path, body, via)
        reason = business_error(data)
        if reason is not None:
            raise Rejected(reason)
        if not isinstance(data, Mapping):
            raise BadResponse(f"{path}: the answer is not a JSON object")
        return data

    async def items(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """A GET whose answer is a list (``*/list``, ``*/deps``)."""
        data = await self.get(path, params)
        reason = business_error(data)
        if reason is not None:
            raise Rejected(reason)
        if not isinstance(data, list):
            raise BadResponse(f"{path}: the answer is not a JSON array")
        return data

    async def _call(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        body: dict[str, Any] | None,
        via: SocketRequest | None = None,
        *,
        http_fallback: bool = True,
    ) -> Any:
        call = _Call(method, path, params, body, via, http_fallback)
        while True:
            generation = self.guard.token_generation if self.guard is not None else 0
            status, data = await self._exchange(call)
            if status == 401:
                await self._unauthorized(call, generation)
            elif status == 423:
                self._throttled(call)
            elif status != 200:
                self._refused(path, status)
            else:
                ticket = penalty_ticket(data)
                if ticket is None:
                    return data
                self._penalty(call, *ticket)

    async def _exchange(self, call: _Call) -> tuple[int, Any]:
        """Send the call once, within the budgets; HTTP 200 answers come back decoded."""
        path = call.path
        async with self.budget.slot():
            blocked = self.guard.blocked() if self.guard is not None else None
            if blocked is not None:
                raise RateLimited(f"{path}: not sent, {blocked}")
            counted = await self.host.take(path) if self.host is not None else False
            succeeded = False
            try:
                if call.via is not None:
                    status, data = await _over_socket(call.via, path, call.body or {})
                else:
                    url = f"{self.base_url}/{path.lstrip('/')}"
                    response = await self._send(call.method, url, path, call.params, call.body)
                    status, data = response.status_code, response.content
                if status == 200 and isinstance(data, bytes):
                    try:
                        data = loads(data)
                    except FrameError as error:
                        raise BadResponse(f"{path}: {error}") from None
                succeeded = status == 200 and penalty_ticket(data) is None
            finally:
                if counted and not succeeded:
                    assert self.host is not None
                    self.host.give_back(path)
        return status, data

    async def _unauthorized(self, call: _Call, generation: int) -> None:
        """HTTP 401: renew once and go again, or raise."""
        path, guard = call.path, self.guard
        if guard is None or path.strip("/").lower() == RENEWAL:
            raise Unauthorized(f"{path}: HTTP 401")
        if call.recovered:
            raise NoPermission(f"{path}: no permission (HTTP 401 with a renewed token)")
        if not await guard.recover(generation):
            raise Unauthorized(f"{path}: HTTP 401, and the token could not be renewed")
        call.recovered = True
        if call.via is not None:
            if not call.http_fallback:
                raise NoPermission(f"{path}: the socket's authorization was refused")
            call.via = None

    def _throttled(self, call: _Call) -> None:
        """HTTP 423: wait and slow down; go again once."""
        call.throttles += 1
        self.budget.slow_down(self.throttle_wait_s, self.throttle_period_s)
        log.warning(
            "HTTP 423: a lock-out is near; slowing down",
            endpoint=call.path,
            wait_s=self.throttle_wait_s,
            budget_factor=self.budget.factor,
        )
        if call.throttles > 1:
            raise Throttled(f"{call.path}: HTTP 423 again (a lock-out is near)")

    def _refused(self, path: str, status: int) -> None:
        if status == 429:
            if self.guard is not None:
                self.guard.locked_out(f"{path}: HTTP 429 (locked out)")
            raise RateLimited(f"{path}: HTTP 429 (locked out)")
        if status == 404:
            raise NotFound(f"{path}: HTTP 404")
        if status >= 500:
            raise Unavailable(f"{path}: HTTP {status}")
        raise BadResponse(f"{path}: HTTP {status}")

    def _penalty(self, call: _Call, value: str, wait: float, captcha: bool) -> None:
        """A penalty ticket: the login waits ``wait``; the call goes again with the ticket."""
        path = call.path
        if captcha:
            if self.guard is not None:
                self.guard.locked_out(f"{path}: a penalty ticket asks for a captcha")
            raise RateLimited(f"{path}: a penalty ticket asks for a captcha")
        call.tickets += 1
        self.budget.penalize(wait)
        if wait > self.max_ticket_wait_s:
            log.warning("penalty ticket too long to wait", endpoint=path, wait_s=wait)
            raise Throttled(f"{path}: a penalty ticket asks to wait {wait:g} s")
        if call.tickets > self.max_penalty_retries:
            raise Throttled(f"{path}: still throttled after {call.tickets - 1} tickets")
        self.penalties += 1
        log.warning("penalty ticket", endpoint=path, wait_s=wait)
        if call.body is not None:
            call.body = {**call.body, "p-ticket": value}
        else:
            call.params = {**call.params, "p-ticket": value}

    async def _send(
        self,
        method: str,
        url: str,
        path: str,
        params: dict[str, Any],
        body: dict[str, Any] | None,
    ) -> httpx.Response:
        headers = {"Accept": "application/json"}
        token = self._token()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        content = None
        if body is not None:
            content = dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            return await self.http.request(
                method, url, params=params or None, content=content, headers=headers
            )
        except httpx.HTTPError as error:
            raise Unavailable(f"{path}: {type(error).__name__}") from None


async def _over_socket(via: SocketRequest, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    try:
        reply = await via(path, body)
    except SocketClosed as closed:
        raise Unavailable(f"{path}: {closed}") from None
    return reply.status, reply.data


def penalty_ticket(data: Any) -> tuple[str, float, bool] | None:
    if not isinstance(data, Mapping) or "p-ticket" not in data:
        return None
    wait = data.get("p-time", 0)
    try:
        seconds = float(wait)
    except (TypeError, ValueError):
        seconds = 0.0
    seconds = min(MAX_TICKET_S, max(0.0, seconds)) if math.isfinite(seconds) else MAX_TICKET_S
    return str(data["p-ticket"]), seconds, bool(data.get("p-captcha"))
