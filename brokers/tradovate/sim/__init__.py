"""A local Tradovate-compatible server, for tests, scenarios, the bench and demos.

    async with serve_sim(clock, users={"alice": ["ACC1", "ACC2"]}) as sim:
        settings = sim.settings(token_dir=data_dir / "tradovate")
        ...                                   # point a TradovateBroker at it
        sim.set_price("ESZ6", Decimal(5000))  # a quote on the md socket
        sim.trade("ACC1", "ESZ6", 2)          # the account's owner trades by hand
        sim.drop("alice")                     # an outage: sockets closed, new ones refused
        sim.restore("alice")

It listens on 127.0.0.1 on an ephemeral port (``sim.base_url``), runs in the caller's trio
loop, takes its time from ``clock`` (a virtual clock in the replay harness), and speaks the
protocol of ``../shared/spec/TRADOVATE.md``: the OAuth authorize page and token endpoint, the
REST endpoints, the trading and market-data WebSockets with their framing. Faults on demand:
penalty tickets, captchas, lock-outs (429), 401s, malformed answers, socket drops and silences,
token expiry.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from brokers.tradovate.settings import TradovateSettings
from brokers.tradovate.sim.auth import SimAuth
from brokers.tradovate.sim.exchange import SimError, SimExchange
from brokers.tradovate.sim.faults import Faults
from brokers.tradovate.sim.server import SimRequest, SimServer
from engine.clock import Clock, WallClock
from engine.instruments import ContractTable


def _urls(base_url: str) -> dict[str, str]:
    ws = "ws" + base_url.removeprefix("http")
    return {
        "rest_url": f"{base_url}/v1",
        "ws_url": f"{ws}/v1/websocket",
        "md_url": f"{ws}/md/v1/websocket",
        "auth_url": f"{base_url}/oauth",
    }


def sim_settings(
    base_url: str, client_id: str, client_secret: str, token_dir: Path, **overrides: Any
) -> TradovateSettings:
    """Adapter settings for the local server at ``base_url`` — known before it serves when its
    socket is bound beforehand (``serve_sim(listener=...)``), as the live engine does."""
    values: dict[str, Any] = {
        **_urls(base_url),
        "client_id": client_id,
        "client_secret": client_secret,
        "token_dir": token_dir,
    }
    values.update(overrides)
    return TradovateSettings(**values)


class RunningSim:
    """A served local Tradovate: its URLs, its state, and the controls tests and demos use."""

    def __init__(self, server: SimServer, base_url: str) -> None:
        self.server = server
        self.exchange = server.exchange
        self.auth = server.auth
        self.faults = server.faults
        self.base_url = base_url
        urls = _urls(base_url)
        self.rest_url = urls["rest_url"]
        self.ws_url = urls["ws_url"]
        self.md_url = urls["md_url"]
        self.auth_url = urls["auth_url"]
        self.client_id = server.auth.client_id
        self.client_secret = server.auth.client_secret

    def settings(self, token_dir: Path, **overrides: Any) -> TradovateSettings:
        """Adapter settings pointing at this server."""
        return sim_settings(
            self.base_url, self.client_id, self.client_secret, token_dir, **overrides
        )

    @property
    def requests(self) -> list[SimRequest]:
        return self.server.requests

    def requests_to(self, path: str) -> list[SimRequest]:
        return [r for r in self.server.requests if r.path == path.lower()]

    # -- the market and the accounts' owners -----------------------------------------------------

    def add_user(self, name: str, accounts: Iterable[str] = ()) -> None:
        self.exchange.add_user(name, accounts)

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.exchange.set_price(symbol, price)

    def trade(
        self, account: str, symbol: str, qty: int, fills: tuple[int, ...] | None = None
    ) -> int:
        return self.exchange.trade(account, symbol, qty, fills)

    def place_manual_working(self, account: str, symbol: str, qty: int) -> int:
        """A resting order the account's owner placed by hand (it never fills by itself)."""
        return self.exchange.place_manual_working(account, symbol, qty)

    def position(self, account: str, symbol: str) -> int:
        return self.exchange.position(account, symbol)

    def hold(self, user: str) -> None:
        self.exchange.hold(user)

    def release(self, user: str) -> None:
        self.exchange.release(user)

    def reject_next(self, user: str, count: int = 1) -> None:
        self.exchange.set_reject_next(user, count)

    # -- faults ------------------------------------------------------------------------------------

    def _user(self, name: str) -> int:
        return self.exchange.user(name).id

    def drop(self, user: str, *, outage: bool = True) -> None:
        """Close the user's sockets; with ``outage`` refuse new ones (and REST) until restore."""
        uid = self._user(user)
        self.faults.of(uid).outage = outage
        self.server.hub.drop(uid)

    def restore(self, user: str) -> None:
        self.faults.of(self._user(user)).outage = False

    def freeze(self, user: str) -> None:
        """The user's open sockets go silent (no frames, no heartbeats) without closing."""
        self.server.hub.freeze(self._user(user))

    def expire_token(self, user: str) -> None:
        """Every token of the user stops working; the sockets they authorized close."""
        self.auth.revoke_user(self._user(user))

    def penalize_next(self, user: str, count: int = 1, seconds: float = 0.2) -> None:
        faults = self.faults.of(self._user(user))
        faults.penalties += count
        faults.penalty_s = seconds

    def captcha_next(self, user: str) -> None:
        self.faults.of(self._user(user)).captcha += 1

    def lock_out(self, user: str, on: bool = True) -> None:
        self.faults.of(self._user(user)).locked_out = on

    def unauthorized_next(self, user: str, count: int = 1) -> None:
        self.faults.of(self._user(user)).unauthorized += count

    def corrupt_next(self, user: str, count: int = 1) -> None:
        self.faults.of(self._user(user)).corrupt += count

    def push_raw(self, user: str, text: str) -> None:
        self.server.hub.push_raw(self._user(user), text)

    def tickets_issued(self, user: str) -> int:
        return self.faults.of(self._user(user)).tickets_issued

    def sockets(self, user: str) -> int:
        return len(self.server.hub.of_user(self._user(user)))


