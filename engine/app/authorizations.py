"""The engine's side of re-authorization (S1.2): single-use, expiring OAuth ``state`` values.

Re-authorizing a connection hands the browser the broker's authorize URL carrying a fresh
random ``state``; the broker sends the browser back to the engine's callback with a ``code`` and
that ``state``. The callback is accepted only with a ``state`` this engine issued, for that
connection, not yet used and not expired; anything else is refused before the broker is asked
anything. A used or expired value is remembered a while so the refusal can say why.

Time comes from the engine's clock. Values are kept in memory only: a restarted engine knows none
of its predecessor's (the user presses Re-authorize again). Nothing here logs a value.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from brokers.clock import Clock
from engine.app.logs import SECRETS

STATE_TTL = timedelta(minutes=10)
MAX_PENDING = 256  # outstanding values kept; the oldest goes first past this
MAX_SPENT = 1024  # used or expired values remembered, to say "reused" rather than "unknown"


class StateRefused(StrEnum):
    UNKNOWN = "unknown"
    REUSED = "reused"
    EXPIRED = "expired"


class OAuthStateError(Exception):
    """The callback's ``state`` is refused; ``why`` says which way."""

    def __init__(self, why: StateRefused) -> None:
        self.why = why
        super().__init__(
            {
                StateRefused.UNKNOWN: "this authorization was not started by this engine",
                StateRefused.REUSED: "this authorization link was already used",
                StateRefused.EXPIRED: "this authorization link expired; press Re-authorize again",
            }[why]
        )


@dataclass(frozen=True, slots=True)
class Issued:
    connection: str
    expires_at: datetime


def _key(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


class OAuthStates:
    def __init__(self, clock: Clock, ttl: timedelta = STATE_TTL) -> None:
        self.clock = clock
        self.ttl = ttl
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, Issued] = OrderedDict()  # sha256(state) -> issue
        self._spent: OrderedDict[str, StateRefused] = OrderedDict()

    def issue(self, connection: str) -> tuple[str, Issued]:
        """A new random value for ``connection`` (256 bits), valid once, until it expires."""
        state = secrets.token_urlsafe(32)
        issued = Issued(connection, self.clock.now() + self.ttl)
        with self._lock:
            self._expire()
            self._pending[_key(state)] = issued
            while len(self._pending) > MAX_PENDING:
                old, _ = self._pending.popitem(last=False)
                self._remember(old, StateRefused.EXPIRED)
        SECRETS.add(state)
        return state, issued

    def consume(self, state: str) -> str:
        """The connection ``state`` was issued for; it can never be used again. Raises
        :class:`OAuthStateError` for a value that is unknown, used or expired."""
        key = _key(state)
        with self._lock:
            self._expire()
            issued = self._pending.pop(key, None)
            if issued is None:
                raise OAuthStateError(self._spent.get(key, StateRefused.UNKNOWN))
            self._remember(key, StateRefused.REUSED)
        return issued.connection

    def pending(self) -> int:
        with self._lock:
            self._expire()
            return len(self._pending)

    def _expire(self) -> None:
        now = self.clock.now()
        for key in [k for k, v in self._pending.items() if v.expires_at <= now]:
            del self._pending[key]
            self._remember(key, StateRefused.EXPIRED)

    def _remember(self, key: str, why: StateRefused) -> None:
        self._spent[key] = why
        self._spent.move_to_end(key)
        while len(self._spent) > MAX_SPENT:
            self._spent.popitem(last=False)


__all__ = ["STATE_TTL", "Issued", "OAuthStateError", "OAuthStates", "StateRefused"]
