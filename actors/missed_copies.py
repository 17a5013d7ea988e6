"""Missed copies (S10.3): a market order the engine sent that the broker has neither filled,
rejected nor cancelled once ``copy_fill_timeout`` has passed.

A plain class the AccountActor owns. Every order the account sends at market is watched —
copies, reconciliations, syncs, max-contracts and drift reductions, whatever kind comes next —
but liquidations (S5.6 retries them on its own schedule) and mirrors (resting orders, S8). An
order is answered once it has left the book's working orders (filled in full, rejected,
cancelled, refused by the gate or never sent): nothing is told here on each answer, so the
fan-out pays one dict entry per order and no more. One timer per account, armed for the oldest
unanswered order, judges every order due at once; each is judged once and gives at most one
``missed_copy`` warning naming its cause, the account and the order id.

An order sent before a stop whose answer the start asks of the broker (S2.6) and finds still
working is judged once as well: at its own time if that is still to come, at once otherwise,
unless an entry named it before the stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from actors.book import Book
from engine.domain.activity import Kind, Level
from engine.domain.ledger import UnresolvedOrder
from engine.domain.order_ids import OrderKind, label, leader_fill_of
from engine.domain.resets import CHICAGO
from engine.host.base import ActorContext

# Not judged here: a liquidation has S5.6's retries, a mirror rests at the broker by design.
UNWATCHED = frozenset({OrderKind.LIQUIDATE, OrderKind.MIRROR})

# What each kind of order is for, in words that name no activity kind and none of the texts
# scenario expectations look for (an entry is matched by its kind or by text in its message):
# a missed order is counted as what it is, never as a copy or a reconciliation. A kind not
# listed is named by its ledger label.
_PURPOSES = {
    OrderKind.COPY: "for leader fill {cause}",
    OrderKind.RECONCILE: "toward the leader's position ({cause})",
    OrderKind.SYNC: "for the user's command {cause}",
    OrderKind.REDUCE: "back within the account's contract limit ({cause})",
    # Its cause, ``drift:SYMBOL:SINCE``, is given without the word: a missed reduction is not
    # an episode.
    OrderKind.DRIFT: "toward the position expected of it ({cause})",
}


@dataclass(frozen=True, slots=True)
class MissedCopiesDue:
    """The watch's one timer: the oldest unanswered order's time is up at ``at``."""

    at: datetime


class MissedCopies:
    def __init__(
        self,
        ctx: ActorContext,
        account: str,
        book: Book,
        timeout: timedelta,
        carried: tuple[UnresolvedOrder, ...] = (),
    ) -> None:
        self.ctx = ctx
        self.account = account
        self.book = book
        self.timeout = timeout
        # Client order id -> the instant it is due, for every order sent and not yet judged.
        self.waiting: dict[str, datetime] = {}
        self.armed: datetime | None = None
        # At an engine start: the orders sent before the stop and not yet judged, until the
        # first snapshot says which of them still work (S2.6); then the causes of those that
        # do (the broker's working orders carry none).
        self.carried = tuple(o for o in carried if o.kind not in UNWATCHED and not o.missed)
        self.carried_causes: dict[str, str] = {}
        # Judged missed, newest last: what the account view shows while they stay unanswered.
        self.missed: list[str] = []
        self.count = 0  # missed copies since this actor started

    # -- what the account tells it -------------------------------------------------------------

    def sent(self, client_order_id: str, kind: OrderKind) -> None:
        """An order about to be sent (the hot path: a dict entry, a timer only when none is
        armed)."""
        if kind in UNWATCHED:
            return
        due = self.ctx.now() + self.timeout
        self.waiting[client_order_id] = due
        if self.armed is None:
            self._arm(due)

    def confirmed(self) -> None:
        """The broker's snapshot is in the book: the orders carried over a stop that it still
        shows working are watched from when they were sent (judged at once if that is past)."""
        if not self.carried:
            return
        carried, self.carried = self.carried, ()
        now = self.ctx.now()
        for order in carried:
            coid = order.client_order_id
            if coid in self.book.working and coid not in self.waiting:
                sent = order.sent_at if order.sent_at is not None else now
                self.waiting[coid] = sent + self.timeout
                self.carried_causes[coid] = order.cause
        if self.waiting:
            self.due(MissedCopiesDue(now), force=True)

    def due(self, message: MissedCopiesDue, *, force: bool = False) -> None:
        """Judge every order whose time is up, then arm for the oldest left. A timer armed by
        an earlier incarnation of the actor (before a crash) is not this one's, and is let go."""
        if not force and message.at != self.armed:
            return
        self.armed = None
        now = self.ctx.now()
        working = self.book.working
        following: datetime | None = None
        for coid, due in list(self.waiting.items()):
            if coid not in working:
                del self.waiting[coid]  # answered
                self.carried_causes.pop(coid, None)
            elif due <= now:
                del self.waiting[coid]
                self._missed(coid, due - self.timeout)
            elif following is None or due < following:
                following = due
        if following is not None:
            self._arm(following)

    # -- what the account shows ----------------------------------------------------------------

    def judged(self, client_order_id: str) -> bool:
        """Whether the order was judged missed: no longer in flight, what it has not filled is
        drift (S10.1)."""
        return client_order_id in self.missed

    def unanswered(self) -> tuple[str, ...]:
        """The orders judged missed that are still unanswered."""
        if not self.missed:
            return ()
        working = self.book.working
        self.missed = [coid for coid in self.missed if coid in working]
        return tuple(self.missed)

    # -- its parts -----------------------------------------------------------------------------

    def _arm(self, at: datetime) -> None:
        self.armed = at
        self.ctx.services.timers.schedule(at, self.ctx.address, MissedCopiesDue(at))

    def _missed(self, coid: str, sent: datetime) -> None:
        order = self.book.working[coid]
        kind = order.kind
        carried = self.carried_causes.pop(coid, None)
        if kind is None:
            return
        cause = order.cause or carried or ""
        if kind is OrderKind.DRIFT:
            cause = cause.removeprefix("drift:")
        purpose = _PURPOSES.get(kind)
        why = purpose.format(cause=cause) if purpose is not None else f"{label(kind)} ({cause})"
        when = sent.astimezone(CHICAGO).strftime("%H:%M:%S")
        before = " before the engine last started" if carried is not None else ""
        self.count += 1
        self.missed.append(coid)
        self.ctx.storage.activity(
            Level.WARNING,
            Kind.MISSED_COPY,
            f"order {coid} ({order.symbol} {order.qty:+d} unfilled, {why}) sent to "
            f"{self.account} at {when}{before} is not filled, rejected or cancelled after "
            f"{self.timeout.total_seconds():g} s: look at it at the broker",
            account=self.account,
            fill=leader_fill_of(kind, cause),
        )


__all__ = ["UNWATCHED", "MissedCopies", "MissedCopiesDue"]
