"""The local Tradovate-compatible server: a Starlette app served by Hypercorn inside trio.

Routes (paths case-insensitive below ``/v1``, as Tradovate's samples disagree on casing):

- ``GET /oauth`` — the authorize page: one button per user (no password field: signing in is
  choosing who you are); ``POST /oauth/approve`` sends the browser back to ``redirect_uri`` with
  a single-use ``code`` and the caller's ``state``;
- ``POST /auth/oauthtoken`` and ``POST /v1/auth/oauthtoken`` — the code exchange, form-encoded
  or JSON; ``GET /v1/auth/renewaccesstoken``;
- ``/v1/...`` — the REST endpoints of :mod:`brokers.tradovate.sim.api`, bearer token required;
- ``/v1/websocket`` (trading) and ``/md/v1/websocket`` (market data).

Every REST request — over HTTP, or on the trading socket (method ``WS``), and the socket
requests ``user/syncrequest`` (``WS``) and ``md/subscribeQuote`` (``MD``) — is recorded in
``requests`` (what the engine sent, for tests) and given to ``request_hook`` (the bench's
timestamp) before it is answered; the faults of :mod:`.faults` apply to all of them, and to the
token endpoint (by the user the code was issued to).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from brokers.tradovate.sim import api
from brokers.tradovate.sim.auth import AuthFailure, SimAuth
from brokers.tradovate.sim.exchange import SimExchange
from brokers.tradovate.sim.faults import Faults, Verdict
from brokers.tradovate.sim.hub import Hub
from brokers.tradovate.wire import FrameError, dumps, loads


@dataclass(frozen=True, slots=True)
class SimRequest:
    """One REST request as the server received it (the bearer token is not kept)."""

    method: str
    path: str
    body: Any
    user_id: int | None
    at_ns: int  # time.perf_counter_ns() on arrival


def json_response(data: Any, status: int = 200) -> Response:
    if data is None:
        return Response(status_code=status)
    return Response(dumps(data), status_code=status, media_type="application/json")


class SimServer:
    def __init__(
        self,
        exchange: SimExchange,
        auth: SimAuth,
        faults: Faults,
        heartbeat_s: float = 2.5,
        client_timeout_s: float | None = 10.0,
    ) -> None:
        self.exchange = exchange
        self.auth = auth
        self.faults = faults
        self.hub = Hub(
            exchange,
            auth,
            faults,
            self._rest_call,
            heartbeat_s,
            record=self._record,
            client_timeout_s=client_timeout_s,
        )
        self.requests: list[SimRequest] = []
        self.request_hook: Callable[[SimRequest], None] | None = None
        self.app = Starlette(
            routes=[
                Route("/oauth", self._authorize_page, methods=["GET"]),
                Route("/oauth/approve", self._approve, methods=["POST"]),
                Route("/auth/oauthtoken", self._token, methods=["POST"]),
                WebSocketRoute("/v1/websocket", self._trading_socket),
                WebSocketRoute("/md/v1/websocket", self._md_socket),
                Route("/v1/{path:path}", self._rest, methods=["GET", "POST"]),
            ]
        )

    # -- OAuth -----------------------------------------------------------------------------------

    async def _authorize_page(self, request: Request) -> Response:
        params = request.query_params
        if params.get("response_type") != "code" or params.get("client_id") != self.auth.client_id:
            return HTMLResponse("<p>Unknown application or response type.</p>", status_code=400)
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(params.get(name, ""))}">'
            for name in ("client_id", "redirect_uri", "state")
        )
        buttons = "".join(
            f'<button name="user" value="{html.escape(u.name)}">Sign in as '
            f"{html.escape(u.name)}</button>"
            for u in self.exchange.users.values()
        )
        page = (
            "<!doctype html><title>Local Tradovate: authorize</title>"
            "<h1>Authorize the trade copier</h1>"
            f'<form method="post" action="/oauth/approve">{hidden}{buttons}'
            '<button name="deny" value="1">Deny</button></form>'
        )
        return HTMLResponse(page)

    async def _approve(self, request: Request) -> Response:
        form = _form(await request.body())
        redirect = form.get("redirect_uri", "")
        if not redirect:
            return HTMLResponse("<p>No redirect_uri.</p>", status_code=400)
        back = {"state": form.get("state", "")}
        if form.get("deny"):
            back["error"] = "access_denied"
        else:
            try:
                user = self.exchange.user(form.get("user", ""))
                back["code"] = self.auth.new_code(user.id, form.get("client_id", ""), redirect)
            except Exception:
                return HTMLResponse("<p>Unknown user or application.</p>", status_code=400)
        separator = "&" if "?" in redirect else "?"
        return RedirectResponse(f"{redirect}{separator}{urlencode(back)}", status_code=302)

    async def _token(self, request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                fields = loads(raw)
            except FrameError:
                fields = None
            if not isinstance(fields, dict):
                return json_response({"error": "invalid_request"}, 400)
        else:
            fields = _form(raw)
        user = self.auth.code_user(str(fields.get("code", "")))
        self._record(request.method, "auth/oauthtoken", {"grant_type": "[hidden]"}, user)
        if user is not None:
            verdict = self.faults.check(user, "auth/oauthtoken", fields.get("p-ticket"))
            if not verdict.serve:
                return _http_fault(verdict)
        try:
            return json_response(self.auth.exchange(fields))
        except AuthFailure as failure:
            return json_response(
                {"error": failure.error, "error_description": failure.description}, 400
            )

    # -- REST ------------------------------------------------------------------------------------

    async def _rest(self, request: Request) -> Response:
        path = request.path_params["path"].lower().strip("/")
        if path == "auth/oauthtoken":
            return await self._token(request)
        token = _bearer(request)
        user = self.auth.user_of(token) if token else None
        body: Any = None
        if request.method == "POST":
            try:
                body = loads(await request.body())
            except FrameError:
                body = "[not JSON]"
        self._record(request.method, path, dict(body) if isinstance(body, dict) else body, user)
        if user is None:
            return Response(status_code=401)
        ticket = (body if isinstance(body, dict) else dict(request.query_params)).get("p-ticket")
        verdict = self.faults.check(user, path, ticket)
        if not verdict.serve:
            return _http_fault(verdict)
        if path == "auth/renewaccesstoken":
            renewed = self.auth.renew(token or "")
            return Response(status_code=401) if renewed is None else json_response(renewed)
        if isinstance(body, dict):
            body.pop("p-ticket", None)
        status, data = api.handle(self.exchange, user, path, request.url.query, body)
        if verdict.corrupt:
            return Response('{"orderId": 1', media_type="application/json")
        return json_response(data, status)

    async def _rest_call(self, user: int, endpoint: str, query: str, body: Any) -> tuple[int, Any]:
        """A REST endpoint requested on the trading socket: the same faults, the same answers."""
        path = endpoint.lower().strip("/")
        self._record("WS", path, dict(body) if isinstance(body, dict) else body, user)
        ticket = body.get("p-ticket") if isinstance(body, dict) else None
        verdict = self.faults.check(user, path, ticket, socket=True)
        if verdict.silent:
            return 0, None  # no answer at all
        if verdict.status is not None:
            return verdict.status, verdict.body
        if verdict.body is not None:
            return 200, verdict.body
        if isinstance(body, dict):
            body.pop("p-ticket", None)
        status, data = api.handle(self.exchange, user, path, query, body)
        return (200, '{"orderId": 1') if verdict.corrupt else (status, data)

    def _record(self, method: str, path: str, body: Any, user: int | None) -> None:
        entry = SimRequest(method, path, body, user, time.perf_counter_ns())
        self.requests.append(entry)
        if self.request_hook is not None:
            self.request_hook(entry)

    # -- sockets ---------------------------------------------------------------------------------

    async def _trading_socket(self, websocket: WebSocket) -> None:
        await self.hub.serve(websocket, "trading")

    async def _md_socket(self, websocket: WebSocket) -> None:
        await self.hub.serve(websocket, "md")


def _http_fault(verdict: Verdict) -> Response:
    """A fault in place of an HTTP answer: a status (429 and 423 with an empty body, as
    Tradovate's), or a body (a penalty ticket, a planned answer)."""
    if verdict.status is not None:
        return json_response(verdict.body, verdict.status)
    if verdict.silent:
        return Response(status_code=504)  # an HTTP request always gets something
    return json_response(verdict.body)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def _form(raw: bytes) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
