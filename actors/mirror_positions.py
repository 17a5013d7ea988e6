"""S8.3 and S2.10, judged again as the position changes: closing mirrors never add up to more
than the position and go when it is flat, opening ones never take it beyond ``max_qty``, and a
bracket's legs that start working are held to the same. Part of
:class:`~actors.mirrors.Mirrors`."""

from __future__ import annotations

from collections.abc import Callable

from actors.mirror_parts import Mirror, MirrorParts
from engine.domain.mirroring import closing_parts, sign


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
        elif client_order_id in self.listed:  # one found at the broker, not known here
            self.hold_found(self.listed[client_order_id].symbol)

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
        self.hold_found(symbol)

    def _closable(self, symbol: str) -> int:
        """What closing mirrors may close: the filled position and S2.2's P, the smaller, and
        nothing when P has left its side."""
        book = self.host.book
        filled, projected = book.position(symbol), book.projected(symbol)
        if filled and sign(filled) == sign(projected):
            return sign(filled) * min(abs(filled), abs(projected))
        return 0

    def clip_opening(self, symbol: str) -> None:
        """S8.3, judged again as the position changes (a fill, or an order of the engine on its
        way): the mirrors that would add to it — opening ones, and closing ones the position
        has crossed to their side — were they all filled, never take ``|position|`` beyond
        ``max_qty`` (an OCO pair counted once): reduced, or cancelled when no room is left.
        What of a mirror split through the position still closes it is not counted."""
        terms = self.terms
        if terms is None or terms.max_qty is None:
            return
        position = self.host.book.projected(symbol)

        def adds(m: Mirror) -> bool:
            return m.opening or (position != 0 and sign(m.remaining) == sign(position))

        # The position is shared out among every mirror against it, exits included: what a
        # mirror split through it still closes is what the exits leave of it.
        every = self._pairs(symbol, lambda m: True)
        shares = closing_parts(position, [members[0].resting for members in every])
        used = {1: 0, -1: 0}
        for group, closes in zip(every, shares, strict=True):
            members = [m for m in group if adds(m)]
            if not members:
                continue
            side = sign(members[0].remaining)
            room = max(0, terms.max_qty - max(0, side * position) - used[side]) + closes
            used[side] += max(0, self._hold_to(members, room, "the position grew") - closes)

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
