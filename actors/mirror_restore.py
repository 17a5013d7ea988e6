"""S8.6, S8.7 and S8.9: when a follower starts copying again (its connection returns, it is
unlocked or joins a group, its actor is rebuilt) its mirrors are found at the broker by their
ids, those of orders gone cancelled, changed ones modified, and each leader order without one
mirrored for its closing part only. Part of :class:`~actors.mirrors.Mirrors`."""

from __future__ import annotations

from actors import addresses
from actors.book import Working
from actors.messages.account import (
    MirrorRestore,
)
from actors.messages.connection import CancelWorking
from actors.mirror_parts import Mirror, MirrorParts
from brokers.base import (
    AccountSnapshot,
)
from engine.domain.mirroring import LeaderOrder, mirror_quantity, sign, through
from engine.domain.order_ids import OrderKind, mirror_prefix


class MirrorRestoring(MirrorParts):
    # -- S8.6 / S8.7: starting to copy again -----------------------------------------------------

    def learn(self, snapshot: AccountSnapshot) -> None:
        """The highest version of each mirror the broker knows today, so a mirror placed again
        never repeats an id (S8.9); and how the mirrors working there are linked."""
        self.listed = {
            w.client_order_id: w
            for w in snapshot.working
            if w.client_order_id and w.client_order_id.startswith(OrderKind.MIRROR.value)
        }
        self.dropped &= set(self.listed)
        for coid in (
            *(r.client_order_id for r in snapshot.orders),
            *(w.client_order_id for w in snapshot.working if w.client_order_id),
        ):
            if not coid or not coid.startswith(OrderKind.MIRROR.value):
                continue
            prefix, _, version = coid.rpartition("-")
            if version.isdigit():
                key = prefix + "-"
                self.versions[key] = max(self.versions.get(key, 0), int(version))

    def restore(self, restore: MirrorRestore) -> None:
        """After the reconciliation: mirrors of leader orders gone are cancelled, changed ones
        modified, those found judged again as a whole against the position (S8.3, S2.10: a
        closing one beyond it reduced, or cancelled when it is flat; opening ones held within
        ``max_qty``), and each leader order without a mirror gets its closing part only."""
        self.terms = terms = restore.terms
        host = self.host
        current = {o.order_id: o for o in restore.orders}
        prefixes = {mirror_prefix(order_id, host.id): order_id for order_id in current}
        found: dict[str, Working] = {}
        for key, order in list(host.book.working.items()):
            coid = order.client_order_id
            if order.kind is not OrderKind.MIRROR or not coid or coid in self.dropped:
                continue
            mirrored = prefixes.get(coid.rpartition("-")[0] + "-")
            if mirrored is None:
                if order.broker_order_id is not None:
                    self.dropped.add(coid)
                    host.ctx.tell(
                        addresses.connection(host.connection),
                        CancelWorking(host.id, order.symbol, (order.broker_order_id,)),
                    )
                    self._skip(
                        f"mirror {key} cancelled: the leader order it mirrors no longer works"
                    )
                continue
            found[mirrored] = order
        for leader_id in list(self.by_leader):
            if leader_id not in found:
                gone = self.by_leader.pop(leader_id)
                self.by_order.pop(gone.client_order_id, None)
        for leader_id, order in found.items():
            leader = current[leader_id]
            known = self.by_leader.get(leader_id)
            coid = order.client_order_id or ""
            if known is not None and known.client_order_id == coid:
                mirror = known
            else:
                mirror = self._found(leader, order, terms.group)
                self.by_leader[leader_id] = mirror
                self.by_order[coid] = leader_id
            mirror.leader = leader
            wanted = mirror_quantity(leader.remaining, terms.ratio, terms.max_qty)
            stale = (order.price, order.stop) != (leader.price, leader.stop)
            if not mirror.leg and abs(order.qty) > abs(wanted):
                self._modify(mirror, mirror.filled + wanted, "the leader's order changed")
            elif stale:
                self._modify(mirror, mirror.qty, "the leader's order changed")
        # Each found alone was a part of a whole: the whole is judged again (S8.3, S2.10).
        for symbol in sorted({m.symbol for m in self.by_leader.values()}):
            self.position_changed(symbol, placing=True)
        placed: set[str] = set(found)
        for offered in restore.orders:
            if offered.order_id in placed or not offered.active:
                continue
            placed.update(
                self._place(offered, restore.orders, terms, reduce_only=True, cause=restore.cause)
            )
        self.decided = {o.order_id for o in restore.orders if o.active or o.order_id in found}

    def _found(self, leader: LeaderOrder, order: Working, group: str) -> Mirror:
        """A mirror found at the broker that this actor did not place (S8.9), judged as the
        broker links it: a bracket's leg is an exit of its entry's fill, never an opening
        order; any other mirror opens when it adds to the position (S2.2's P) or the follower
        is flat, closes when it lies against it, and does both when it lies against it for
        more than the position (it was placed through it, S8.3's split)."""
        coid = order.client_order_id or ""
        listed = self.listed.get(coid)
        leg = (listed.parent is not None) if listed is not None else leader.parent is not None
        if leg:
            pair = leader.parent
        elif listed is not None and listed.oco is None:
            pair = None  # not linked at the broker: a leader's leg mirrored on its own
        else:
            pair = leader.parent or (
                None if leader.oco is None else min(leader.order_id, leader.oco)
            )
        position = self.host.book.projected(order.symbol)
        # Placed through the position (S8.3's split): it closes what the other mirrors leave
        # of the position and opens the rest.
        split = through(order.qty, position)
        return Mirror(
            leader,
            group,
            order.symbol,
            int(coid.rpartition("-")[2] or 1),
            coid,
            qty=order.qty,
            opening=not leg and (not position or sign(order.qty) == sign(position) or split),
            pair=pair,
            closing=abs(position) if split and not leg else 0,
            active=order.active,
            leg=leg,
        )
