"""S8.4: a follower's mirror fills at its broker on its own, and that fill is its copy; a
leader fill is matched against the mirror's, what the mirror has not filled is given
``mirror_grace``, then its remainder is cancelled and the rest goes out at market; mirror fills
no leader fill matched are settled flatten-only when the leader's order ends. Part of
:class:`~actors.mirrors.Mirrors`."""

from __future__ import annotations

from actors.messages.account import (
    CopyOffer,
    MirrorGraceEnded,
)
from actors.mirror_parts import Mirror, MirrorParts
from brokers.base import (
    Fill,
)
from engine.domain.activity import Kind, Level
from engine.domain.copy_rule import copy_quantity, reconciliation_quantity, target
from engine.domain.mirroring import sign, toward_target


class MirrorFills(MirrorParts):
    # -- S8.4: fills ---------------------------------------------------------------------------

    def leader_fill(self, offer: CopyOffer) -> bool:
        """A leader fill of one of its orders. ``False``: no mirror of that order, copied at
        once as in fills mode by the caller."""
        self.leader_now[offer.leader_symbol] = offer.after
        mirror = None if offer.order_id is None else self.by_leader.get(offer.order_id)
        if mirror is None or (not mirror.working and not mirror.unmatched):
            return False
        host = self.host
        position = host.book.projected(offer.symbol)
        share = copy_quantity(
            offer.before, offer.after, position - mirror.unmatched, offer.ratio, offer.max_qty
        )
        matched = 0
        if mirror.unmatched and sign(share) == sign(mirror.unmatched):
            matched = sign(share) * min(abs(share), abs(mirror.unmatched))
        mirror.unmatched -= matched
        rest = share - matched
        if rest:
            self._owe(mirror, rest, offer)
        if offer.order_done and mirror.unmatched and not mirror.owed:
            self._settle(mirror)
        return True

    def _owe(self, mirror: Mirror, rest: int, offer: CopyOffer) -> None:
        mirror.owed += rest
        mirror.owed_cause = offer.cause
        if mirror.owed_since is None:
            mirror.owed_since = offer.fill_time
        working = mirror.remaining
        if working and sign(working) == sign(mirror.owed) and abs(working) >= abs(mirror.owed):
            mirror.grace += 1
            self.host.ctx.schedule(
                self.grace,
                self.host.ctx.address,
                MirrorGraceEnded(mirror.leader.order_id, mirror.grace),
            )
            return
        self._give_up(mirror)

    def grace_ended(self, message: MirrorGraceEnded) -> None:
        mirror = self.by_leader.get(message.leader_order)
        if mirror is None or message.seq != mirror.grace or not mirror.owed:
            return
        self._give_up(mirror)

    def _give_up(self, mirror: Mirror) -> None:
        """The mirror's remainder is cancelled; once the broker confirms, what is still owed
        goes out at market (S8.4)."""
        if mirror.working:
            mirror.market_after_cancel = True
            self._cancel(mirror)  # on its way still: once the broker accepts it
            return
        self._send_owed(mirror)

    def _send_owed(self, mirror: Mirror) -> None:
        owed, mirror.owed = mirror.owed, 0
        since, mirror.owed_since = mirror.owed_since, None
        mirror.market_after_cancel = False
        if not owed or since is None:
            return
        held = self._held_to_target(mirror, owed)
        if held != owed:
            self._skip(
                f"{owed - held:+d} {mirror.symbol} still owed by mirror "
                f"{mirror.client_order_id} not sent at market: it would take the account past "
                "the leader's target now (the leader traded since, or max contracts cut it)"
            )
        if held:
            self.host.send_owed(mirror.owed_cause, mirror.symbol, held, since)

    def _held_to_target(self, mirror: Mirror, owed: int) -> int:
        """S8.4 and S2.2: what is owed goes toward ``t(L)`` at the leader's position now, never
        past it (``toward_target``)."""
        terms = self.terms
        if terms is None:
            return owed
        leader_symbol = mirror.leader.symbol
        leader = self.leader_now.get(leader_symbol, terms.leader_positions.get(leader_symbol, 0))
        goal = target(leader, terms.ratio, terms.max_qty)
        return toward_target(owed, self.host.book.projected(mirror.symbol), goal)

    def mirror_fill(self, fill: Fill) -> None:
        """A fill of a mirror at the follower's broker: it is the copy (S8.4)."""
        leader = self.by_order.get(fill.client_order_id or "")
        mirror = None if leader is None else self.by_leader.get(leader)
        if mirror is None:
            return
        mirror.filled += fill.qty
        qty = fill.qty
        if mirror.owed and sign(qty) == sign(mirror.owed):
            taken = sign(qty) * min(abs(qty), abs(mirror.owed))
            mirror.owed -= taken
            qty -= taken
            if not mirror.owed:
                mirror.owed_since = None
        mirror.unmatched += qty
        if fill.order_done:
            mirror.working = False
        if mirror.unmatched and not mirror.leader.working and not mirror.owed:
            self._settle(mirror)

    def _settle(self, mirror: Mirror) -> None:
        """S8.4: mirror fills no leader fill matched, once the leader's order ended: the
        follower is reconciled flatten-only in that symbol toward ``t(L)``."""
        mirror.unmatched = 0
        terms = self.terms
        host = self.host
        if terms is None:
            return
        leader_position = terms.leader_positions.get(mirror.leader.symbol, 0)
        position = host.book.projected(mirror.symbol)
        goal = target(leader_position, terms.ratio, terms.max_qty)
        qty = reconciliation_quantity(position, goal)
        cause = f"unmatched_mirror:{mirror.leader.order_id}"
        host.ctx.storage.reconciliation(
            host.id,
            host.connection,
            cause,
            {mirror.symbol: position},
            {mirror.symbol: goal},
            {mirror.symbol: qty} if qty else {},
        )
        host.ctx.storage.activity(
            Level.WARNING,
            Kind.RECONCILIATION,
            f"mirror of leader order {mirror.leader.order_id} filled where the leader's did not "
            f"(unmatched_mirror): flatten-only toward {goal:+d} {mirror.symbol}: "
            + (f"{qty:+d}" if qty else "nothing sent"),
            account=host.id,
        )
        if qty:
            host.send_reconcile(cause, mirror.symbol, qty)

    # -- the mirror's own events ---------------------------------------------------------------

    def ended(self, client_order_id: str | None) -> None:
        """A mirror left the book (cancelled, rejected, not sent)."""
        leader = self.by_order.get(client_order_id or "")
        mirror = None if leader is None else self.by_leader.get(leader)
        if mirror is None:
            return
        mirror.working = False
        if mirror.owed and self.host.flattening:
            # S8.6: the flatten cancelled it with everything else; what it still owed would
            # reopen what the flatten closes, and is not sent.
            self._skip(
                f"{mirror.owed:+d} {mirror.symbol} still owed by mirror {mirror.client_order_id} "
                "not sent at market: a flatten cancelled the mirror (flattening)"
            )
            mirror.owed = 0
            mirror.owed_since = None
            mirror.market_after_cancel = False
            return
        if mirror.market_after_cancel or mirror.owed:
            self._send_owed(mirror)
