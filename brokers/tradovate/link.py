"""One login's link to Tradovate: its token, its trading socket, and what the engine hears of
them (S1: ``SessionLost``, ``SessionRestored``, ``TokenExpired``).

Phases: ``closed`` (the engine closed the session), ``no_token`` (none, expired or refused —
waiting for a re-authorization), ``cooldown`` (rate-limited: a captcha or HTTP 429; retried
after ``rate_limit_cooldown`` of engine time), ``waiting`` (backoff before the next attempt),
``connecting`` and ``live``.

- A live socket that dies is retried at once, once: if the broker then refuses the token, the
  engine hears only ``TokenExpired`` (the token expired, the network is fine); if it comes
  back, ``SessionLost`` then ``SessionRestored`` (events may have been missed: S3 reconciles);
  otherwise ``SessionLost`` and retries with capped exponential backoff and jitter.
- The token is renewed ``renew_ahead`` before it expires (engine clock); a renewal the broker
  refuses, a 401, or reaching the expiry without a renewal → ``TokenExpired`` once. A new token
  from the OAuth flow reconnects at once.
- Renewals and cooldowns are due at instants of the engine clock (:meth:`next_due`); the broker
  runs :meth:`run_due` from its own timer task, or the replay harness as it moves its clock.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

import structlog
import trio

from brokers.base import BrokerEvent, SessionLost, SessionRestored, TokenExpired
from brokers.tradovate import oauth
from brokers.tradovate.rest import BrokerError, RateLimited, RestClient, Unauthorized
from brokers.tradovate.settings import TradovateSettings
from brokers.tradovate.socket import SocketClosed, SocketUnauthorized, TradovateSocket
from brokers.tradovate.tokens import Token, TokenStore, TokenStoreError
from brokers.tradovate.wire import Push
from engine.clock import Clock

log = structlog.get_logger("brokers.tradovate")

RENEW_RETRY = timedelta(seconds=30)
RATE_LIMITED = "rate_limited"


class Phase(StrEnum):
    CLOSED = "closed"
    NO_TOKEN = "no_token"
    COOLDOWN = "cooldown"
    WAITING = "waiting"
    CONNECTING = "connecting"
    LIVE = "live"


class LinkOwner(Protocol):
    connection: str

    @property
    def rest(self) -> RestClient: ...

    def emit(self, event: BrokerEvent) -> None: ...

    async def on_push(self, push: Push) -> None: ...

    async def on_live(self, socket: TradovateSocket) -> None:
        """The socket is authorized: learn accounts, sync (raise to give the attempt up)."""

    def after_live(self) -> None:
        """The engine has been told the session is up."""


class Link:
    def __init__(
        self,
        connection: str,
        settings: TradovateSettings,
        clock: Clock,
        tokens: TokenStore,
        owner: LinkOwner,
    ) -> None:
        self.connection = connection
        self.settings = settings
        self.clock = clock
        self.tokens = tokens
        self.owner = owner
        self.token: Token | None = None
        self.retired = False
        try:
            self.token = tokens.load(connection)
        except TokenStoreError as error:
            log.error("token file unusable", connection=connection, problem=str(error))
        self.token_refused = False
        self.phase = Phase.CLOSED
        self.wanted = True
        self.socket: TradovateSocket | None = None
        self.reconnects = 0  # successful reconnections (for tests and metrics)
        self._kick = True  # attempt now, without waiting for a backoff
        self._changed: trio.Event | None = None
        self._phase_changed: trio.Event | None = None
        self._serve_scope: trio.CancelScope | None = None
        self._lost_reported = False
        self._pending_loss: str | None = None
        self._expiry_reported = False
        self._failures = 0
        self._cooldown_until: datetime | None = None
        self._renew_at: datetime | None = self._renew_instant()

    # -- state the rest of the adapter reads -------------------------------------------------------

    def access_token(self) -> str | None:
        return None if self.token is None or self.token_refused else self.token.value

    @property
    def live(self) -> bool:
        return self.phase is Phase.LIVE and self.socket is not None and self.socket.live

    def stable(self) -> bool:
        """No attempt under way or about to start, and no socket dying unnoticed (for
        :meth:`TradovateBroker.settled`)."""
        if self.phase is Phase.CONNECTING or (self.phase is Phase.LIVE and not self.live):
            return False
        return not (self._kick and self._may_connect())

    async def phase_change(self) -> None:
        if self._phase_changed is None:
            self._phase_changed = trio.Event()
        event = self._phase_changed
        await event.wait()

    def _set_phase(self, phase: Phase) -> None:
        if phase is not self.phase:
            self.phase = phase
            if self._phase_changed is not None:
                self._phase_changed.set()
                self._phase_changed = None

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _wait_change(self) -> None:
        if self._changed is None:
            self._changed = trio.Event()
        event = self._changed
        await event.wait()

    # -- what the engine and the OAuth flow ask ----------------------------------------------------

    def open(self) -> None:
        reopened = not self.wanted or self._lost_reported
        self.wanted = True
        if not self.usable_token():
            # The engine wants the session back but the token cannot carry it: say so, and
            # that nothing else stands in the way (S1.4: reconnect → reauth_required).
            self.token_rejected("the token expired or was refused while the session was down")
            if reopened:
                self._lost_reported = False
                self.owner.emit(SessionRestored(self.connection))
            return
        if self.phase is not Phase.LIVE:
            self._kick = True  # retry now rather than at the end of a backoff
        self._poke()

    def usable_token(self) -> bool:
        token = self.token
        return token is not None and not self.token_refused and not token.expired(self.clock.now())

    def close(self) -> None:
        self.wanted = False
        self._lost_reported = False
        self._pending_loss = None
        self._drop_socket()
        self._poke()

    def new_token(self, token: Token) -> None:
        self.token = token
        self.token_refused = False
        self._expiry_reported = False
        self._renew_at = self._renew_instant()
        if self.phase is Phase.LIVE:
            return  # the socket stays authorized; REST calls use the new token from now on
        self._kick = True
        self._poke()

    def token_rejected(self, why: str) -> None:
        """A 401, a refused renewal or an expiry: the login must be re-authorized (S1.1)."""
        self.token_refused = True
        if not self._expiry_reported and self.wanted and not self.retired:
            self._expiry_reported = True
            log.warning("token no longer accepted", connection=self.connection, why=why)
            self.owner.emit(TokenExpired(self.connection))
        self._drop_socket()
        self._poke()

    def rate_limited(self, why: str) -> None:
        """A captcha or HTTP 429: a program cannot get past it; wait ``rate_limit_cooldown``."""
        if self._cooldown_until is not None:
            return
        self._cooldown_until = self.clock.now() + self.settings.rate_limit_cooldown
        minutes = self.settings.rate_limit_cooldown.total_seconds() / 60
        log.error("rate limited by Tradovate", connection=self.connection, why=why)
        if self.wanted and not self._lost_reported:
            self._lost_reported = True
            self.owner.emit(
                SessionLost(self.connection, f"{RATE_LIMITED}: {why}; retrying in {minutes:g} min")
            )
        self._drop_socket()
        self._poke()

    def fail(self, why: str) -> None:
        """The live stream can no longer be trusted (a malformed frame): drop and reconnect."""
        log.error("dropping the trading socket", connection=self.connection, why=why)
        self._drop_socket()

    def _drop_socket(self) -> None:
        if self._serve_scope is not None:
            self._serve_scope.cancel()

    # -- engine-clock timers -----------------------------------------------------------------------

    def _renew_instant(self) -> datetime | None:
        if self.token is None:
            return None
        return self.token.expires_at - self.settings.renew_ahead

    def next_due(self) -> datetime | None:
        # Renewals go on while the engine has the session closed (taken offline): the login
        # comes back without a new authorization.
        due = [d for d in (self._cooldown_until,) if d is not None]
        if self.token is not None and not self.token_refused and not self.retired:
            due.append(self.token.expires_at)
            if self._renew_at is not None:
                due.append(self._renew_at)
        return min(due) if due else None

    async def run_due(self) -> None:
        now = self.clock.now()
        if self._cooldown_until is not None and now >= self._cooldown_until:
            self._cooldown_until = None
            self._kick = True
            self._poke()
        token = self.token
        if token is None or self.token_refused or self.retired:
            return
        if token.expired(now):
            self.token_rejected("the token reached its expiry without a renewal")
        elif self._renew_at is not None and now >= self._renew_at:
            await self._renew(now)

    async def _renew(self, now: datetime) -> None:
        try:
            token = await oauth.renew(self.owner.rest, now)
        except Unauthorized:
            self.token_rejected("the broker refused to renew the token")
            return
        except BrokerError as error:
            log.warning(
                "token renewal failed; will retry", connection=self.connection, problem=str(error)
            )
            self._renew_at = now + RENEW_RETRY
            return
        self.token = token
        self._renew_at = self._renew_instant()
        try:
            self.tokens.save(self.connection, token)
        except TokenStoreError as error:
            log.error(
                "cannot keep the renewed token", connection=self.connection, problem=str(error)
            )

    # -- the link task -----------------------------------------------------------------------------

    def _may_connect(self) -> bool:
        return (
            self.wanted
            and self._cooldown_until is None
            and self.token is not None
            and not self.token_refused
        )

    def _idle_phase(self) -> Phase:
        if not self.wanted:
            return Phase.CLOSED
        if self._cooldown_until is not None:
            return Phase.COOLDOWN
        return Phase.NO_TOKEN

    async def run(self) -> None:
        delay = 0.0
        while True:
            if self.wanted and self.token is None and not self._expiry_reported:
                self.token_rejected("no token: the connection was never authorized")
            if not self._may_connect():
                self._set_phase(self._idle_phase())
                await self._wait_change()
                continue
            if delay > 0 and not self._kick:
                self._set_phase(Phase.WAITING)
                with trio.move_on_after(delay):
                    while not self._kick:
                        await self._wait_change()
                if not self._may_connect():
                    continue
            self._kick = False
            self._set_phase(Phase.CONNECTING)
            delay = await self._attempt()

    async def _attempt(self) -> float:
        """One connection attempt; returns the delay before the next one."""
        assert self.token is not None
        socket = TradovateSocket(
            self.settings.ws_url,
            self.token.value,
            self.owner.on_push,
            heartbeat_s=self.settings.heartbeat_s,
            dead_after_s=self.settings.dead_after_s,
            timeout_s=self.settings.request_timeout_s,
            name=self.connection,
        )
        ended: SocketClosed | None = None
        reached_live = False
        async with trio.open_nursery() as nursery:
            self._serve_scope = nursery.cancel_scope
            ready = trio.Event()

            async def serve() -> None:
                nonlocal ended
                try:
                    await socket.run(ready.set)
                except SocketClosed as closed:
                    ended = closed
                nursery.cancel_scope.cancel()

            nursery.start_soon(serve)
            await ready.wait()
            problem = await self._guard(self.owner.on_live(socket))
            if problem is not None:
                ended = ended or problem
                nursery.cancel_scope.cancel()
            else:
                reached_live = True
                self._went_live(socket)
                await trio.sleep_forever()
        self._serve_scope = None
        self.socket = None
        return self._after(ended, reached_live)

    def _went_live(self, socket: TradovateSocket) -> None:
        self.socket = socket
        if self._pending_loss is not None:
            self.owner.emit(SessionLost(self.connection, self._pending_loss))
            self._pending_loss = None
        self._lost_reported = False
        self._failures = 0
        self.reconnects += 1
        self._set_phase(Phase.LIVE)
        self.owner.emit(SessionRestored(self.connection))
        self.owner.after_live()

    def _after(self, ended: SocketClosed | None, reached_live: bool) -> float:
        if not self.wanted or self._cooldown_until is not None or self.token_refused:
            return 0.0
        reason = str(ended) if ended is not None else "socket closed"
        if isinstance(ended, SocketUnauthorized):
            network_back = self._lost_reported
            self._pending_loss = None
            self.token_rejected("the broker refused the token on the socket")
            if network_back:
                # The network is back but the token is not: S1.4 reconnect → reauth_required.
                self._lost_reported = False
                self.owner.emit(SessionRestored(self.connection))
            return 0.0
        if reached_live:
            log.warning(
                "trading socket lost; retrying at once", connection=self.connection, why=reason
            )
            self._pending_loss = reason
            self._kick = True
            return 0.0
        if self._pending_loss is not None or not self._lost_reported:
            self._lost_reported = True
            self.owner.emit(SessionLost(self.connection, self._pending_loss or reason))
            self._pending_loss = None
        log.warning("cannot reach Tradovate", connection=self.connection, why=reason)
        self._failures += 1
        ceiling: float = self.settings.backoff_initial_s * 2.0 ** min(self._failures - 1, 30)
        return min(ceiling, self.settings.backoff_max_s) * random.uniform(0.5, 1.0)

    async def _guard(self, step: Awaitable[None]) -> SocketClosed | None:
        """Run a going-live step; what makes it fail becomes the reason the attempt ends."""
        try:
            await step
        except SocketClosed as closed:
            return closed
        except Unauthorized as error:
            return SocketUnauthorized(str(error))
        except RateLimited as error:
            self.rate_limited(str(error))
            return SocketClosed(str(error))
        except BrokerError as error:
            return SocketClosed(str(error))
        return None
