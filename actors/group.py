"""CopyGroupActor: one leader and its follower memberships (S2, S3).

Turns one leader fill into one offer per follower, each computed in the follower's own actor
(S2.2). Tracks the leader's net positions from its fills, so a follower returning from an
outage is reconciled toward ``L_now`` (S3.1); when the leader returns, every follower is.

``L_now`` counts only once a snapshot received since the leader's connection last became
connected confirmed it (S3.5): a follower whose own answer comes first waits, and is reconciled
once, when the leader's is in; while the leader's answer is unknown, the followers waiting on
it are told why.

Each follower watches its own drift (S10.1, ``actors/drift.py``); the group tells it what only
the group knows (``DriftWatch``): its terms, whether its membership is enabled, ``on_drift``
and the leader's confirmed positions, whenever one of them changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import structlog

from actors import addresses
from actors.failure import InjectedFailure, fail
from actors.messages.account import (
    AwaitingLeader,
    CopyOffer,
    DriftWatch,
    LeaderUnconfirmed,
    MirrorOffer,
    MirrorRestore,
    MirrorTerms,
    ReconcileOrder,
    StateChanged,
    SyncOrder,
)
from actors.messages.group import (
    AddMember,
    DisableMember,
    EnableMember,
    LeaderCorrected,
    LeaderFilled,
    LeaderOrdersChanged,
    LeaderUnknown,
    MemberSynced,
    MirrorsWanted,
    RemoveMember,
    SetOnDrift,
    SetTerms,
    SyncMember,
)
from brokers.instruments import map_symbol
from engine.domain.activity import Kind, Level
from engine.domain.connections import ConnectionState
from engine.domain.copying import CopyMode, LeaderFill, Membership, PendingFill
from engine.domain.drift import DriftTerms
from engine.domain.mirroring import LeaderOrder
from engine.domain.watching import OnDrift
from engine.host.base import ActorContext

log = structlog.get_logger("actors.group")


@dataclass(frozen=True, slots=True)
class GroupView:
    id: str
    leader: str
    members: tuple[Membership, ...]
    leader_positions: dict[str, int]
    # Whether its broker confirmed ``leader_positions`` since its connection last became
    # connected (S3.5): a sync's target is computed only from confirmed ones (S6.2).
    leader_confirmed: bool = False
    on_drift: OnDrift = OnDrift.ALERT  # S10.2


class CopyGroupActor:
    def __init__(
        self,
        ctx: ActorContext,
        group_id: str,
        leader: str,
        leader_connection: str,
        members: list[Membership],
        pending: tuple[PendingFill, ...] = (),
        on_drift: OnDrift = OnDrift.ALERT,
    ) -> None:
        self.ctx = ctx
        self.id = group_id
        self.leader = leader
        self.leader_connection = leader_connection
        self.members: dict[str, Membership] = {m.account: m for m in members}
        self.leader_positions: dict[str, int] = {}
        # The leader's positions confirmed by a snapshot since its connection last became
        # connected (S3.5); a group built anew learns them from the leader (SendPositions).
        self.leader_confirmed = False
        # Its return (or a fill correction) owes every follower a reconciliation, due when its
        # positions are confirmed (S3.1).
        self.reconcile_all = False
        # Followers back before the leader's answer: follower -> the cause of their return.
        self.waiting: dict[str, str] = {}
        self.leader_unknown: LeaderUnknown | None = None  # why its answer is unknown (S3.5)
        self.reconciled: dict[str, str] = {}  # follower -> cause of its last reconciliation
        # Fan-outs a crash cut short, completed once the leader's broker position is known.
        self.pending = pending
        # The leader's working orders (S8.2), by broker order id, for followers copying orders;
        # and those known before its last snapshot, until its positions come with it.
        self.leader_orders: dict[str, LeaderOrder] = {}
        self.orders_before: dict[str, LeaderOrder] | None = None
        self.orders_known = False
        self.on_drift = on_drift  # S10.2

    def receive(self, message: object) -> None:
        match message:
            case InjectedFailure():
                fail(f"group {self.id}")
            case LeaderFilled(fill=fill):
                self._fan_out(fill)
            case LeaderOrdersChanged():
                self._orders_changed(message)
            case MirrorsWanted(account=account):
                self._restore_mirrors(account, "its mirrors found at the broker")
            case MemberSynced():
                self._synced(message)
            case SyncMember():
                self._sync(message)
            case StateChanged(state=state):
                self._leader_unconfirmed(reconcile_all=state is ConnectionState.CONNECTED)
            case LeaderCorrected():
                self._leader_unconfirmed(reconcile_all=True)  # toward its corrected position
            case LeaderUnknown():
                self._leader_unknown(message)
            case DisableMember(account=account, reason=reason):
                self._set_disable_reason(account, reason)
            case EnableMember(account=account):
                was = self.members.get(account)
                self._set_disable_reason(account, "")
                if was is not None and was.disable_reason:
                    self._restore_mirrors(account, "membership enabled again")
            case AddMember(membership=membership):
                self.members[membership.account] = membership
                self._drift_watch(membership.account)
                self._restore_mirrors(membership.account, "joined the group")
            case SetTerms(membership=terms):
                current = self.members.get(terms.account)
                if current is not None:
                    self.members[terms.account] = replace(
                        terms, disable_reason=current.disable_reason
                    )
                    self._drift_watch(terms.account)
            case SetOnDrift(on_drift=on_drift):
                self.on_drift = on_drift
                for account in self.members:
                    self._drift_watch(account)
            case RemoveMember(account=account):
                self.members.pop(account, None)
                self.reconciled.pop(account, None)
                self.waiting.pop(account, None)
            case _:
                log.warning("unknown message", group=self.id, message=repr(message))

    def view(self) -> GroupView:
        return GroupView(
            self.id,
            self.leader,
            tuple(self.members.values()),
            dict(self.leader_positions),
            self.leader_confirmed,
            self.on_drift,
        )

    # -- S2.1: fan-out ---------------------------------------------------------------------------

    def _fan_out(self, fill: LeaderFill) -> None:
        if fill.after:
            self.leader_positions[fill.symbol] = fill.after
        else:
            self.leader_positions.pop(fill.symbol, None)
        cause = fill.cause
        tell = self.ctx.tell
        for member in self.members.values():
            # A disabled membership is still offered the fill: its account's gate decides and
            # records each rejection (S5.3 step 3).
            tell(addresses.account(member.account), self._offer(member, cause, fill))
        # The leader fill in the history, once (S7.1): each follower's entry it causes names it.
        self.ctx.storage.activity(
            Level.INFO, Kind.COPY, fill.describe(), account=self.leader, fill=cause
        )

    def _offer(
        self, member: Membership, cause: str, fill: LeaderFill, completion: bool = False
    ) -> CopyOffer:
        return CopyOffer(
            group=self.id,
            cause=cause,
            fill_id=fill.fill_id,
            leader_symbol=fill.symbol,
            symbol=map_symbol(fill.symbol, dict(member.symbol_map))
            if member.symbol_map
            else fill.symbol,
            before=fill.before,
            after=fill.after,
            ratio=member.ratio,
            max_qty=member.max_qty,
            fill_time=fill.fill_time,
            completion=completion,
            mirrored=member.copy is CopyMode.ORDERS,
            order_id=fill.order_id,
            order_done=fill.order_done,
        )

    def _complete(self) -> None:
        """S2.9: offer each fill whose fan-out a crash cut short to the followers that never
        decided on it — unless the leader traded since (its broker position is not where the
        last fill the engine saw left it): S2.1 never fans out what the engine did not see,
        and the S3 reconciliation just sent covers the followers."""
        pending, self.pending = self.pending, ()
        for item in pending:
            fill = item.fill.fill
            now = self.leader_positions.get(fill.symbol, 0)
            if now != item.leader_after:
                self.ctx.storage.activity(
                    Level.WARNING,
                    Kind.SKIP,
                    f"fan-out of leader fill {fill.fill_id} not completed after the restart: "
                    f"the leader's {fill.symbol} position is {now:+d}, not "
                    f"{item.leader_after:+d} — it traded while the engine was down",
                    account=self.leader,
                    fill=item.fill.cause,
                )
                continue
            for account in item.followers:
                member = self.members.get(account)
                if member is not None:
                    self.ctx.tell(
                        addresses.account(account),
                        self._offer(member, item.fill.cause, fill, completion=True),
                    )

    # -- S3.1: who is reconciled when --------------------------------------------------------------

    def _synced(self, synced: MemberSynced) -> None:
        if synced.leader:
            self._leader_synced(synced)
            return
        account = synced.account
        if account not in self.members:
            return
        self._drift_watch(account)  # a follower rebuilt learns what it watches its drift by
        if synced.reconciled:
            # It has just run, on this answer, the reconciliation it had been sent: one
            # record for this return (S3.3).
            self.waiting.pop(account, None)
            return
        if not synced.reconcile or synced.start:
            return  # at a start the leader's own answer reconciles every follower
        if self.leader_confirmed:
            self._reconcile(account, synced.cause)
            return
        # S3.5: never toward the leader's positions from before its connection last became
        # connected; reconciled once its answer is in.
        self.waiting[account] = synced.cause
        if self.leader_unknown is not None:
            self._tell_waiting(account, self.leader_unknown)

    def _leader_synced(self, synced: MemberSynced) -> None:
        self.leader_positions = {s: q for s, q in synced.positions.items() if q}
        self.leader_confirmed = True
        self.leader_unknown = None
        everyone = synced.reconcile or self.reconcile_all
        self.reconcile_all = False
        waiting, self.waiting = self.waiting, {}
        before, self.orders_before = self.orders_before, None
        for account in self.members:
            self._drift_watch(account)
        if before is not None and not everyone and not synced.start:
            self._offer_changes(before)
        if everyone:
            for account in self.members:
                self._reconcile(account, synced.cause)
        else:
            for account, cause in waiting.items():
                if account in self.members:
                    self._reconcile(account, cause)
        if self.pending:
            self._complete()  # after the reconciliations: each follower takes them in order

    def _leader_unconfirmed(self, *, reconcile_all: bool) -> None:
        """The leader's connection changed state, or a fill of it was withdrawn: its positions
        are unknown until its next snapshot. A reconciliation toward them that a follower
        still holds back for its own snapshot is dropped."""
        self.leader_confirmed = False
        self.leader_unknown = None
        self.reconcile_all = reconcile_all
        for account in self.members:
            self.ctx.tell(addresses.account(account), LeaderUnconfirmed(self.id))
            self._drift_watch(account)

    def _leader_unknown(self, unknown: LeaderUnknown) -> None:
        """S3.5: the leader's snapshot failed; every follower waiting to be reconciled toward
        it is told what waits and why (the follower writes it once per wait)."""
        if self.leader_confirmed:
            return  # an answer came in since
        self.leader_unknown = unknown
        everyone = unknown.reconcile or self.reconcile_all
        for account in list(self.members) if everyone else list(self.waiting):
            if account in self.members:
                self._tell_waiting(account, unknown)

    def _tell_waiting(self, account: str, unknown: LeaderUnknown) -> None:
        self.ctx.tell(
            addresses.account(account),
            AwaitingLeader(self.id, self.leader, unknown.connection, unknown.since, unknown.reason),
        )

    def _reconcile(self, account: str, cause: str) -> None:
        if self.reconciled.get(account) == cause:
            return  # the leader and the follower came back together: reconcile once
        self.reconciled[account] = cause
        member = self.members[account]
        self.ctx.tell(
            addresses.account(account),
            ReconcileOrder(
                group=self.id,
                cause=f"reconcile:{cause}",
                leader_positions=dict(self.leader_positions),
                ratio=member.ratio,
                max_qty=member.max_qty,
                symbol_map=member.symbol_map,
                mirror=self._mirror_restore(member, f"reconcile:{cause}"),
            ),
        )

    # -- S8: the leader's working orders -----------------------------------------------------------

    def _orders_changed(self, changed: LeaderOrdersChanged) -> None:
        """Each follower copying orders is offered what changed (S8.2, S8.5); a disabled
        membership too, its gate deciding (S8.6). A complete list (the leader's snapshot)
        only replaces what is known: the reconciliations it leads to mirror it (S8.7)."""
        if changed.complete:
            if self.orders_before is None and self.orders_known:
                self.orders_before = self.leader_orders
            self.leader_orders = {o.order_id: o for o in changed.orders}
            self.orders_known = True  # a group rebuilt after a crash knew nothing before
            return
        for order in changed.orders:
            if order.working:
                self.leader_orders[order.order_id] = order
            else:
                self.leader_orders.pop(order.order_id, None)
        for member in self.members.values():
            if member.copy is CopyMode.ORDERS:
                self.ctx.tell(
                    addresses.account(member.account),
                    MirrorOffer(self._terms(member), changed.orders),
                )

    def _offer_changes(self, before: dict[str, LeaderOrder]) -> None:
        """The leader's snapshot came without a return to reconcile (its actor or the group
        was rebuilt, a snapshot was asked again): what changed of its working orders since
        the group last knew them is offered as it would have been (S8.2, S8.5)."""
        now = self.leader_orders
        changed = [o for o in now.values() if before.get(o.order_id) != o]
        ended = [replace(o, working=False) for i, o in before.items() if i not in now]
        if changed or ended:
            self._orders_changed(LeaderOrdersChanged((*changed, *ended)))

    def _terms(self, member: Membership) -> MirrorTerms:
        return MirrorTerms(
            self.id, member.ratio, member.max_qty, member.symbol_map, dict(self.leader_positions)
        )

    def _mirror_restore(self, member: Membership, cause: str) -> MirrorRestore | None:
        if member.copy is not CopyMode.ORDERS:
            return None
        return MirrorRestore(self._terms(member), tuple(self.leader_orders.values()), cause)

    def _restore_mirrors(self, account: str, cause: str) -> None:
        """S8.6: a follower starting to copy again gets mirrors of the leader's orders that
        close its position (never opening ones)."""
        member = self.members.get(account)
        restore = None if member is None else self._mirror_restore(member, cause)
        if restore is not None and self.leader_confirmed:
            self.ctx.tell(addresses.account(account), restore)
        elif restore is not None:
            # The leader's orders are unknown (S3.5): its return restores the mirrors; the
            # follower has its terms meanwhile, and holds the mirrors it has to them.
            self.ctx.tell(addresses.account(account), MirrorOffer(restore.terms, ()))

    # -- S6.2: the user's sync ---------------------------------------------------------------------

    def _sync(self, sync: SyncMember) -> None:
        """The follower's target comes from the leader's confirmed positions only (S3.5): while
        they are unknown the follower is told so, and sends nothing."""
        member = self.members.get(sync.account)
        if member is None:
            self.ctx.storage.activity(
                Level.WARNING,
                Kind.SKIP,
                f"sync of {sync.account} not done: it no longer follows group {self.id}",
                account=sync.account,
            )
            return
        self.ctx.tell(
            addresses.account(sync.account),
            SyncOrder(
                group=self.id,
                cause=sync.cause,
                leader_positions=dict(self.leader_positions) if self.leader_confirmed else None,
                ratio=member.ratio,
                max_qty=member.max_qty,
                symbol_map=member.symbol_map,
                expect=sync.expect,
            ),
        )

    # -- memberships -------------------------------------------------------------------------------

    def _set_disable_reason(self, account: str, reason: str) -> None:
        member = self.members.get(account)
        if member is None or member.disable_reason == reason:
            return
        self.members[account] = replace(member, disable_reason=reason)
        self.ctx.storage.set_disable_reason(self.id, account, reason)
        self._drift_watch(account)

    # -- S10.1: what a follower watches its drift by -----------------------------------------------

    def _drift_watch(self, account: str) -> None:
        member = self.members.get(account)
        if member is None:
            return
        self.ctx.tell(
            addresses.account(account),
            DriftWatch(
                group=self.id,
                leader=self.leader,
                terms=DriftTerms(member.ratio, member.max_qty, member.symbol_map),
                enabled=not member.disable_reason,
                on_drift=self.on_drift,
                leader_positions=dict(self.leader_positions) if self.leader_confirmed else None,
            ),
        )
