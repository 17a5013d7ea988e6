"""The local server's OAuth: authorization codes, access tokens, renewals, sessions.

A code is single-use, bound to the client id and redirect URI it was issued for, and valid
for ten minutes of the server's clock. Each code exchange opens a session and answers with an
access token and a ``refresh_token``; renewals continue the session. A user may hold
``max_sessions`` sessions: one more closes the oldest, whose tokens then fail (as Tradovate does
with a third session; :meth:`SimAuth.sign_in_elsewhere` opens one as another app would).
Tokens expire on the server's clock.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from brokers.clock import Clock
from brokers.tradovate.sim.book import stamp

CODE_LIFETIME = timedelta(minutes=10)


class AuthFailure(Exception):
    """An OAuth request the server refuses; ``error`` is the OAuth error code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass
class _Code:
    user_id: int
    client_id: str
    redirect_uri: str
    expires_at: Any


@dataclass
class SimToken:
    value: str = field(repr=False)
    user_id: int
    session: int
    expires_at: Any
    revoked: bool = False


class SimAuth:
    def __init__(
        self,
        clock: Clock,
        client_id: str,
        client_secret: str,
        token_lifetime: timedelta = timedelta(minutes=80),
        max_sessions: int = 2,
    ) -> None:
        self.clock = clock
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.max_sessions = max_sessions
        self._codes: dict[str, _Code] = {}
        self._issued_codes: list[str] = []
        self._refresh_tokens: list[str] = []
        self._tokens: dict[str, SimToken] = {}
        self._sessions: dict[int, list[int]] = {}  # user -> open sessions, oldest first
        self._session_ids = itertools.count(1)
        self.on_revoke: list[Callable[[set[str]], None]] = []  # token values no longer valid
        self.refuse_renewal: set[int] = set()  # users whose next renewals fail (a test control)

    # -- the authorize page -----------------------------------------------------------------------

    def new_code(self, user_id: int, client_id: str, redirect_uri: str) -> str:
        if client_id != self.client_id:
            raise AuthFailure("unauthorized_client", "unknown client_id")
        code = secrets.token_urlsafe(24)
        self._issued_codes.append(code)
        self._codes[code] = _Code(
            user_id, client_id, redirect_uri, self.clock.now() + CODE_LIFETIME
        )
        return code

    # -- the token endpoint -----------------------------------------------------------------------

    def exchange(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        if fields.get("grant_type") != "authorization_code":
            raise AuthFailure("unsupported_grant_type", "only authorization_code is supported")
        if (
            fields.get("client_id") != self.client_id
            or fields.get("client_secret") != self.client_secret
        ):
            raise AuthFailure("invalid_client", "client authentication failed")
        code = self._codes.pop(str(fields.get("code", "")), None)
        if code is None or self.clock.now() >= code.expires_at:
            raise AuthFailure("invalid_grant", "the authorization code is unknown or used")
        if fields.get("redirect_uri") != code.redirect_uri:
            raise AuthFailure("invalid_grant", "redirect_uri does not match the authorization")
        session = next(self._session_ids)
        open_sessions = self._sessions.setdefault(code.user_id, [])
        open_sessions.append(session)
        while len(open_sessions) > self.max_sessions:
            self._revoke_session(open_sessions.pop(0))
        token = self._issue(code.user_id, session)
        refresh = secrets.token_urlsafe(32)
        self._refresh_tokens.append(refresh)
        return {
            "access_token": token.value,
            "token_type": "bearer",
            "expires_in": int(self.token_lifetime.total_seconds()),
            "refresh_token": refresh,
        }

    def code_user(self, code: str) -> int | None:
        """The user a code was issued to (without using it), for the token endpoint's faults."""
        found = self._codes.get(code)
        return None if found is None else found.user_id

    def sign_in_elsewhere(self, user_id: int, redirect_uri: str = "http://elsewhere/") -> None:
        """The user signs in with another app: one more session (the oldest closes past
        ``max_sessions``)."""
        code = self.new_code(user_id, self.client_id, redirect_uri)
        self.exchange(
            {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "redirect_uri": redirect_uri,
            }
        )

    def renew(self, value: str) -> dict[str, Any] | None:
        token = self._valid(value)
        if token is None or token.user_id in self.refuse_renewal:
            return None
        fresh = self._issue(token.user_id, token.session)
        return {
            "accessToken": fresh.value,
            "expirationTime": stamp(fresh.expires_at),
            "userId": token.user_id,
        }

    def _issue(self, user_id: int, session: int) -> SimToken:
        token = SimToken(
            secrets.token_urlsafe(32), user_id, session, self.clock.now() + self.token_lifetime
        )
        self._tokens[token.value] = token
        return token

    # -- checks and controls ----------------------------------------------------------------------

    def _valid(self, value: str) -> SimToken | None:
        token = self._tokens.get(value)
        if token is None or token.revoked or self.clock.now() >= token.expires_at:
            return None
        return token

    def user_of(self, value: str) -> int | None:
        token = self._valid(value)
        return None if token is None else token.user_id

    def revoke_user(self, user_id: int) -> None:
        """Every token of the user stops working (an expiry, or a session closed elsewhere)."""
        self._sessions.pop(user_id, None)
        self._revoke(lambda t: t.user_id == user_id)

    def _revoke_session(self, session: int) -> None:
        self._revoke(lambda t: t.session == session)

    def _revoke(self, which: Callable[[SimToken], bool]) -> None:
        gone = {t.value for t in self._tokens.values() if not t.revoked and which(t)}
        for value in gone:
            self._tokens[value].revoked = True
        if gone:
            for listener in list(self.on_revoke):
                listener(gone)

    def issued(self) -> list[str]:
        """Every token value ever issued (tests grep logs for them)."""
        return list(self._tokens)

    def codes(self) -> list[str]:
        """Every authorization code ever issued."""
        return list(self._issued_codes)

    def refresh_tokens(self) -> list[str]:
        """Every refresh token ever issued."""
        return list(self._refresh_tokens)
