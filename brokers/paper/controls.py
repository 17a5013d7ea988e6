"""The harness's controls of the paper broker: holding and releasing the engine's orders,
rejecting the next ones, failing snapshots, busting a fill, dropping a link, expiring and
reissuing a token (and the OAuth steps that reissue it). Part of
:class:`~brokers.paper.broker.PaperBroker`."""

from __future__ import annotations

import secrets
import urllib.parse

from brokers.base import (
    AuthorizationError,
    Fill,
    FillCorrected,
    SessionLost,
    TokenExpired,
    TokenIssued,
)
from brokers.paper.book import PaperBrokerError
from brokers.paper.checks import (
    check_count,
    check_id,
)
from brokers.paper.parts import PaperParts


class HarnessControls(PaperParts):
    def hold(self, connection: str) -> None:
        """Engine orders ``connection`` sends from now on stay working (accepted, unfilled;
        limits and stops not matched) until release."""
        with self._change():
            self._held.add(check_id(connection, "connection"))

    def release(self, connection: str) -> None:
        """Every held market order fills at its symbol's current last, and every held limit
        and stop starts working against it (filled at once if it reaches it), in the order
        sent."""
        check_id(connection, "connection")
        with self._change():
            queue = self._held_queue.setdefault(connection, [])
            # Orders placed by a sink while releasing join the queue, so order sent is kept.
            while queue:
                order = self._book.get_working(queue.pop(0))
                if order is None:
                    continue
                if order.order_type.working:
                    self._matcher.check(order.broker_order_id)
                else:
                    self._book.remove_working(order.broker_order_id)
                    self._fill_engine_order(order)
            self._held.discard(connection)
            self._held_queue.pop(connection, None)

    def reject_next(self, connection: str, count: int = 1) -> None:
        """The next ``count`` engine orders of ``connection`` are rejected (adds to any left)."""
        count = check_count(connection, count, "reject_next")
        with self._change():
            self._reject_next[connection] = self._reject_next.get(connection, 0) + count

    def fail_snapshot(self, connection: str, count: int = 1) -> None:
        """The next ``count`` snapshot requests of ``connection`` that reach the broker are
        answered ``SnapshotFailed`` with a broker error (adds to any left): an answer that is
        unknown, never flat (SEMANTICS S3.5)."""
        count = check_count(connection, count, "fail_snapshot")
        with self._change():
            self._fail_snapshot[connection] = self._fail_snapshot.get(connection, 0) + count

    def correct_fill(self, fill_id: str, reason: str = "fill busted by the exchange") -> None:
        """The broker withdraws a fill it reported (a bust): its quantity leaves the position
        at its price, and the connection's session is told ``FillCorrected``. Fills reported
        by this process only (not by one that wrote the state file before it)."""
        check_id(fill_id, "fill_id")
        with self._change():
            fill = self._fills.pop(fill_id, None)
            if fill is None:
                raise PaperBrokerError(f"unknown fill {fill_id!r}")
            self._book.fill(fill.account, fill.symbol, -fill.qty, fill.price)
            corrected = FillCorrected(fill.connection, fill.account, fill_id, reason)
            self._emit(fill.connection, corrected)

    def fill_ids(self, account: str) -> tuple[str, ...]:
        """The ids of ``account``'s fills that :meth:`correct_fill` can withdraw, oldest first."""
        with self._lock:
            return tuple(i for i, fill in self._fills.items() if fill.account == account)

    def fills(self, account: str) -> tuple[Fill, ...]:
        """``account``'s fills this process reported and keeps, oldest first: what a check of
        the account's figures counts (the commissions charged per contract, S9.1)."""
        with self._lock:
            return tuple(fill for fill in self._fills.values() if fill.account == account)

    def drop(self, connection: str, reason: str = "network outage") -> None:
        """An outage: ``SessionLost``, then nothing is delivered until the session is reopened."""
        check_id(connection, "connection")
        with self._change():
            if connection in self._links_down:
                return
            self._emit(connection, SessionLost(connection, reason))
            self._links_down.add(connection)

    def expire_token(self, connection: str) -> None:
        """``TokenExpired``; then nothing is delivered and orders are rejected until reauthorize.

        The expiry always reaches the session's sink, even with the link down: an engine knows
        its token's lifetime and tracks the expiry itself (S1.1), it does not need the broker's
        word over a live link."""
        check_id(connection, "connection")
        with self._change():
            if connection in self._tokens_invalid:
                return
            self._tokens_invalid.add(connection)
            self._tell_session(connection, TokenExpired(connection))

    def reauthorize(self, connection: str) -> None:
        """A fresh token: valid again; ``TokenIssued`` always reaches the session's sink."""
        check_id(connection, "connection")
        with self._change():
            self._tokens_invalid.discard(connection)
            self._token_seq += 1
            token = f"paper-token-{self._token_seq}"
            self._tell_session(connection, TokenIssued(connection, token=token))

    # -- OAuth (S1.2): the paper broker has no login page; its "authorize page" sends the
    # browser straight back to the engine's callback with a single-use code.

    def authorize_url(self, connection: str, state: str, redirect_uri: str) -> str:
        check_id(connection, "connection")
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = connection
        query = urllib.parse.urlencode({"code": code, "state": state})
        return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}"

    async def exchange_code(self, connection: str, code: str, redirect_uri: str) -> None:
        with self._lock:
            issued_for = self._codes.pop(code, None)
        if issued_for != connection:
            raise AuthorizationError("the paper broker does not know this authorization code")
        self.reauthorize(connection)
