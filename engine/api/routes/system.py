"""The engine as a whole: status, Flatten All, the live event stream, metrics, and the OAuth
callback the broker's page sends the browser to."""

from __future__ import annotations

import html

import structlog
import trio
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from brokers.base import AuthorizationError
from engine.api import schemas, views
from engine.api.context import ApiContext
from engine.api.errors import ApiError
from engine.api.events import EventStream
from engine.api.operations import Operation, Query, json_of
from engine.app.authorizations import OAuthStateError

log = structlog.get_logger("engine.api")
EXCHANGE_TIMEOUT = 30.0  # seconds the broker gets to exchange a code


def _health(ctx: ApiContext) -> schemas.Health:
    health = ctx.engine.health()
    return schemas.Health(
        ok=health.ok,
        reason=health.reason,
        since=health.since.isoformat() if health.since is not None else None,
    )


async def status(request: Request, ctx: ApiContext) -> Response:
    connections, accounts, groups = views.counts(ctx.engine)
    return json_of(
        schemas.Status(
            version=ctx.version,
            started_at=(ctx.started_at or ctx.clock.now()).isoformat(),
            now=ctx.clock.now().isoformat(),
            stopping=not ctx.accepting,
            health=_health(ctx),
            connections=connections,
            accounts=accounts,
            groups=groups,
            brokers=sorted(ctx.engine.brokers),
            api_url=ctx.public_url,
        )
    )


async def healthz(request: Request, ctx: ApiContext) -> Response:
    """200 while the engine can make its state durable and is not stopping, else 503 with
    the reason: for a service manager's or a load balancer's health check. Answered on the
    trio thread from memory, so a busy engine still answers."""
    health = _health(ctx)
    if health.ok and not ctx.accepting:
        health = schemas.Health(ok=False, reason="the engine is stopping")
    return json_of(health, 200 if health.ok else 503)


async def flatten_all(request: Request, ctx: ApiContext) -> Response:
    """S6: every account; no risk status changes."""
    await ctx.command(ctx.engine.flatten_all)
    return json_of(schemas.Done(message="flattening every account"), 202)


async def events(request: Request, ctx: ApiContext) -> Response:
    """Server-Sent Events: activity, order, order_status, fill. A reconnecting client sends
    ``Last-Event-ID`` (browsers do) and gets what it missed, if still in the short history. A
    client that falls 500 events behind is cut (its stream ends) and its slot freed."""
    raw = request.headers.get("last-event-id") or request.query_params.get("last_id")
    last_id: int | None = None
    if raw is not None:
        try:
            last_id = int(raw)
        except ValueError:
            raise ApiError(422, "invalid", "last_id: expected an integer", "last_id") from None
    peer = request.client
    subscription = ctx.hub.subscribe(last_id, f"{peer.host}:{peer.port}" if peer else "")
    if subscription is None:
        raise ApiError(503, "unavailable", "the event stream is closed or full; retry later")
    return EventStream(ctx.hub, subscription)  # type: ignore[return-value]


async def metrics(request: Request, ctx: ApiContext) -> Response:
    if ctx.metrics is None:
        raise ApiError(404, "not_found", "metrics are not enabled")
    text = await ctx.read(ctx.metrics.render)
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


# --- OAuth (S1.2) -------------------------------------------------------------------------------


def _page(status: int, title: str, text: str, *, back: bool = True) -> HTMLResponse:
    refresh = '<meta http-equiv="refresh" content="3; url=/">' if back else ""
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>{refresh}"
        "<link rel='stylesheet' href='/static/cockpit.css'></head>"
        f"<body class='callback'><main><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p><p><a href='/'>Back to the Cockpit</a></p></main></body></html>"
    )
    return HTMLResponse(
        body,
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


async def oauth_callback(request: Request, ctx: ApiContext) -> Response:
    """The broker sends the browser here with ``code`` and ``state``. The ``state`` must be one
    this engine issued, unused and unexpired, before the code is exchanged. Neither value is
    ever logged."""
    params = request.query_params
    state, code = params.get("state"), params.get("code")
    if not state:
        return _page(400, "Authorization refused", "The broker's answer has no state value.")
    try:
        connection = ctx.oauth.consume(state)
    except OAuthStateError as error:
        log.warning("oauth callback refused", why=error.why.value)
        return _page(400, "Authorization refused", str(error), back=False)
    if params.get("error"):
        reason = params.get("error_description") or params.get("error") or ""
        log.warning("oauth refused by the broker", connection=connection)
        return _page(400, "Authorization refused", f"The broker said: {reason[:200]}")
    if not code:
        return _page(400, "Authorization refused", "The broker's answer has no code.")
    config = next((c for c in ctx.engine.connections() if c.id == connection), None)
    broker = ctx.engine.brokers.get(config.broker) if config is not None else None
    if config is None or broker is None:
        return _page(404, "Authorization refused", f"Connection {connection} no longer exists.")
    try:
        with trio.fail_after(EXCHANGE_TIMEOUT):
            await broker.exchange_code(connection, code, ctx.redirect_uri)
    except AuthorizationError as error:
        log.warning("oauth code exchange refused", connection=connection, reason=str(error))
        return _page(400, "Authorization refused", str(error))
    except trio.TooSlowError:
        log.warning("oauth code exchange timed out", connection=connection)
        return _page(504, "Authorization failed", "The broker did not answer in time; try again.")
    log.info("connection re-authorized", connection=connection)
    return _page(
        200,
        f"Connection {connection} re-authorized",
        "A fresh token was issued; the connection returns to connected and reconciles.",
    )


OPERATIONS = [
    Operation(
        "GET", "/api/status", status,
        "The engine: version, uptime, health, counts, stopping", "engine",
        response=schemas.Status,
    ),
    Operation(
        "GET", "/healthz", healthz,
        "Health check: 200 while state is durable and the engine runs, else 503 and why",
        "engine",
        response=schemas.Health, errors=(503,), public=True,
        description="No bearer token: it says whether the engine can make its state durable,"
        " and if not why and since when — nothing secret. 503 while the engine cannot (a"
        " full disk, an I/O error) or is stopping.",
    ),
    Operation(
        "POST", "/api/flatten", flatten_all, "Flatten All: every account (S6)", "engine",
        response=schemas.Done, status=202, command=True,
    ),
    Operation(
        "GET",
        "/api/events",
        events,
        "Live events (Server-Sent Events): activity, order, order_status, fill",
        "engine",
        media="text/event-stream",
        query=(Query("last_id", {"type": "integer", "minimum": 0}, "As Last-Event-ID"),),
        errors=(422, 503),
    ),
    Operation(
        "GET", "/metrics", metrics, "Prometheus metrics", "engine",
        media="text/plain",
    ),
    Operation(
        "GET",
        "/oauth/callback",
        oauth_callback,
        "Where the broker sends the browser back after authorization (S1.2)",
        "connections",
        media="text/html",
        query=(
            Query("code", {"type": "string"}),
            Query("state", {"type": "string"}),
            Query("error", {"type": "string"}),
            Query("error_description", {"type": "string"}),
        ),
        errors=(400, 404, 504),
        public=True,
        description="No bearer token: the single-use state guards it. An unknown, reused or"
        " expired state is refused with 400 before the broker is asked anything.",
    ),
]  # fmt: skip
