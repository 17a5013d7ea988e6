"""Serving the API: a listening socket made before the engine starts (so a busy port is a clear
start-up error, not a half-started engine), then hypercorn's trio worker on it, inside the
engine's nursery, until the engine asks it to stop (graceful: open requests get a moment)."""

from __future__ import annotations

import logging
import socket
from typing import Any, cast

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app
from starlette.types import ASGIApp

GRACEFUL_SECONDS = 2.0


class BindError(Exception):
    """A server (the API, the local Tradovate) cannot listen where it was asked to."""


def listen(host: str, port: int, who: str = "the API") -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port); a one-line
    :class:`BindError` naming ``who`` if it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise BindError(f"{who} cannot listen on {where}: {error.strerror or error}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class ApiServer:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.url = url_of(sock)
        self._stop = trio.Event()
        self._served = False

    async def serve(self, app: ASGIApp) -> None:
        """Serve until :meth:`stop`; the socket is closed when it returns."""
        self._served = True
        config = HypercornConfig()
        config.accesslog = None  # the callback's query string holds a code: never log URLs
        errors = logging.getLogger("engine.http")
        errors.setLevel(logging.WARNING)  # not its "Running on ...": the engine says where
        config.errorlog = errors
        config.graceful_timeout = GRACEFUL_SECONDS
        config.include_server_header = False
        try:
            await worker_serve(
                wrap_app(cast(Any, app), config.wsgi_max_body_size, "asgi"),
                config,
                sockets=Sockets([], [self.sock], []),
                shutdown_trigger=self._stop.wait,
            )
        finally:
            self.sock.close()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Close the socket of a server that never served (a start that failed)."""
        if not self._served:
            self.sock.close()


__all__ = ["ApiServer", "BindError", "listen", "url_of"]
