"""Tradovate's REST API as the adapter uses it: paced, penalty tickets honoured, errors typed.

Every call goes through the login's :class:`~brokers.tradovate.pacing.RateBudget`. A throttled
call (``{"p-ticket", "p-time", "p-captcha"}``) waits ``p-time`` (the whole login waits) and is
sent again, identical plus ``p-ticket``; a captcha or HTTP 429 raises :class:`RateLimited` at
once — a program cannot solve it, so it never retries. Business errors that Tradovate answers
with HTTP 200 (``failureReason``/``failureText``, ``errorText``, ``violations``) raise
:class:`Rejected` carrying the broker's text. Error messages name the endpoint and the status,
never a token or a body that might hold one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
import structlog

from brokers.tradovate.pacing import RateBudget
from brokers.tradovate.socket import SocketClosed
from brokers.tradovate.wire import FrameError, Reply, dumps, loads

log = structlog.get_logger("brokers.tradovate")

LOCKED_WAIT_S = 10.0  # HTTP 423: the lock-out is near; wait before trying again

# A request on the trading socket: (endpoint, body) -> its reply.
SocketRequest = Callable[[str, Any], Awaitable[Reply]]


class BrokerError(Exception):
    """A REST call that did not give an answer we can use."""


class Unauthorized(BrokerError):
    """HTTP 401: the token is no longer accepted."""


class RateLimited(BrokerError):
    """A captcha or HTTP 429: the login is locked out for a while."""


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


class RestClient:
    """One login's REST calls. ``token`` gives the current access token (or ``None``)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: Callable[[], str | None],
        budget: RateBudget,
        max_penalty_retries: int = 5,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.budget = budget
        self.max_penalty_retries = max_penalty_retries
        self.penalties = 0  # tickets honoured (for tests and metrics)

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self._call("GET", path, dict(params or {}), None)

    async def post(
        self, path: str, body: Mapping[str, Any], via: SocketRequest | None = None
    ) -> Any:
        return await self._call("POST", path, {}, dict(body), via)

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
    ) -> Any:
        url = f"{self.base_url}/{path.lstrip('/')}"
        penalties = 0
        while True:
            async with self.budget.slot():
                if via is not None and body is not None:
                    status, data = await _over_socket(via, path, body)
                else:
                    response = await self._send(method, url, path, params, body)
                    status, data = response.status_code, response.content
            if status == 401:
                raise Unauthorized(f"{path}: HTTP 401")
            if status == 429:
                raise RateLimited(f"{path}: HTTP 429 (locked out)")
            if status == 404:
                raise NotFound(f"{path}: HTTP 404")
            if status == 423:
                penalties += 1
                if penalties > self.max_penalty_retries:
                    raise RateLimited(f"{path}: HTTP 423 persisted")
                self.budget.penalize(LOCKED_WAIT_S)
                continue
            if status >= 500:
                raise Unavailable(f"{path}: HTTP {status}")
            if status >= 400:
                raise BadResponse(f"{path}: HTTP {status}")
            if isinstance(data, bytes):
                try:
                    data = loads(data)
                except FrameError as error:
                    raise BadResponse(f"{path}: {error}") from None
            ticket = _ticket(data)
            if ticket is None:
                return data
            value, wait, captcha = ticket
            if captcha:
                raise RateLimited(f"{path}: penalty ticket asks for a captcha")
            penalties += 1
            if penalties > self.max_penalty_retries:
                raise RateLimited(f"{path}: still throttled after {penalties - 1} tickets")
            self.penalties += 1
            log.warning("penalty ticket", endpoint=path, wait_s=wait)
            self.budget.penalize(wait)
            if body is not None:
                body = {**body, "p-ticket": value}
            else:
                params = {**params, "p-ticket": value}

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


def _ticket(data: Any) -> tuple[str, float, bool] | None:
    if not isinstance(data, Mapping) or "p-ticket" not in data:
        return None
    wait = data.get("p-time", 0)
    try:
        seconds = max(0.0, float(wait))
    except (TypeError, ValueError):
        seconds = 0.0
    return str(data["p-ticket"]), seconds, bool(data.get("p-captcha"))
