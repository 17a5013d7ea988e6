"""The control API as an ASGI app (Starlette), served inside the engine's trio loop.

Routes come from the operation table; every handler's failures become a JSON problem (404 for
an unknown id, 409 for a command the rules forbid, 422 for a wrong field...), and an unexpected
one becomes a 500 with a log line — never a dead engine. The Cockpit page and its files are
served from ``engine/api/static`` with no build step.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.auth import bearer_ok, is_public
from engine.api.context import ApiContext, Stopping
from engine.api.errors import ApiError, problem
from engine.api.openapi import build_openapi
from engine.api.operations import Operation
from engine.api.routes import (
    accounts,
    blackouts,
    connections,
    groups,
    paper,
    profiles,
    records,
    reports,
    sync,
    system,
)
from engine.core.topology import CommandRefused, UnknownId
from engine.storage.durability import NotDurable

log = structlog.get_logger("engine.api")

OPERATIONS: list[Operation] = [
    *connections.OPERATIONS,
    *accounts.OPERATIONS,
    *profiles.OPERATIONS,
    *blackouts.OPERATIONS,
    *groups.OPERATIONS,
    *records.OPERATIONS,
    *reports.OPERATIONS,
    *system.OPERATIONS,
    *paper.OPERATIONS,
    *sync.OPERATIONS,
]
STATIC = Path(str(resources.files("engine.api") / "static"))
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def _endpoint(op: Operation, ctx: ApiContext) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            response = await op.handler(request, ctx)
        except ApiError as error:
            return error.response()
        except UnknownId as error:
            return problem(404, "not_found", str(error))
        except CommandRefused as error:
            return problem(409, "refused", str(error))
        except Stopping:
            return problem(503, "stopping", "the engine is stopping and takes no more commands")
        except NotDurable as error:
            return problem(503, "not_durable", f"{error}; try again once it is healthy")
        except Exception:
            log.exception("api request failed", method=op.method, path=op.path)
            return problem(500, "internal", "the engine could not handle this request")
        if op.command and request.method != "GET":
            log.info(
                "api command",
                method=request.method,
                path=request.url.path,
                status=response.status_code,
            )
        return response

    endpoint.__name__ = op.operation_id
    return endpoint


def build_app(ctx: ApiContext) -> ASGIApp:
    routes: list[Any] = [
        Route(op.path, _endpoint(op, ctx), methods=[op.method]) for op in OPERATIONS
    ]
    document = build_openapi(OPERATIONS, ctx.version)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def cockpit(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    routes += [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/", cockpit, methods=["GET"]),
        Route("/index.html", cockpit, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error},
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return Guard(app, ctx)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = {
        404: f"no such path: {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    return problem(exc.status_code, code, message, headers=exc.headers)


class Guard:
    """Bearer authentication for everything but the page and the OAuth callback; security
    headers; counts requests for the metrics. Plain ASGI, so streams pass through untouched."""

    def __init__(self, app: ASGIApp, ctx: ApiContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        status_seen = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = int(message["status"])
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                message = {**message, "headers": headers}
            await send(message)

        try:
            header = self._authorization(scope)
            if not (is_public(path) or path == "/openapi.json") and not bearer_ok(
                header, self.ctx.token
            ):
                response = problem(
                    401,
                    "unauthorized",
                    (
                        "this call needs Authorization: Bearer <token>"
                        if not (header or "").strip()
                        else "token not accepted: it is not this engine's"
                    )
                    + " (the token is in the data directory's api.token)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send_with_headers)
                return
            await self.app(scope, receive, send_with_headers)
        finally:
            metrics = self.ctx.metrics
            if metrics is not None:
                metrics.http.labels(
                    method if len(method) <= 8 else "other", f"{status_seen // 100}xx"
                ).inc()

    @staticmethod
    def _authorization(scope: Scope) -> str | None:
        """The request's ``Authorization`` header; ``None`` when it sent none."""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                return str(value.decode("latin-1"))
        return None


__all__ = ["OPERATIONS", "STATIC", "Guard", "build_app"]
