"""S8.3 and S2.10, judged again as the position changes: closing mirrors never add up to more
than the position and go when it is flat, opening ones never take it beyond ``max_qty``, and a
bracket's legs that start working are held to the same. Part of
:class:`~actors.mirrors.Mirrors`."""

from __future__ import annotations

from collections.abc import Callable

from actors import addresses
from actors.messages.connection import CancelWorking, ModifyOrder
from actors.mirror_parts import Mirror, MirrorParts
from brokers.base import ModifyRequest, WorkingOrder
from engine.domain.mirroring import sign


class MirrorPositions(MirrorParts):
    def resized(self, client_order_id: str | None, remaining: int) -> None:
        """The broker resized a mirror (a bracket leg activated by its entry's fill)."""
        leader = self.by_order.get(client_order_id or "")
        mirror = None if leader is None else self.by_leader.get(leader)
        if mirror is not None:
            mirror.qty = mirror.filled + remaining
            activated, mirror.active = not mirror.active, True
            if activated:  # a closing leg, sized to the entry's fill: within the position too
                self.position_changed(mirror.symbol)

    def gate_clipped(self, client_order_id: str, qty: int) -> None:
        leader = self.by_order.get(client_order_id)
        mirror = None if leader is None else self.by_leader.get(leader)
        if mirror is None:
            return
        if qty == 0:
            mirror.working = False
            for other in self.by_leader.values():
                if other.version == mirror.version and (
                    other.leader.parent == leader or other.pair == mirror.pair is not None
                ):
                    other.working = False
        else:
            mirror.qty = qty

    # -- S8.3 / S2.10: closing mirrors follow the position ---------------------------------------

    def position_changed(self, symbol: str, *, placing: bool = False) -> None:
        """Closing mirrors never add up to more than the position (an OCO pair counted once):
        reduced when it shrinks, cancelled when it is flat or they are on its side — and not
        placed again. The position is what is filled and what S2.2's P makes of it, the smaller
        (an engine order on its way that closes it leaves them nothing to close; one that adds
        to it gives them nothing more before it fills) — or, ``placing`` (mirrors found at the
        broker judged as they are taken up), S2.2's P, as a mirror placed now is sized."""
        position = self.host.book.projected(symbol) if placing else self._closable(symbol)
        pairs = self._pairs(symbol, lambda m: not m.opening)
        room = abs(position)
        for members in pairs:
            if not position or any(sign(m.remaining) == sign(position) for m in members):
                self._hold_to(members, 0, "")
                continue
            room -= self._hold_to(members, room, "the position shrank")
        self.clip_opening(symbol)

    def _closable(self, symbol: str) -> int:
        """What closing mirrors may close: the filled position and S2.2's P, the smaller, and
        nothing when P has left its side."""
        book = self.host.book
        filled, projected = book.position(symbol), book.projected(symbol)
        if filled and sign(filled) == sign(projected):
            return sign(filled) * min(abs(filled), abs(projected))
        return 0

    def hold_found_exits(self) -> None:
        """S8.3, S2.10 for the bracket legs at the broker not yet known here as mirrors (an
        earlier life or membership left them; which leader order each mirrors is learned only
        when the follower starts copying again, S8.7, which waits for a confirmed leader):
        whatever the leader does, each is an exit of the follower's own position, so those the
        position does not hold — it is flat, or they lie on its side — are cancelled, and those
        beyond it reduced, beside the closing mirrors known (a bracket's legs counted once)."""
        book = self.host.book
        found: dict[str, dict[str, list[WorkingOrder]]] = {}
        for coid, listed in self.listed.items():
            order = book.working.get(coid)
            if (
                listed.parent is None
                or coid in self.by_order
                or coid in self.dropped
                or order is None
                or order.broker_order_id is None
                or not order.active
                or not order.qty
            ):
                continue
            found.setdefault(order.symbol, {}).setdefault(listed.parent, []).append(listed)
        for symbol, brackets in sorted(found.items()):
            position = self._closable(symbol)
            room = abs(position) - sum(
                max(abs(m.remaining) for m in pair)
                for pair in self._pairs(symbol, lambda m: not m.opening)
                if sign(pair[0].remaining) == -sign(position)
            )
            for _, legs in sorted(brackets.items()):
                size = max(abs(book.working[leg.client_order_id or ""].qty) for leg in legs)
                keep = 0
                if position and all(sign(leg.qty) == -sign(position) for leg in legs):
                    keep = max(0, min(size, room))
                room -= keep
                for leg in legs:
                    self._hold_found(leg, keep, position)

    def _hold_found(self, leg: WorkingOrder, keep: int, position: int) -> None:
        coid = leg.client_order_id or ""
        order = self.host.book.working[coid]
        broker_id = order.broker_order_id or ""
        connection = addresses.connection(self.host.connection)
        held = f"{position:+d} {order.symbol}"
        if keep == 0:
            self.dropped.add(coid)
            self.host.ctx.tell(connection, CancelWorking(self.host.id, order.symbol, (broker_id,)))
            self._skip(
                f"mirror {coid} cancelled: a bracket leg found at the broker, an exit the "
                f"position ({held}) does not hold (S8.3, S2.10)"
            )
        elif abs(order.qty) > keep:
            order.qty = sign(order.qty) * keep
            request = ModifyRequest(
                self.host.id,
                broker_id,
                coid,
                qty=leg.filled + keep,
                price=order.price,
                stop=order.stop,
            )
            self.host.ctx.tell(connection, ModifyOrder(request))
            self._skip(
                f"mirror {coid} reduced to {keep}: a bracket leg found at the broker, an exit "
                f"of the position ({held}) (S8.3)"
            )

    def clip_opening(self, symbol: str) -> None:
        """S8.3, judged again as the position changes (a fill, or an order of the engine on its
        way): the mirrors that would add to it — opening ones, and closing ones the position
        has crossed to their side — were they all filled, never take ``|position|`` beyond
        ``max_qty`` (an OCO pair counted once): reduced, or cancelled when no room is left."""
        terms = self.terms
        if terms is None or terms.max_qty is None:
            return
        position = self.host.book.projected(symbol)

        def adds(m: Mirror) -> bool:
            return m.opening or (position != 0 and sign(m.remaining) == sign(position))

        used = {1: 0, -1: 0}
        for members in self._pairs(symbol, adds):
            side = sign(members[0].remaining)
            room = max(0, terms.max_qty - max(0, side * position) - used[side])
            used[side] += self._hold_to(members, room, "the position grew")

    def _pairs(self, symbol: str, wanted: Callable[[Mirror], bool]) -> list[list[Mirror]]:
        """The working, active mirrors in ``symbol`` that ``wanted`` picks, an OCO pair (or a
        bracket's legs) together: only one of them can fill."""
        pairs: dict[str, list[Mirror]] = {}
        for m in self.by_leader.values():
            if m.symbol == symbol and m.working and m.active and m.remaining and wanted(m):
                pairs.setdefault(m.pair or m.leader.order_id, []).append(m)
        return list(pairs.values())

    def _hold_to(self, members: list[Mirror], room: int, why: str) -> int:
        """Reduce the mirrors of one pair to ``room`` (cancelled when there is none); returns
        the quantity the pair still stands for."""
        size = max(abs(m.remaining) for m in members)
        if size <= room:
            return size
        for mirror in members:
            if room == 0:
                self._cancel(mirror)
                mirror.working = False
            elif abs(mirror.remaining) > room:
                self._modify(mirror, mirror.filled + sign(mirror.remaining) * room, why)
        return room

    def flat_leftovers(self, symbol: str) -> None:
        """S2.10 after a copy: the account is flat in ``symbol``; its mirrors are cancelled,
        except entry mirrors (placed as opening) of leader orders still working."""
        for mirror in self.by_leader.values():
            if mirror.symbol != symbol or not mirror.working:
                continue
            if mirror.opening and mirror.leader.working:
                continue
            self._cancel(mirror)
            mirror.working = False
