"""What the control API's handlers share: the engine and the way to reach it from trio.

The actors run on threads; a handler never blocks the trio loop on them. Reads of the actors'
published views run on the loop (:meth:`ApiContext.view`: they never wait); reads of the store
on a worker thread (:meth:`ApiContext.read`); commands too, one at a time
(:meth:`ApiContext.command`), so two requests can never interleave their checks and changes of
the topology — the engine's commands are written to be called by one caller at a time, as the
replay harness calls them. Once the process is stopping, commands are refused (503).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import trio

from brokers.clock import Clock
from engine.api.events import EventHub
from engine.app.authorizations import OAuthStates
from engine.app.metrics import EngineMetrics
from engine.app.paper_desk import PaperDesk
from engine.core.engine import Engine

T = TypeVar("T")


class Stopping(Exception):
    """The engine is shutting down and takes no more commands."""


@dataclass
class ApiContext:
    engine: Engine
    clock: Clock
    token: str
    hub: EventHub
    oauth: OAuthStates
    metrics: EngineMetrics | None = None
    public_url: str = "http://127.0.0.1"
    max_body_bytes: int = 64 * 1024
    version: str = "0"
    started_at: datetime | None = None
    desk: PaperDesk | None = None  # the paper trading desk, on a paper-broker engine only
    accepting: bool = True
    _lock: trio.Lock | None = field(default=None, repr=False)

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}/oauth/callback"

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read that may wait (the store's records) on a worker thread."""
        return await trio.to_thread.run_sync(fn, *args)

    def view(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read of the actors' published views and the setup, here on the loop: it never
        waits (a lookup per actor, ``engine/host/views.py``), and a hop to a worker thread
        would cost more than the read itself when the actors' threads are busy."""
        return fn(*args)

    async def command(self, fn: Callable[..., T], *args: Any) -> T:
        """Run an engine command on a worker thread, one command at a time."""
        if not self.accepting:
            raise Stopping
        if self._lock is None:
            self._lock = trio.Lock()
        async with self._lock:
            if not self.accepting:
                raise Stopping
            return await trio.to_thread.run_sync(fn, *args)

    def stop_accepting(self) -> None:
        self.accepting = False


__all__ = ["ApiContext", "Stopping"]
