"""An account's part in what the broker confirmed (S3.5): its snapshot, which settles what
the engine sent without an answer and places a leader's held fills; its connection's changes
of state; and the answers that are unknown (a failed snapshot, a leader's unknown answer, a
fill the broker withdrew, prices it does not give). Part of ``AccountActor``.
"""

from __future__ import annotations

from actors import addresses
from actors.account_parts import AccountParts
from actors.late_copies import HeldFill, split_waited, waited_too_long
from actors.messages.account import (
    AwaitingLeader,
    CopyOffer,
    LeaderUnconfirmed,
    RetryCopy,
    SnapshotUnknown,
    StateChanged,
    Synced,
)
from actors.messages.connection import RefreshAccount
from actors.messages.group import (
    LeaderCorrected,
    LeaderFilled,
    LeaderOrdersChanged,
    LeaderUnknown,
    MemberSynced,
    MirrorsWanted,
)
from actors.missed_copies import MissedCopiesDue
from actors.resolution import unanswered
from actors.stale_prices import PricesDue
from brokers.base import (
    AccountSnapshot,
    FillCorrected,
    PricesRestored,
    PricesUnavailable,
)
from engine.domain.activity import Kind, Level
from engine.domain.connections import ConnectionState
from engine.domain.copying import LeaderFill, Role
from engine.domain.order_ids import OrderKind
from engine.host.market import PriceBack


