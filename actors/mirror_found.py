"""S8.3 and S2.10 for the mirrors at the broker not yet known here: an earlier life of the
actor, or an earlier membership, left them, and which leader order each one mirrors is learned
only when the follower starts copying again (S8.6, S8.7) — which waits for a confirmed leader
(S3.5). Meanwhile each is held by what the follower knows on its own, beside the mirrors it
knows: a bracket's leg, and a mirror against the position, close it — together never more than
the position, none when it is flat; any other opens it — never beyond ``max_qty``. Cancelled or
reduced, never made larger. Part of :class:`~actors.mirrors.Mirrors`."""

from __future__ import annotations

from actors import addresses
from actors.messages.connection import CancelWorking, ModifyOrder
from actors.mirror_parts import Mirror, MirrorParts
from brokers.base import ModifyRequest, WorkingOrder
from engine.domain.mirroring import sign, through


class MirrorFound(MirrorParts):
    @property
    def tracking(self) -> bool:
        """Whether any mirror is to be judged again as the position changes: one known here,
        or one the broker listed."""
        return bool(self.by_leader or self.listed)

    def hold_found(self, symbol: str | None = None) -> None:
        """Hold the mirrors found at the broker and not known here (in ``symbol``, or in every
        symbol) to the follower's position and ``max_qty``; an OCO pair or a bracket's legs
        count once, as only one of them can fill. An account that follows no group is left
        as it is (S8.8: what it has at the broker stays there)."""
        role = self.host.role
        if role.group is None or role.leader:
            return
        book = self.host.book
        found: dict[str, dict[str, list[WorkingOrder]]] = {}
        for coid, listed in self.listed.items():
            order = book.working.get(coid)
            if (
                coid in self.by_order
                or coid in self.dropped
                or order is None
                or order.broker_order_id is None
                or not order.active
                or not order.qty
                or (symbol is not None and order.symbol != symbol)
            ):
                continue
            linked = listed.parent or min(listed.broker_order_id, listed.oco or "~")
            found.setdefault(order.symbol, {}).setdefault(linked, []).append(listed)
        for where, groups in sorted(found.items()):
            self._hold_found_in(where, [groups[k] for k in sorted(groups)])

    def _hold_found_in(self, symbol: str, groups: list[list[WorkingOrder]]) -> None:
        book = self.host.book
        closable, projected = self._closable(symbol), book.projected(symbol)
        max_qty = None if self.terms is None else self.terms.max_qty
        against = -sign(closable)
        closing = self._pairs(symbol, lambda m: not m.opening)
        closing_room = abs(closable) - _standing([p for p in closing if _side(p) == against])
        adding = self._pairs(
            symbol, lambda m: m.opening or (projected != 0 and sign(m.remaining) == sign(projected))
        )
        opening_used = {s: _standing([p for p in adding if _side(p) == s]) for s in (1, -1)}
        for members in groups:
            side = sign(members[0].qty)
            size = max(abs(book.working[m.client_order_id or ""].qty) for m in members)
            # Against the position for more than it, it was placed through it (S8.3's split):
            # held as an opening one, the whole of it counted as opening.
            exit_ = members[0].parent is not None or (
                projected and side == -sign(projected) and not through(side * size, projected)
            )
            if exit_:
                keep = max(0, min(size, closing_room)) if closable and side == against else 0
                closing_room -= keep
                why = f"an exit the position ({closable:+d} {symbol}) does not hold"
            elif max_qty is None:
                continue
            else:
                room = max_qty - max(0, side * projected) - opening_used[side]
                keep = max(0, min(size, room))
                opening_used[side] += keep
                why = f"beyond max_qty {max_qty} beside the position ({projected:+d} {symbol})"
            for member in members:
                self._hold_found_one(member, keep, why)

    def _hold_found_one(self, listed: WorkingOrder, keep: int, why: str) -> None:
        coid = listed.client_order_id or ""
        order = self.host.book.working[coid]
        if abs(order.qty) <= keep:
            return
        connection = addresses.connection(self.host.connection)
        broker_id = order.broker_order_id or ""
        if keep == 0:
            self.dropped.add(coid)
            self.host.ctx.tell(connection, CancelWorking(self.host.id, order.symbol, (broker_id,)))
            self._skip(f"mirror {coid} found at the broker cancelled: {why} (S8.3)")
            return
        order.qty = sign(order.qty) * keep
        request = ModifyRequest(
            self.host.id,
            broker_id,
            coid,
            qty=listed.filled + keep,
            price=order.price,
            stop=order.stop,
        )
        self.host.ctx.tell(connection, ModifyOrder(request))
        self._skip(f"mirror {coid} found at the broker reduced to {keep}: {why} (S8.3)")


def _side(pair: list[Mirror]) -> int:
    return sign(pair[0].remaining)


def _standing(pairs: list[list[Mirror]]) -> int:
    """What mirrors stand for, an OCO pair (or a bracket's legs) counted once."""
    return sum(max(abs(m.remaining) for m in pair) for pair in pairs)
