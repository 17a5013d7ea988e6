"""A minimal loopback OAuth callback, for when no control API serves one (S1.2).

    async with serve_callback(broker) as callback:
        url = callback.begin("prop")       # send the user's browser here
        ...                                # Tradovate sends it back to callback.redirect_uri
        outcome = await callback.outcome(state)

``begin`` draws a random single-use ``state`` for the connection; the callback refuses a
``state`` it did not issue or that was used already, before any code is exchanged, and
exchanges the code of a good one with :meth:`TradovateBroker.exchange_code`. The pages it shows
never contain the code, the state or a token. The engine's control API (when it runs) does the
same with its own endpoint; this one is for tests, the replay harness and setups without it.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from brokers.base import AuthorizationError, Broker


@dataclass
class _Pending:
    connection: str
    done: trio.Event = field(default_factory=trio.Event)
    error: str | None = None


class StateBook:
    """Single-use ``state`` values, each bound to the connection it was drawn for."""

    def __init__(self) -> None:
        self._open: dict[str, _Pending] = {}
        self._used: dict[str, _Pending] = {}

    def issue(self, connection: str) -> str:
        state = secrets.token_urlsafe(24)
        self._open[state] = _Pending(connection)
        return state

    def consume(self, state: str) -> _Pending | None:
        """The connection of a state issued and not used yet (it is used from now on)."""
        pending = self._open.pop(state, None)
        if pending is not None:
            self._used[state] = pending
        return pending

    def find(self, state: str) -> _Pending | None:
        return self._open.get(state) or self._used.get(state)


class CallbackListener:
    def __init__(self, broker: Broker, base_url: str) -> None:
        self.broker = broker
        self.base_url = base_url
        self.redirect_uri = f"{base_url}/callback"
        self.states = StateBook()
        self.refused = 0  # callbacks refused for their state (for tests)

    def begin(self, connection: str) -> str:
        """The authorize URL for ``connection`` with a fresh single-use state."""
        state = self.states.issue(connection)
        return self.broker.authorize_url(connection, state, self.redirect_uri)

    async def outcome(self, state: str) -> str | None:
        """Wait for the callback of ``state``: ``None`` when authorized, else why not."""
        pending = self.states.find(state)
        if pending is None:
            return "unknown state"
        await pending.done.wait()
        return pending.error

    async def handle(self, request: Request) -> HTMLResponse:
        params = request.query_params
        pending = self.states.consume(params.get("state", ""))
        if pending is None:
            self.refused += 1
            return _page("This authorization link is unknown or was already used.", 400)
        if params.get("error") or not params.get("code"):
            pending.error = f"authorization not granted ({params.get('error', 'no code')})"
            pending.done.set()
            return _page("The authorization was not granted.", 400)
        try:
            await self.broker.exchange_code(
                pending.connection, params.get("code", ""), self.redirect_uri
            )
        except AuthorizationError as error:
            pending.error = str(error)
            pending.done.set()
            return _page(f"Authorization failed: {error}", 400)
        pending.done.set()
        return _page(f"Connection {pending.connection} is authorized. You can close this page.")


def _page(text: str, status: int = 200) -> HTMLResponse:
    body = html.escape(text)
    return HTMLResponse(f"<!doctype html><title>Authorization</title><p>{body}</p>", status)


@asynccontextmanager
async def serve_callback(broker: Broker, port: int = 0) -> AsyncIterator[CallbackListener]:
    """Serve ``/callback`` on 127.0.0.1 in the current trio loop until the block ends."""
    holder: list[CallbackListener] = []

    async def callback(request: Request) -> HTMLResponse:
        return await holder[0].handle(request)

    app: Any = Starlette(routes=[Route("/callback", callback, methods=["GET"])])
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.05
    async with trio.open_nursery() as nursery:
        shutdown = trio.Event()
        binds = await nursery.start(partial(serve, app, config, shutdown_trigger=shutdown.wait))
        holder.append(CallbackListener(broker, binds[0]))
        try:
            yield holder[0]
        finally:
            shutdown.set()