class Confirmation(AccountParts):
    def _synced(self, synced: Synced) -> None:
        snapshot = synced.snapshot
        if not isinstance(snapshot, AccountSnapshot):
            return
        kept = unanswered(self.id, self.book.working, snapshot, self.ctx.storage)
        self.book.confirm(snapshot, kept)
        self.mirrors.learn(snapshot)
        if self.role.group is not None and not self.role.leader:
            self.mirrors.hold_found()  # S8.3: whether or not the leader is known
        self.synced = True
        self.confirmed = True
        reconcile = synced.reconcile or self.returned
        self.returned = False
        if self.unresolved.orders:
            self.unresolved.resolve(self.id, snapshot, self.ctx.storage)
        self.missed.confirmed()  # S10.3: what the start found still working is judged
        self._persist()
        self._tell_risk()
        unfanned = self.unfanned
        self.unfanned = []
        deferred = self.pending_reconcile
        self.pending_reconcile = None
        group = self.role.group
        if group is not None:
            self._working_known(group, snapshot, restores=deferred is not None)
        if group is not None:
            known = self.book.held()
            cause, start = synced.cause, synced.start
            if self.role.leader:
                absorbed, unfanned = split_waited(unfanned, self.ctx.now(), self.max_copy_age)
                if absorbed:
                    reconcile, start = True, False
                    self._waited("leader fills", len(absorbed), "its followers are")
                # Where the leader stood before the fills still to fan out: the group learns
                # that, then those fills, so each is copied as it happened (S2.2).
                for _, symbol, qty, _, _ in unfanned:
                    known[symbol] = known.get(symbol, 0) - qty
            elif waited_too_long(self.pending_offers, group, self.ctx.now(), self.max_copy_age):
                held = sum(
                    isinstance(o, CopyOffer) and o.group == group for o in self.pending_offers
                )
                self._drop_offers(group, "it waited longer than max_copy_age (S2.9)")
                self._waited("copies of leader fills", held, "the account is")
                if deferred is not None and deferred.group == group:
                    deferred = None  # the reconciliation asked for here supersedes it
                reconcile, start, cause = True, False, f"{synced.cause}+waited"
            self.ctx.tell(
                addresses.group(group),
                MemberSynced(
                    account=self.id,
                    leader=self.role.leader,
                    positions={s: q for s, q in known.items() if q},
                    cause=cause,
                    reconcile=reconcile,
                    start=start,
                    reconciled=deferred is not None,
                ),
            )
            if self.role.leader:
                self._fan_out(unfanned, known)
        if deferred is not None:
            self._reconcile(deferred)
        self._decide_waiting()
        self.prices.confirmed()

    def _decide_waiting(self) -> None:
        """The copy offers, retries and mirror work that waited for the confirmed positions
        (S3.5), in the order they came."""
        offers = self.pending_offers
        self.pending_offers = []
        for offer in offers:
            if isinstance(offer, RetryCopy):
                self._retry(offer)
            else:
                self._copy(offer)
        waited = self.pending_mirrors
        self.pending_mirrors = []
        for mirror in waited:
            self.mirrors.receive(mirror)

    def _working_known(self, group: str, snapshot: AccountSnapshot, *, restores: bool) -> None:
        """S8: a leader's group learns its working orders before its positions, so the
        followers it reconciles mirror what works now (S8.7); a follower with mirrors at the
        broker it does not know (its actor was rebuilt after a crash) asks the group which
        leader orders they mirror (S8.9), unless the reconciliation it waits for says so."""
        if self.role.leader:
            orders = self.leader_orders.confirm(snapshot)
            self.ctx.tell(addresses.group(group), LeaderOrdersChanged(orders, complete=True))
            return
        known = self.mirrors.by_order
        unknown = any(
            w.kind is OrderKind.MIRROR and key not in known for key, w in self.book.working.items()
        )
        if unknown and not restores:
            self.ctx.tell(addresses.group(group), MirrorsWanted(self.id))

    def _fan_out(self, fills: list[HeldFill], before: dict[str, int]) -> None:
        """Fan out a leader's fills that waited for the snapshot, each from where the
        confirmed position places it (``before``: the position ahead of the first one)."""
        group = self.role.group
        if group is None:
            return
        for fill_id, symbol, qty, time, price in fills:
            was = before.get(symbol, 0)
            before[symbol] = was + qty
            filled = LeaderFill(self.id, fill_id, symbol, was, was + qty, time, price)
            self.ctx.storage.leader_fill(group, filled)
            self.ctx.tell(addresses.group(group), LeaderFilled(filled))

    def _waited(self, what: str, count: int, who: str) -> None:
        """S2.9 / S3.5: what waited for a confirmed position past max_copy_age is left to a
        flatten-only reconciliation toward the leader's position (``actors/late_copies.py``)."""
        self.ctx.storage.activity(
            Level.WARNING,
            Kind.RECONCILIATION,
            f"{count} {what} waited longer than {self.max_copy_age.total_seconds():g} s for "
            f"confirmed positions: not copied one by one; {who} reconciled flatten-only toward "
            "the leader's position instead",
            account=self.id,
        )

    # -- S3.5: answers that are unknown ----------------------------------------------------------

    def _state_changed(self, message: StateChanged) -> None:
        state = message.state
        self.connection_state = state
        unconfirmed = self.confirmed
        # Positions are the broker's word only from a snapshot received since the connection
        # last became connected (S3.5): trades made at the broker meanwhile are unknown until
        # then (a held flatten must not call the account flat on the old book, S5.3).
        self.synced = self.confirmed = False
        self.pending_reconcile = None  # this return (or the next) reconciles afresh
        self.pending_mirrors = []  # ... and restores the mirrors (S8.6, S8.7)
        connected = state is ConnectionState.CONNECTED
        self.returned = connected
        self.prices.connection_changed(connected)  # S10.3
        if self.unfanned:
            ids = ", ".join(fill_id for fill_id, *_ in self.unfanned)
            self.unfanned = []
            self.ctx.storage.activity(
                Level.INFO,
                Kind.SKIP,
                f"leader fills {ids} not fanned out: they came while this account's positions "
                f"were unknown and its connection is now {state.value}; the reconciliation on "
                "its return covers them",
                account=self.id,
            )
        if not connected:
            # Offers that waited for a snapshot now meet a paused follower (S2.4), and retries
            # are left to the reconciliation of its return; fan-outs a crash cut short still
            # wait for one (S2.9).
            offers = self.pending_offers
            self.pending_offers = [o for o in offers if isinstance(o, CopyOffer) and o.completion]
            for offer in offers:
                if isinstance(offer, CopyOffer) and not offer.completion:
                    self._copy(offer)
        self.ctx.tell(self.risk, message)
        if unconfirmed:
            self._tell_risk()
        if self.role.leader and self.role.group:
            self.ctx.tell(addresses.group(self.role.group), message)

    def _unknowns(self, message: object) -> None:
        """What the broker could not confirm: a snapshot's answer, a leader's, a fill it
        withdrew, a symbol it gives no prices for; and the S10.3 watches' timers and the
        market's word that a symbol's prices are back."""
        match message:
            case SnapshotUnknown():
                self._snapshot_unknown(message)
            case AwaitingLeader():
                connected = self.connection_state is ConnectionState.CONNECTED
                # Not reconciled now (paused, or no longer its follower): its own return will be.
                if connected and self.role == Role(message.group, False):
                    self.unknowns.awaiting_leader(message)
            case LeaderUnconfirmed(group=group):
                pending = self.pending_reconcile
                if pending is not None and pending.group == group:
                    self.pending_reconcile = None  # toward a leader no longer confirmed
                self._drop_offers(group, "the leader's connection changed state meanwhile")
            case FillCorrected():
                self._fill_corrected(message)
            case PricesUnavailable(symbol=symbol, reason=reason):
                self.prices.unavailable(symbol, reason)  # S10.3
            case PricesRestored(symbol=symbol) | PriceBack(symbol=symbol):
                self.prices.back(symbol)
            case PricesDue():
                self.prices.due(message)
            case MissedCopiesDue():
                self.missed.due(message)

    def _drop_offers(self, group: str | None, why: str) -> None:
        """Copy offers of ``group`` still waiting for this account's snapshot are not decided:
        the leader went through an outage (S2.1: its trades around it are left to the
        reconciliation of its return) or the membership ended. Each is settled, so a restart
        does not offer it again (S2.9)."""
        if group is None:
            return
        kept: list[CopyOffer | RetryCopy] = []
        storage = self.ctx.storage
        for offer in self.pending_offers:
            if not isinstance(offer, CopyOffer) or offer.group != group:
                kept.append(offer)
                continue
            if storage.decide_copy(offer.cause, self.id):
                storage.activity(
                    Level.INFO,
                    Kind.SKIP,
                    f"copy of leader fill {offer.fill_id} not decided: it waited for this "
                    f"account's positions, and {why} (group {group})",
                    account=self.id,
                    fill=offer.cause,
                )
                storage.copy_settled(offer.cause, self.id)
        self.pending_offers = kept

    def _snapshot_unknown(self, unknown: SnapshotUnknown) -> None:
        """S3.5: one warning per wait; a leader's group learns why its fan-out waits."""
        first = self.unknowns.snapshot_unknown(unknown, self.role)
        if first and self.role.leader and self.role.group is not None:
            self.ctx.tell(
                addresses.group(self.role.group),
                LeaderUnknown(
                    self.id, unknown.connection, unknown.since, unknown.reason, unknown.reconcile
                ),
            )

    def _fill_corrected(self, event: FillCorrected) -> None:
        """The broker withdrew or corrected a fill: the book is no longer the broker's. It is
        replaced by a fresh snapshot, never adjusted here, so the fill is never counted twice;
        a fill pushed again under its id is not applied."""
        if event.fill_id in self.corrected_fills:
            return
        self.corrected_fills.add(event.fill_id)
        self.seen_fills.add(event.fill_id)
        leader = self.role.leader and self.role.group is not None
        self.ctx.storage.activity(
            Level.ERROR,
            Kind.RECONCILIATION,
            f"the broker corrected fill {event.fill_id} of {self.id} ({event.reason}): the "
            "engine's book no longer matches the broker's; it is reconciled from a fresh "
            "snapshot" + (", and its followers toward the corrected position" if leader else ""),
            account=self.id,
        )
        self.synced = self.confirmed = False
        self._tell_risk()
        if leader and self.role.group is not None:
            self.ctx.tell(addresses.group(self.role.group), LeaderCorrected(self.id, event.fill_id))
        # The fresh answer (while the connection is down, its return's does as well).
        self.ctx.tell(addresses.connection(self.connection), RefreshAccount(self.id))
