"""Serving the API: a listening socket made before the engine starts (so a busy port is a clear
start-up error, not a half-started engine), then hypercorn's trio worker on it, inside the
engine's nursery, until the engine asks it to stop (graceful: open requests get a moment).

The bearer token and every command cross the connection: an address other than loopback is
served over TLS (hypercorn's, from a certificate and key file), or over plain HTTP only when the
operator says so (``--insecure-http``), with a warning at every start; otherwise the start is
refused (:func:`check_exposure`)."""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app
from starlette.types import ASGIApp

GRACEFUL_SECONDS = 2.0
# A client that takes nothing of what it is sent for this long is dropped by the kernel
# (TCP_USER_TIMEOUT, on every connection the socket accepts): an event-stream client that
# never reads must not hold its connection, and the task writing to it, for ever.
STALLED_CLIENT_SECONDS = 10.0


class BindError(Exception):
    """A server (the API, the local Tradovate) cannot listen where it was asked to."""


@dataclass(frozen=True)
class Tls:
    """The API's certificate chain and private key (PEM files)."""

    cert: Path
    key: Path


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only: ``localhost`` or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, tls: Tls | None, insecure_http: bool) -> bool:
    """Whether the API may listen on ``host`` as asked; a one-line :class:`BindError` if not.
    ``True`` when it is plain HTTP beyond this machine (said by the caller at every start)."""
    if tls is not None or is_loopback(host):
        return False
    if insecure_http:
        return True
    raise BindError(
        f"api.host {host!r} is not a loopback address: the API token and every command would"
        " cross the network unencrypted; serve TLS (--tls-cert FILE --tls-key FILE, or [api]"
        " tls_cert and tls_key), or keep 127.0.0.1 behind a TLS proxy (docs/operations.md,"
        ' "TLS and exposure"), or accept plain HTTP with --insecure-http'
    )


def tls_context(tls: Tls) -> ssl.SSLContext:
    """Check the certificate and key load together, before anything starts (a one-line
    :class:`BindError` naming the file otherwise); the server builds its own from them."""
    for path in (tls.cert, tls.key):
        if not path.is_file():
            raise BindError(f"TLS: {path}: no such file")
    if stat.S_IMODE(tls.key.stat().st_mode) & stat.S_IROTH:
        raise BindError(f"TLS: {tls.key}: the private key is readable by anyone (chmod 600)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile=tls.cert, keyfile=tls.key)
    except (ssl.SSLError, OSError) as error:
        reason = getattr(error, "reason", None) or error.strerror or str(error)
        raise BindError(
            f"TLS: cannot use {tls.cert} with {tls.key}: {reason}"
            " (expected a PEM certificate chain and its PEM private key, without a passphrase)"
        ) from None
    return context


def listen(host: str, port: int, who: str = "the API") -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port); a one-line
    :class:`BindError` naming ``who`` if it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux; inherited by accepted connections
            stalled = round(STALLED_CLIENT_SECONDS * 1000)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, stalled)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise BindError(f"{who} cannot listen on {where}: {error.strerror or error}") from None
    return sock


def url_of(sock: socket.socket, scheme: str = "http") -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


class ApiServer:
    def __init__(self, sock: socket.socket, tls: Tls | None = None) -> None:
        self.sock = sock
        self.tls = tls
        self.url = url_of(sock, "https" if tls is not None else "http")
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
        if self.tls is not None:
            config.certfile, config.keyfile = str(self.tls.cert), str(self.tls.key)
            sockets = Sockets([self.sock], [], [])
        else:
            sockets = Sockets([], [self.sock], [])
        try:
            await worker_serve(
                wrap_app(cast(Any, app), config.wsgi_max_body_size, "asgi"),
                config,
                sockets=sockets,
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


__all__ = [
    "ApiServer",
    "BindError",
    "Tls",
    "check_exposure",
    "is_loopback",
    "listen",
    "tls_context",
    "url_of",
]