@asynccontextmanager
async def serve_sim(
    clock: Clock | None = None,
    *,
    users: Mapping[str, Iterable[str]] | None = None,
    contracts: ContractTable | None = None,
    client_id: str = "local-client",
    client_secret: str | None = None,
    token_lifetime: timedelta = timedelta(minutes=80),
    heartbeat_s: float = 2.5,
    rate_limit: tuple[float, float] | None = None,
    penalty_s: float = 1.0,
    host: str = "127.0.0.1",
    port: int = 0,
    listener: socket.socket | None = None,
) -> AsyncIterator[RunningSim]:
    """Serve a local Tradovate in the current trio loop until the block ends.

    ``rate_limit`` is ``(burst, per_second)`` per user (none by default); over it a request gets
    a penalty ticket of ``penalty_s`` seconds. ``listener`` is a socket already bound and
    listening (then ``host`` and ``port`` are not used); the server takes it over and closes it."""
    clock = clock or WallClock()
    exchange = SimExchange(clock, contracts)
    for name, accounts in (users or {}).items():
        exchange.add_user(name, accounts)
    auth = SimAuth(
        clock, client_id, client_secret or secrets.token_urlsafe(24), token_lifetime=token_lifetime
    )
    faults = Faults(penalty_s=penalty_s)
    if rate_limit is not None:
        faults.burst, faults.per_s = rate_limit
    server = SimServer(exchange, auth, faults, heartbeat_s)
    config = Config()
    config.bind = [f"fd://{listener.detach()}" if listener is not None else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.05
    async with trio.open_nursery() as nursery:
        shutdown = trio.Event()
        app: Any = server.app  # Starlette is an ASGI app; hypercorn's type is narrower
        binds = await nursery.start(partial(serve, app, config, shutdown_trigger=shutdown.wait))
        try:
            yield RunningSim(server, binds[0])
        finally:
            for sock in list(server.hub.sockets):
                sock.scope.cancel()
            shutdown.set()


__all__ = ["RunningSim", "SimError", "SimExchange", "SimRequest", "serve_sim", "sim_settings"]
