"""A local Tradovate-compatible server, for tests, scenarios, the bench and demos.

    async with serve_sim(clock, users={"alice": ["ACC1", "ACC2"]}) as sim:
        settings = sim.settings(token_dir=data_dir / "tradovate")
        ...                                   # point a TradovateBroker at it
        sim.set_price("ESZ6", Decimal(5000))  # a quote on the md socket
        sim.trade("ACC1", "ESZ6", 2)          # the account's owner trades by hand
        placed = sim.place_working("ACC1", "ESZ6", 1, OrderType.LIMIT, price=Decimal(4990),
                                   bracket_stop=Decimal(4980), bracket_target=Decimal(5010))
        sim.modify("ACC1", placed.stop, stop=Decimal(4985))
        sim.drop("alice")                     # an outage: sockets closed, new ones refused
        sim.restore("alice")

It listens on 127.0.0.1 on an ephemeral port (``sim.base_url``), runs in the caller's trio
loop, takes its time from ``clock`` (a virtual clock in the replay harness), and speaks the
protocol of ``../shared/spec/TRADOVATE.md``: the OAuth authorize page and token endpoint, the
REST endpoints, the trading and market-data WebSockets with their framing. Faults on demand, on
any endpoint and on both sockets (:class:`RunningSim`'s controls): penalty tickets (also in a
socket reply's ``d``), captchas, 423, lock-outs (HTTP 429, ``{"s":429}``), 401s, answers in
place of the real one and no answer at all, ``failureReason: "Success"`` and every refusal
shape, ``props`` entities as arrays, fills pushed again and withdrawn (``active: false``), split
sync answers and sync answers missing lists, ``c[code,"reason"]`` closes and ``shutdown``
events, refused quote subscriptions, a third session revoking the oldest, socket drops and
silences, token expiry; sockets whose client heartbeat stops are closed.
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

from brokers.base import OrderType, PlacedOrder, TimeInForce, WorkingOrder
from brokers.clock import Clock, WallClock
from brokers.instruments import ContractTable
from brokers.tradovate.settings import TradovateSettings
from brokers.tradovate.sim import working
from brokers.tradovate.sim.auth import SimAuth
from brokers.tradovate.sim.book import SimError
from brokers.tradovate.sim.exchange import SimExchange
from brokers.tradovate.sim.faults import Faults, endpoint_of
from brokers.tradovate.sim.hub import NOT_ENTITLED, SyncShape
from brokers.tradovate.sim.server import SimRequest, SimServer


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

    # The owner's working orders, as the trader places them in the Tradovate app (S8): the same
    # calls as the paper broker's. Ids are the server's order ids, as strings.

    def place_working(
        self,
        account: str,
        symbol: str,
        qty: int,
        order_type: OrderType,
        *,
        price: Decimal | None = None,
        stop: Decimal | None = None,
        tif: TimeInForce = TimeInForce.DAY,
        bracket_stop: Decimal | None = None,
        bracket_target: Decimal | None = None,
    ) -> PlacedOrder:
        """A limit, stop or stop-limit order (or a market one), with a bracket when
        ``bracket_stop``/``bracket_target`` are given (``placeoso``)."""
        return working.place_owner(
            self.exchange,
            account,
            symbol,
            qty,
            order_type,
            price=price,
            stop=stop,
            tif=tif,
            bracket_stop=bracket_stop,
            bracket_target=bracket_target,
        )

    def place_oco(
        self,
        account: str,
        symbol: str,
        qty: int,
        *,
        stop: Decimal,
        target: Decimal,
        tif: TimeInForce = TimeInForce.DAY,
    ) -> PlacedOrder:
        """An OCO pair (``placeoco``): a stop at ``stop`` and a limit at ``target``, both of
        ``qty``'s side; ``entry`` is ``None``."""
        return working.place_owner_oco(
            self.exchange, account, symbol, qty, stop=stop, target=target, tif=tif
        )

    def modify(
        self,
        account: str,
        order_id: str,
        *,
        qty: int | None = None,
        price: Decimal | None = None,
        stop: Decimal | None = None,
    ) -> None:
        """Change a working order (``qty`` the new total); ``None`` keeps a value."""
        working.modify_owner(self.exchange, account, order_id, qty=qty, price=price, stop=stop)

    def cancel(self, account: str, order_id: str) -> None:
        """Cancel an order: an entry's suspended legs and an OCO sibling go with it."""
        working.cancel_owner(self.exchange, account, order_id)

    def working_orders(self, account: str) -> list[WorkingOrder]:
        return working.working_orders(self.exchange, account)

    def hold(self, user: str) -> None:
        self.exchange.hold(user)

    def release(self, user: str) -> None:
        self.exchange.release(user)

    def reject_next(self, user: str, count: int = 1, shape: str = "failureReason") -> None:
        """The next ``count`` orders are refused, worded as ``shape`` (``failureReason``,
        ``failureText``, ``errorText``, ``violations``)."""
        self.exchange.set_reject_next(user, count, shape)

    # -- faults ------------------------------------------------------------------------------------
    # Each planned fault takes an ``endpoint`` (a REST path such as ``"order/placeorder"``,
    # ``"auth/renewaccesstoken"``, ``"auth/oauthtoken"``, or a socket request:
    # ``"user/syncrequest"``, ``"md/subscribeQuote"``, ``"authorize"``); without one it is for the
    # user's next request of any kind but ``authorize``.

    def _user(self, name: str) -> int:
        return self.exchange.user(name).id

    def fail_next(
        self,
        user: str,
        kind: str,
        *,
        endpoint: str | None = None,
        count: int = 1,
        seconds: float = 0.2,
        status: int = 200,
        data: Any = None,
    ) -> None:
        """Plan a fault (:mod:`.faults`: ``ticket``, ``captcha``, ``throttle`` (423),
        ``lockout`` (429), ``unauthorized`` (401), ``corrupt``, ``answer``, ``silence``)."""
        self.faults.plan(
            self._user(user),
            kind,
            endpoint=endpoint,
            count=count,
            seconds=seconds,
            status=status,
            data=data,
        )

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

    def sign_in_elsewhere(self, user: str) -> None:
        """The user signs in with another app: one session more; past two, the oldest closes
        (its tokens answer 401, its sockets close)."""
        self.auth.sign_in_elsewhere(self._user(user))

    def refuse_renewal(self, user: str, on: bool = True) -> None:
        """``auth/renewaccesstoken`` answers 401 for the user's tokens."""
        if on:
            self.auth.refuse_renewal.add(self._user(user))
        else:
            self.auth.refuse_renewal.discard(self._user(user))

    def penalize_next(
        self, user: str, count: int = 1, seconds: float = 0.2, endpoint: str | None = None
    ) -> None:
        """Penalty tickets (``p-time`` ``seconds``) for the next requests."""
        self.fail_next(user, "ticket", endpoint=endpoint, count=count, seconds=seconds)

    def captcha_next(self, user: str, endpoint: str | None = None) -> None:
        """A penalty ticket asking for a captcha."""
        self.fail_next(user, "captcha", endpoint=endpoint)

    def throttle_next(self, user: str, count: int = 1, endpoint: str | None = None) -> None:
        """HTTP 423 (``{"s":423}`` on a socket): a lock-out is near."""
        self.fail_next(user, "throttle", endpoint=endpoint, count=count)

    def lock_out(self, user: str, on: bool = True, *, endpoint: str | None = None) -> None:
        """HTTP 429 with an empty body (``{"s":429}`` on a socket): with ``endpoint``, that
        request is answered 429 once; without, every request of the user until ``on=False``."""
        if endpoint is not None:
            if on:
                self.fail_next(user, "lockout", endpoint=endpoint)
            return
        self.faults.of(self._user(user)).locked_out = on

    def unauthorized_next(self, user: str, count: int = 1, endpoint: str | None = None) -> None:
        """HTTP 401 (``{"s":401}`` on a socket; on ``authorize``, the token refused)."""
        self.fail_next(user, "unauthorized", endpoint=endpoint, count=count)

    def corrupt_next(self, user: str, count: int = 1, endpoint: str | None = None) -> None:
        """The request is served; its answer is not JSON (or, on a socket, a string)."""
        self.fail_next(user, "corrupt", endpoint=endpoint, count=count)

    def answer_next(
        self, user: str, endpoint: str, data: Any, status: int = 200, count: int = 1
    ) -> None:
        """``endpoint`` answers ``(status, data)`` instead of being served (a string ``d``, an
        error, a reply missing what it should hold)."""
        self.fail_next(user, "answer", endpoint=endpoint, count=count, status=status, data=data)

    def silence_next(self, user: str, endpoint: str, count: int = 1) -> None:
        """A socket request that gets no answer at all (a time-out)."""
        self.fail_next(user, "silence", endpoint=endpoint, count=count)

    def success_reason(self, user: str, on: bool = True) -> None:
        """Order answers say ``{"orderId": ..., "failureReason": "Success"}``."""
        self.exchange.set_success_reason(user, on)

    def entity_arrays(self, user: str, on: bool = True) -> None:
        """``props`` pushes carry ``entity`` as an array: the entities of one type and event an
        operation caused go in one event, all of its events in one frame."""
        hub = self.server.hub
        if on:
            hub.entity_arrays.add(self._user(user))
        else:
            hub.entity_arrays.discard(self._user(user))

    def push_fill_again(self, *fill_ids: int) -> None:
        """Fills pushed again, unchanged, as ``Updated`` (with ``entity_arrays``: in one
        event)."""
        self.exchange.push_fill_again(*fill_ids)

    def withdraw_fill(self, fill_id: int) -> None:
        """A fill withdrawn by the broker: ``Updated`` with ``active: false``, position fixed."""
        self.exchange.withdraw_fill(fill_id)

    def fill_ids(self, account: str) -> list[int]:
        """The account's fills, oldest first."""
        account_id = self.exchange.account(account).id
        return [f.id for f in self.exchange.fills if f.account_id == account_id]

    def split_sync(self, user: str, parts: int = 3) -> None:
        """The user's sync answers come as ``parts`` replies with the request's id (1: one)."""
        self.server.hub.sync_shapes.setdefault(self._user(user), SyncShape()).parts = parts

    def drop_sync_keys(self, user: str, keys: Iterable[str], count: int = 1) -> None:
        """The user's next ``count`` sync answers lack these lists."""
        shape = self.server.hub.sync_shapes.setdefault(self._user(user), SyncShape())
        shape.drop.append((frozenset(keys), count))

    def close_socket(
        self, user: str, code: int = 1000, reason: str = "Closed", kind: str | None = "trading"
    ) -> int:
        """End the user's sockets (``kind``: trading, md, or ``None`` for both) with
        ``c[code,"reason"]``; how many were open."""
        return self.server.hub.close(self._user(user), code, reason, kind)

    def shutdown(
        self,
        user: str,
        reason_code: str = "Maintenance",
        reason: str = "The server is going down for maintenance",
        kind: str | None = "trading",
    ) -> int:
        """A ``shutdown`` event (``Maintenance``, ``ConnectionQuotaReached``,
        ``IPQuotaReached``) on the user's sockets, which then close; how many were open."""
        return self.server.hub.shutdown(self._user(user), reason_code, reason, kind)

    def refuse_quotes(
        self, symbol: str, on: bool = True, *, status: int = 200, data: Any = None
    ) -> None:
        """``md/subscribeQuote`` for ``symbol`` is refused (by default: not entitled to the
        exchange's data, as an ``errorText``), until ``on=False``."""
        if on:
            answer = {"errorText": NOT_ENTITLED} if data is None else data
            self.server.hub.refused_quotes[symbol] = (status, answer)
        else:
            self.server.hub.refused_quotes.pop(symbol, None)

    def authorized_at(self, user: str, kind: str = "trading") -> list[float]:
        """When (trio time) the user's sockets of ``kind`` were authorized."""
        uid = self._user(user)
        return [at for who, k, at in self.server.hub.authorized if who == uid and k == kind]

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
    ip_rate_limit: Mapping[str, tuple[float, float]] | None = None,
    client_heartbeat_timeout_s: float | None = 10.0,
    host: str = "127.0.0.1",
    port: int = 0,
    listener: socket.socket | None = None,
) -> AsyncIterator[RunningSim]:
    """Serve a local Tradovate in the current trio loop until the block ends.

    ``rate_limit`` is ``(burst, per_second)`` per user (none by default); over it a request gets
    a penalty ticket of ``penalty_s`` seconds. ``ip_rate_limit`` is ``{endpoint: (burst,
    per_second)}`` for this host, counting served requests (``user/syncrequest``,
    ``auth/renewaccesstoken``); over it, a penalty ticket. A socket whose client heartbeat stops
    for ``client_heartbeat_timeout_s`` is closed (``None``: never). ``listener`` is a socket
    already bound and listening (then ``host`` and ``port`` are not used); the server takes it
    over and closes it."""
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
    for endpoint, limit in (ip_rate_limit or {}).items():
        faults.ip_limits[endpoint_of(endpoint)] = limit
    server = SimServer(exchange, auth, faults, heartbeat_s, client_heartbeat_timeout_s)
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


__all__ = [
    "PlacedOrder",
    "RunningSim",
    "SimError",
    "SimExchange",
    "SimRequest",
    "serve_sim",
    "sim_settings",
]
