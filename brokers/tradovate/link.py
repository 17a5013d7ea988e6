"""One login's link to Tradovate: its token, its trading socket, and what the engine hears of
them (S1: ``SessionLost``, ``SessionRestored``, ``TokenExpired``).

Phases: ``closed`` (the engine closed the session), ``no_token`` (none, expired or refused —
waiting for a re-authorization), ``cooldown`` (locked out: a captcha, HTTP 429 or ``{"s":429}``;
nothing at all is sent, token renewal included, for ``rate_limit_cooldown`` of engine time),
``waiting`` (backoff before the next attempt), ``connecting`` and ``live``.

- A live socket that dies is retried at once, once: if the broker then refuses the token, the
  engine hears only ``TokenExpired`` (the token expired, the network is fine); if it comes
  back, ``SessionLost`` then ``SessionRestored`` (events may have been missed: S3 reconciles);
  otherwise ``SessionLost`` and retries with capped exponential backoff and jitter. A socket
  the broker ended (``c[code,"reason"]``, a ``shutdown`` event) is ``SessionLost`` at once and
  reconnected after a backoff — never at once, so a broker that sheds connections
  (``ConnectionQuotaReached``) is not hammered; the backoff grows until a socket stays up.
- The token is renewed within its ``renew_ahead`` window (engine clock), at an instant the
  broker's :class:`~brokers.tradovate.pacing.RenewalPlanner` keeps apart from the other logins'
  renewals. A 401 on any call is answered by one renewal (:meth:`Link.recover`). Only a
  renewal the broker refuses, the token refused on the socket's ``authorize``, or reaching the
  expiry without a renewal → ``TokenExpired`` once. A renewal that fails otherwise (network,
  5xx) is tried again with a growing delay; a lock-out suspends it until the cooldown ends. A
  new token from the OAuth flow reconnects at once.
- The link is the REST client's :class:`~brokers.tradovate.rest.LoginGuard`: it blocks every
  request of the login while locked out, and hears of a lock-out before the request that met it
  returns, so nothing else of the login is sent after it.
- Renewals and cooldowns are due at instants of the engine clock (:meth:`next_due`); the broker
  runs :meth:`run_due` from its own timer task, or the replay harness as it moves its clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

import structlog
import trio

from brokers.base import BrokerEvent, SessionLost, SessionRestored, TokenExpired
from brokers.clock import Clock
from brokers.tradovate import oauth
from brokers.tradovate.pacing import RenewalPlanner, doubling, jittered
from brokers.tradovate.rest import BrokerError, NoPermission, RateLimited, RestClient, Unauthorized
from brokers.tradovate.settings import TradovateSettings
from brokers.tradovate.socket import (
    BrokerClosed,
    SocketClosed,
    SocketUnauthorized,
    TradovateSocket,
)
from brokers.tradovate.tokens import Token, TokenStore, TokenStoreError
from brokers.tradovate.wakeup import Wakeup
from brokers.tradovate.wire import Push

log = structlog.get_logger("brokers.tradovate")

RENEW_RETRY = timedelta(seconds=30)  # a renewal that failed (network, 5xx) is tried again...
RENEW_RETRY_MAX = timedelta(minutes=5)  # ...after a delay doubling up to this
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
        planner: RenewalPlanner | None = None,
    ) -> None:
        self.connection = connection
        self.settings = settings
        self.clock = clock
        self.tokens = tokens
        self.owner = owner
        self.planner = planner or RenewalPlanner(settings.renewal_spacing)
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
        self._changed = Wakeup()
        self._phase_changed = Wakeup()
        self._attempt_socket: TradovateSocket | None = None  # of the attempt under way
        self._lost_reported = False
        self._pending_loss: str | None = None
        self._expiry_reported = False
        self._failures = 0
        self._live_since = 0.0  # trio time the socket went live
        self._cooldown_until: datetime | None = None
        self._generation = 0  # changes with the token
        self._renew_lock: trio.Lock | None = None
        self._renew_failures = 0
        self.renewals = 0  # successful renewals (for tests and metrics)
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
        await self._phase_changed.wait()

    def _set_phase(self, phase: Phase) -> None:
        if phase is not self.phase:
            self.phase = phase
            self._phase_changed.set()

    def _poke(self) -> None:
        self._changed.set()

    async def _wait_change(self) -> None:
        await self._changed.wait()

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
        self._generation += 1
        self._renew_failures = 0
        self.token_refused = False
        self._expiry_reported = False
        self._renew_at = self._renew_instant()
        if self.phase is Phase.LIVE:
            return  # the socket stays authorized; REST calls use the new token from now on
        self._kick = True
        self._poke()

    def token_rejected(self, why: str) -> None:
        """A refused renewal, the token refused on the socket, or an expiry: the login must be
        re-authorized (S1.1)."""
        self.token_refused = True
        self.planner.forget(self.connection)
        if not self._expiry_reported and self.wanted and not self.retired:
            self._expiry_reported = True
            log.warning("token no longer accepted", connection=self.connection, why=why)
            self.owner.emit(TokenExpired(self.connection))
        self._drop_socket()
        self._poke()

    # -- the REST client's guard (LoginGuard) ---------------------------------------------------

    @property
    def token_generation(self) -> int:
        return self._generation

    def blocked(self) -> str | None:
        until = self._cooldown_until
        return None if until is None else f"locked out by Tradovate until {until.isoformat()}"

    def locked_out(self, why: str) -> None:
        self.rate_limited(why)

    async def recover(self, generation: int) -> bool:
        """A call met HTTP 401 with the token of ``generation``: one renewal (shared by every
        call that met it), unless the token changed since. Whether to send the call again."""
        async with self._renewing():
            if self.token is None or self.token_refused or self.retired:
                return False
            if self._generation != generation:
                return True
            if self._cooldown_until is not None:
                return False
            log.info("HTTP 401: renewing the token once", connection=self.connection)
            return await self._renew(self.clock.now())

    @asynccontextmanager
    async def _renewing(self) -> AsyncIterator[None]:
        if self._renew_lock is None:
            self._renew_lock = trio.Lock()
        async with self._renew_lock:
            yield

    def rate_limited(self, why: str) -> None:
        """A captcha or HTTP 429: a program cannot get past it; nothing of the login is sent
        for ``rate_limit_cooldown`` (engine clock), token renewal included."""
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
        if self._attempt_socket is not None:
            self._attempt_socket.stop()

    # -- engine-clock timers -----------------------------------------------------------------------

    def _renew_instant(self) -> datetime | None:
        """The renewal's instant: in the first half of the ``renew_ahead`` window, apart from
        the other logins' renewals."""
        if self.token is None:
            return None
        start = self.token.expires_at - self.settings.renew_ahead
        latest = self.token.expires_at - self.settings.renew_ahead / 2
        return self.planner.plan(self.connection, start, latest)

    def next_due(self) -> datetime | None:
        # Renewals go on while the engine has the session closed (taken offline): the login
        # comes back without a new authorization. Not while locked out: nothing is sent then.
        due = [d for d in (self._cooldown_until,) if d is not None]
        if self.token is not None and not self.token_refused and not self.retired:
            due.append(self.token.expires_at)
            if self._renew_at is not None and self._cooldown_until is None:
                due.append(self._renew_at)
        return min(due) if due else None

    async def run_due(self) -> None:
        now = self.clock.now()
        if self._cooldown_until is not None and now >= self._cooldown_until:
            self._cooldown_until = None
            log.info("rate-limit cooldown over", connection=self.connection)
            self._kick = True
            self._poke()
        token = self.token
        if token is None or self.token_refused or self.retired:
            return
        if token.expired(now):
            self.token_rejected("the token reached its expiry without a renewal")
        elif self._cooldown_until is None and self._renew_at is not None and now >= self._renew_at:
            async with self._renewing():
                if self._renew_at is not None and now >= self._renew_at and not self.token_refused:
                    await self._renew(now)

    async def _renew(self, now: datetime) -> bool:
        """One renewal (the caller holds the renewal lock); whether it gave a new token."""
        assert self.token is not None
        try:
            token = await oauth.renew(self.owner.rest, now, self.token.refresh_token)
        except Unauthorized:
            self.token_rejected("the broker refused to renew the token")
            return False
        except RateLimited as error:
            # Locked out: nothing is sent until the cooldown ends; the renewal is due then.
            log.warning("token renewal locked out", connection=self.connection, why=str(error))
            return False
        except BrokerError as error:
            self._renew_failures += 1
            delay = timedelta(
                seconds=doubling(
                    RENEW_RETRY.total_seconds(),
                    self._renew_failures,
                    RENEW_RETRY_MAX.total_seconds(),
                )
            )
            self._renew_at = now + delay
            log.warning(
                "token renewal failed; will retry",
                connection=self.connection,
                problem=str(error),
                retry_in_s=delay.total_seconds(),
            )
            return False
        self.token = token
        self._generation += 1
        self._renew_failures = 0
        self.renewals += 1
        self._renew_at = self._renew_instant()
        try:
            self.tokens.save(self.connection, token)
        except TokenStoreError as error:
            log.error(
                "cannot keep the renewed token", connection=self.connection, problem=str(error)
            )
        return True

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
        problem: SocketClosed | None = None
        reached_live = False

        async def while_up() -> None:
            nonlocal problem, reached_live
            problem = await self._guard(self.owner.on_live(socket))
            if problem is None:
                reached_live = True
                self._went_live(socket)
                await trio.sleep_forever()

        self._attempt_socket = socket
        ended = await socket.serve(while_up)
        self._attempt_socket = None
        self.socket = None
        return self._after(ended or problem, reached_live)

    def _went_live(self, socket: TradovateSocket) -> None:
        self.socket = socket
        if self._pending_loss is not None:
            self.owner.emit(SessionLost(self.connection, self._pending_loss))
            self._pending_loss = None
        self._lost_reported = False
        self._kick = False  # live: an attempt asked for during this one is this one
        self._live_since = trio.current_time()
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
        if reached_live and trio.current_time() - self._live_since >= self._stable_after():
            self._failures = 0  # it had been up a good while: a new outage starts afresh
        if isinstance(ended, BrokerClosed):
            self._report_loss(reason)
            self._failures += 1
            delay = self._backoff()
            log.warning(
                "the broker ended the trading socket; reconnecting after a backoff",
                connection=self.connection,
                why=reason,
                delay_s=round(delay, 3),
            )
            return delay
        if reached_live:
            log.warning(
                "trading socket lost; retrying at once", connection=self.connection, why=reason
            )
            self._pending_loss = reason
            self._kick = True
            return 0.0
        self._report_loss(reason)
        log.warning("cannot reach Tradovate", connection=self.connection, why=reason)
        self._failures += 1
        return self._backoff()

    def _report_loss(self, reason: str) -> None:
        if self._pending_loss is not None or not self._lost_reported:
            self._lost_reported = True
            self.owner.emit(SessionLost(self.connection, self._pending_loss or reason))
            self._pending_loss = None

    def _stable_after(self) -> float:
        return max(self.settings.backoff_max_s, self.settings.dead_after_s)

    def _backoff(self) -> float:
        settings = self.settings
        return jittered(settings.backoff_initial_s, self._failures, settings.backoff_max_s)

    async def _guard(self, step: Awaitable[None]) -> SocketClosed | None:
        """Run a going-live step; what makes it fail becomes the reason the attempt ends."""
        try:
            await step
        except SocketClosed as closed:
            return closed
        except NoPermission as error:
            return SocketClosed(str(error))
        except Unauthorized as error:
            # Refused renewal: the token is gone (the engine has heard). Otherwise the renewal
            # could not be made (network): the token may still be good, try again later.
            return (
                SocketUnauthorized(str(error)) if self.token_refused else SocketClosed(str(error))
            )
        except RateLimited as error:
            self.rate_limited(str(error))
            return SocketClosed(str(error))
        except BrokerError as error:
            return SocketClosed(str(error))
        return None
