"""A follower's mirrors of its leader's working orders (S8), in the follower's own actor.

A plain class the follower's AccountActor owns. It places a mirror of each leader order the
group offers (a bracket as a bracket, an OCO pair as a pair, in one request), sized by S8.3
against the follower's own position; follows the leader's modifications and cancels (S8.5);
matches the leader's fills against the mirror's own (S8.4: what a mirror already filled is the
copy; what it has not, it is given ``mirror_grace`` for, then its remainder is cancelled and the
rest goes out at market); keeps closing mirrors within the position, cancelling them when it is
flat (S8.3, S2.10); and, when the follower starts copying again, cancels mirrors of orders gone,
modifies changed ones and places the closing ones only (S8.6, S8.7).

Every mirror passes the account's risk gate (S8.6) and carries a client order id derived from
the leader order, the account and the mirror's version (S8.9). What is durable is at the
broker: after a restart the mirrors are found among the account's working orders by their ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from actors import addresses
from actors.book import Book, Working
from actors.messages.account import (
    CopyOffer,
    MirrorGraceEnded,
    MirrorOffer,
    MirrorRestore,
    MirrorTerms,
)
from actors.messages.connection import CancelWorking, ModifyOrder
from actors.messages.risk import GateOrder, OrderIntent
from brokers.base import (
    AccountSnapshot,
    Fill,
    LegRequest,
    LegRole,
    ModifyRequest,
    OrderRequest,
)
from brokers.instruments import map_symbol
from engine.domain.activity import Kind, Level
from engine.domain.copy_rule import copy_quantity, reconciliation_quantity, target
from engine.domain.mirroring import LeaderOrder, Resting, mirror_quantity, size_mirror
from engine.domain.order_ids import OrderKind, mirror_order_id, mirror_prefix
from engine.domain.working import WorkingLine
from engine.host.base import ActorContext


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


class MirrorHost(Protocol):
    """What of its account actor the mirrors use."""

    ctx: ActorContext
    id: str
    connection: str
    book: Book
    flattening: bool
    max_copy_age: timedelta

    def copy_at_market(self, offer: CopyOffer) -> None: ...

    def send_owed(self, cause: str, symbol: str, qty: int, fill_time: datetime) -> None: ...

    def send_reconcile(self, cause: str, symbol: str, qty: int) -> None: ...


@dataclass(slots=True)
class Mirror:
    """The follower's mirror of one leader order."""

    leader: LeaderOrder
    group: str
    symbol: str  # the follower's
    version: int
    client_order_id: str
    qty: int = 0  # signed total placed
    filled: int = 0  # signed quantity filled
    opening: bool = False  # placed as an opening order (an entry mirror, S2.10)
    pair: str | None = None  # the OCO pair it belongs to (sized once, S8.3)
    working: bool = True  # placed and not ended (or on its way)
    active: bool = True  # False for a bracket leg until its entry fills at the broker
    # S8.4: mirror fills no leader fill matched yet, and a share left to the mirror.
    unmatched: int = 0
    owed: int = 0
    owed_cause: str = ""
    owed_since: datetime | None = None
    grace: int = 0  # the timer that counts (a newer share restarts it)
    market_after_cancel: bool = False
    # A cancel or a modification decided while the mirror was on its way to the broker (no
    # broker id yet): sent once the broker accepts it.
    cancel_pending: bool = False
    modify_pending: tuple[int, str] | None = None

    @property
    def remaining(self) -> int:
        return self.qty - self.filled if self.working else 0


class Mirrors:
    def __init__(self, host: MirrorHost, grace: timedelta) -> None:
        self.host = host
        self.grace = grace
        self.by_leader: dict[str, Mirror] = {}
        self.by_order: dict[str, str] = {}  # mirror client order id -> leader order id
        self.versions: dict[str, int] = {}  # mirror id prefix -> highest version the broker knows
        self.terms: MirrorTerms | None = None
        # Leader orders whose mirror was decided (placed, or skipped) once they worked: a later
        # change of one without a mirror places none (S8.5 changes mirrors; S8.6 a follower
        # that joined gets no opening mirror of an order it was not given).
        self.decided: set[str] = set()

    # -- what others read --------------------------------------------------------------------

    def lines(self) -> tuple[WorkingLine, ...]:
        """Each working order of the account, with the leader order a mirror mirrors."""
        out = []
        for key, w in self.host.book.working.items():
            leader = self.by_order.get(key)
            out.append(
                WorkingLine(
                    w.broker_order_id,
                    w.client_order_id,
                    w.symbol,
                    w.qty,
                    w.order_type,
                    w.price,
                    w.stop,
                    w.role,
                    w.active,
                    leader,
                )
            )
        return tuple(out)

    def leader_of(self, client_order_id: str | None) -> str | None:
        return None if client_order_id is None else self.by_order.get(client_order_id)

    def receive(self, message: MirrorOffer | MirrorRestore | MirrorGraceEnded) -> None:
        match message:
            case MirrorOffer():
                self.offer(message)
            case MirrorRestore():
                self.restore(message)
            case MirrorGraceEnded():
                self.grace_ended(message)

    # -- S8.2 / S8.5: offers -----------------------------------------------------------------

    def offer(self, offer: MirrorOffer) -> None:
        self.terms = offer.terms
        placed: set[str] = set()
        for order in offer.orders:
            if order.order_id in placed:
                continue
            mirror = self.by_leader.get(order.order_id)
            if not order.working:
                self.decided.discard(order.order_id)
                self._leader_ended(order, mirror)
            elif mirror is not None:
                self._leader_changed(order, mirror)
            elif order.order_id not in self.decided and (order.active or order.parent is None):
                covered = self._place(order, offer.orders, offer.terms, reduce_only=False)
                placed.update(covered)
                # A bracket's legs not placed with their entry are decided when they work.
                self.decided.add(order.order_id)
                self.decided.update(c for c in covered if c in self.by_leader)

    def _symbol(self, leader_symbol: str, terms: MirrorTerms) -> str:
        return (
            map_symbol(leader_symbol, dict(terms.symbol_map))
            if terms.symbol_map
            else (leader_symbol)
        )

    def _linked(self, order: LeaderOrder, offered: Iterable[LeaderOrder]) -> list[LeaderOrder]:
        """The legs placed with ``order``: a bracket entry's (inactive legs), or its OCO
        sibling when both are new."""
        legs = []
        for other in offered:
            if other.order_id == order.order_id or not other.working:
                continue
            if (order.parent is None and other.parent == order.order_id and not other.active) or (
                order.oco == other.order_id
                and other.oco == order.order_id
                and other.order_id not in self.by_leader
            ):
                legs.append(other)
        return legs

    def _resting(self, symbol: str, skip: str = "") -> list[Resting]:
        return [
            Resting(m.remaining, m.opening, m.pair)
            for m in self.by_leader.values()
            if m.symbol == symbol
            and m.working
            and m.active
            and m.remaining
            and m.leader.order_id != skip
        ]

    def _place(
        self,
        order: LeaderOrder,
        offered: Iterable[LeaderOrder],
        terms: MirrorTerms,
        *,
        reduce_only: bool,
        cause: str = "",
    ) -> set[str]:
        """Place a mirror of ``order`` (with the legs placed with it); returns the leader
        order ids it covers."""
        host = self.host
        storage = host.ctx.storage
        symbol = self._symbol(order.symbol, terms)
        wanted = mirror_quantity(order.remaining, terms.ratio, terms.max_qty)
        legs = (
            []
            if order.oco is not None and order.oco in self.by_leader
            else self._linked(order, offered)
        )
        covered = {order.order_id, *(leg.order_id for leg in legs)}
        what = f"mirror of leader order {order.order_id} ({order.describe()})"
        if wanted == 0:
            self._skip(
                f"{what} not placed: it rounds to zero (rounds_to_zero, ratio {terms.ratio})"
            )
            return covered
        held = host.book.position(symbol)
        if host.flattening and held and _sign(held) != _sign(wanted):
            # S8.6: a mirror closing the position a flatten is closing is not placed. Judged
            # against the broker's position: the flatten in flight makes S2.2's P zero.
            self._skip(f"{what} not placed: it closes, and a flatten is in flight (flattening)")
            return covered
        position = host.book.projected(symbol)
        size = size_mirror(wanted, position, self._resting(symbol), terms.max_qty)
        qty = size.closing if reduce_only else size.qty
        if qty == 0:
            why = (
                "it would open, and a follower starting to copy again gets closing mirrors only"
                if reduce_only
                else "the follower's position and its other mirrors leave no room for it "
                f"(position {position:+d}, max_qty {terms.max_qty})"
            )
            self._skip(f"{what} not placed: {why}")
            return covered
        prefix = mirror_prefix(order.order_id, host.id)
        version = self.versions.get(prefix, 0) + 1
        self.versions[prefix] = version
        coid = mirror_order_id(order.order_id, host.id, version)
        pair = None
        bracket: list[LegRequest] = []
        oco: LegRequest | None = None
        for leg in legs:
            leg_id = mirror_order_id(leg.order_id, host.id, version)
            self.versions[mirror_prefix(leg.order_id, host.id)] = version
            leg_request = LegRequest(
                leg_id, leg.role or LegRole.STOP, leg.order_type, leg.price, leg.stop
            )
            if leg.parent == order.order_id:
                bracket.append(leg_request)
            else:
                oco = leg_request
                pair = min(order.order_id, leg.order_id)
        opening = size.opening != 0
        request = OrderRequest(
            client_order_id=coid,
            account=host.id,
            symbol=symbol,
            qty=qty,
            order_type=order.order_type,
            price=order.price,
            stop=order.stop,
            tif=order.tif,
            bracket=tuple(bracket),
            oco=oco,
            role=order.role if oco is not None else None,
        )
        self._track(order, terms.group, symbol, version, coid, qty, opening, pair)
        for leg in legs:
            leg_coid = mirror_order_id(leg.order_id, host.id, version)
            if leg.parent == order.order_id:  # a bracket leg: it works once the entry fills
                self._track(
                    leg, terms.group, symbol, version, leg_coid, -qty, False, order.order_id
                )
                self.by_leader[leg.order_id].active = False
            else:
                self._track(leg, terms.group, symbol, version, leg_coid, qty, opening, pair)
        host.book.working[coid] = Working(
            symbol, qty, coid, None, OrderKind.MIRROR, order.order_id, 1
        )
        storage.activity(
            Level.INFO,
            Kind.COPY,
            f"{what}: {'buy' if qty > 0 else 'sell'} {abs(qty)} {symbol}"
            + (f" with {len(legs)} leg{'s' if len(legs) > 1 else ''}" if legs else "")
            + (f" ({cause})" if cause else ""),
            account=host.id,
        )
        host.ctx.tell(
            addresses.risk(host.id),
            GateOrder(
                OrderIntent(
                    client_order_id=coid,
                    kind=OrderKind.MIRROR,
                    cause=order.order_id,
                    symbol=symbol,
                    qty=qty,
                    position=host.book.position(symbol),
                    projected=position,
                    request=request,
                    in_flight=host.book.in_flight(symbol, coid),
                )
            ),
        )
        return covered

    def _track(
        self,
        order: LeaderOrder,
        group: str,
        symbol: str,
        version: int,
        coid: str,
        qty: int,
        opening: bool,
        pair: str | None,
    ) -> None:
        old = self.by_leader.get(order.order_id)
        if old is not None:
            self.by_order.pop(old.client_order_id, None)
        self.by_leader[order.order_id] = Mirror(
            order, group, symbol, version, coid, qty=qty, opening=opening, pair=pair
        )
        self.by_order[coid] = order.order_id

    def _skip(self, text: str) -> None:
        self.host.ctx.storage.activity(Level.INFO, Kind.SKIP, text, account=self.host.id)

    def _leader_changed(self, order: LeaderOrder, mirror: Mirror) -> None:
        """S8.5: the leader modified its order (or a bracket leg became active)."""
        before = mirror.leader
        mirror.leader = order
        if not mirror.working or before.same_terms(order) or self.terms is None:
            return
        total = mirror.qty  # a bracket leg's size follows its entry's fill at the broker
        if order.parent is None:
            # Rescaled (S8.3), judged again against the position beside the other mirrors
            # (a larger mirror is clipped as a new one would be), never below what it filled.
            wanted = mirror_quantity(order.qty, self.terms.ratio, self.terms.max_qty)
            left = wanted - mirror.filled if _sign(wanted) == _sign(mirror.qty) else 0
            if abs(left) > abs(mirror.remaining):
                position = self.host.book.projected(mirror.symbol)
                resting = self._resting(mirror.symbol, skip=order.order_id)
                size = size_mirror(left, position, resting, self.terms.max_qty)
                left = size.closing if not mirror.opening else size.qty
            total = mirror.filled + left
            if _sign(total) != _sign(mirror.qty) or abs(total) < abs(mirror.filled):
                total = mirror.filled
        if total == mirror.qty and before.price == order.price and before.stop == order.stop:
            return
        if total == mirror.filled:  # nothing of it may work any more
            self._cancel(mirror)
            return
        self._modify(mirror, total, f"the leader modified order {order.order_id}")

    def _modify(self, mirror: Mirror, total: int, why: str) -> None:
        host = self.host
        broker_id = self._broker_id(mirror)
        if total == 0:
            return
        if broker_id is None:
            mirror.modify_pending = (total, why)
            return
        mirror.qty = total
        order = host.book.working.get(mirror.client_order_id)
        if order is not None:
            order.qty = total - mirror.filled
        host.ctx.tell(
            addresses.connection(host.connection),
            ModifyOrder(
                ModifyRequest(
                    host.id,
                    broker_id,
                    mirror.client_order_id,
                    qty=abs(total),
                    price=mirror.leader.price,
                    stop=mirror.leader.stop,
                )
            ),
        )
        host.ctx.storage.activity(
            Level.INFO,
            Kind.COPY,
            f"mirror {mirror.client_order_id} modified ({why}): {abs(total)} "
            f"{mirror.symbol} {mirror.leader.order_type.value}"
            + "".join(
                f" {name} {value}"
                for name, value in (("stop", mirror.leader.stop), ("price", mirror.leader.price))
                if value is not None
            ),
            account=host.id,
        )

    def _broker_id(self, mirror: Mirror) -> str | None:
        order = self.host.book.working.get(mirror.client_order_id)
        return None if order is None else order.broker_order_id

    def _cancel(self, mirror: Mirror) -> None:
        broker_id = self._broker_id(mirror)
        if broker_id is None:
            mirror.cancel_pending = True  # still on its way: cancelled once accepted
            return
        self.host.ctx.tell(
            addresses.connection(self.host.connection),
            CancelWorking(self.host.id, mirror.symbol, (broker_id,)),
        )

    def accepted(self, client_order_id: str | None) -> None:
        """The broker accepted a mirror: what was decided for it on its way is sent now."""
        leader = self.by_order.get(client_order_id or "")
        mirror = None if leader is None else self.by_leader.get(leader)
        if mirror is None:
            return
        if mirror.cancel_pending:
            mirror.cancel_pending = False
            mirror.modify_pending = None
            self._cancel(mirror)
        elif mirror.modify_pending is not None:
            (total, why), mirror.modify_pending = mirror.modify_pending, None
            self._modify(mirror, total, why)

    def _leader_ended(self, order: LeaderOrder, mirror: Mirror | None) -> None:
        """S8.5: the leader's order ended. Cancelled: each mirror is cancelled. Filled: the
        fills were matched as they came (S8.4); a mirror with nothing owed to it ends too."""
        if mirror is None:
            return
        mirror.leader = order
        filled_out = order.filled >= abs(order.qty)
        if mirror.working and not (filled_out and mirror.owed):
            self._cancel(mirror)
        if mirror.unmatched and not mirror.owed:
            self._settle(mirror)

    # -- S8.4: fills ---------------------------------------------------------------------------

    def leader_fill(self, offer: CopyOffer) -> bool:
        """A leader fill of one of its orders. ``False``: no mirror of that order, copied at
        once as in fills mode by the caller."""
        mirror = None if offer.order_id is None else self.by_leader.get(offer.order_id)
        if mirror is None or (not mirror.working and not mirror.unmatched):
            return False
        host = self.host
        position = host.book.projected(offer.symbol)
        share = copy_quantity(
            offer.before, offer.after, position - mirror.unmatched, offer.ratio, offer.max_qty
        )
        matched = 0
        if mirror.unmatched and _sign(share) == _sign(mirror.unmatched):
            matched = _sign(share) * min(abs(share), abs(mirror.unmatched))
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
        if working and _sign(working) == _sign(mirror.owed) and abs(working) >= abs(mirror.owed):
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
        if owed and since is not None:
            self.host.send_owed(mirror.owed_cause, mirror.symbol, owed, since)

    def mirror_fill(self, fill: Fill) -> None:
        """A fill of a mirror at the follower's broker: it is the copy (S8.4)."""
        leader = self.by_order.get(fill.client_order_id or "")
        mirror = None if leader is None else self.by_leader.get(leader)
        if mirror is None:
            return
        mirror.filled += fill.qty
        qty = fill.qty
        if mirror.owed and _sign(qty) == _sign(mirror.owed):
            taken = _sign(qty) * min(abs(qty), abs(mirror.owed))
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

    def position_changed(self, symbol: str) -> None:
        """Closing mirrors never add up to more than the position (an OCO pair counted once):
        reduced when it shrinks, cancelled when it is flat or they are on its side — and not
        placed again. The position is what is filled and what S2.2's P makes of it, the smaller
        (an engine order on its way that closes it leaves them nothing to close; one that adds
        to it gives them nothing more before it fills)."""
        book = self.host.book
        filled, projected = book.position(symbol), book.projected(symbol)
        position = 0
        if filled and _sign(filled) == _sign(projected):
            position = _sign(filled) * min(abs(filled), abs(projected))
        pairs: dict[str, list[Mirror]] = {}
        for m in self.by_leader.values():
            if m.symbol == symbol and m.working and not m.opening and m.active and m.remaining:
                pairs.setdefault(m.pair or m.leader.order_id, []).append(m)
        room = abs(position)
        for members in pairs.values():
            if not position or any(_sign(m.remaining) == _sign(position) for m in members):
                for mirror in members:
                    self._cancel(mirror)
                    mirror.working = False
                continue
            size = max(abs(m.remaining) for m in members)
            if size > room:
                for mirror in members:
                    if room == 0:
                        self._cancel(mirror)
                        mirror.working = False
                    elif abs(mirror.remaining) > room:
                        total = mirror.filled - _sign(position) * room
                        self._modify(mirror, total, "the position shrank")
                size = room
            room -= size
        self.clip_opening(symbol)

    def clip_opening(self, symbol: str) -> None:
        """S8.3, judged again as the position changes (a fill, or an order of the engine on its
        way): the mirrors that would add to it — opening ones, and closing ones the position
        has crossed to their side — were they all filled, never take ``|position|`` beyond
        ``max_qty`` (an OCO pair counted once): reduced, or cancelled when no room is left."""
        terms = self.terms
        if terms is None or terms.max_qty is None:
            return
        position = self.host.book.projected(symbol)
        pairs: dict[str, list[Mirror]] = {}
        for m in self.by_leader.values():
            if not (m.symbol == symbol and m.working and m.active and m.remaining):
                continue
            if m.opening or (position and _sign(m.remaining) == _sign(position)):
                pairs.setdefault(m.pair or m.leader.order_id, []).append(m)
        used = {1: 0, -1: 0}
        for members in pairs.values():
            side = _sign(members[0].remaining)
            room = max(0, terms.max_qty - max(0, side * position) - used[side])
            size = max(abs(m.remaining) for m in members)
            if size > room:
                for mirror in members:
                    if room == 0:
                        self._cancel(mirror)
                        mirror.working = False
                    else:
                        self._modify(mirror, mirror.filled + side * room, "the position grew")
                size = room
            used[side] += size

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

    # -- S8.6 / S8.7: starting to copy again -----------------------------------------------------

    def learn(self, snapshot: AccountSnapshot) -> None:
        """The highest version of each mirror the broker knows today, so a mirror placed again
        never repeats an id (S8.9)."""
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
        modified, and each leader order without a mirror gets its closing part only."""
        self.terms = terms = restore.terms
        host = self.host
        current = {o.order_id: o for o in restore.orders}
        prefixes = {mirror_prefix(order_id, host.id): order_id for order_id in current}
        found: dict[str, Working] = {}
        for key, order in list(host.book.working.items()):
            coid = order.client_order_id
            if order.kind is not OrderKind.MIRROR or not coid:
                continue
            mirrored = prefixes.get(coid.rpartition("-")[0] + "-")
            if mirrored is None:
                if order.broker_order_id is not None:
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
                position = host.book.projected(order.symbol)
                pair = leader.parent or (
                    None if leader.oco is None else min(leader.order_id, leader.oco)
                )
                mirror = Mirror(
                    leader,
                    terms.group,
                    order.symbol,
                    int(coid.rpartition("-")[2] or 1),
                    coid,
                    qty=order.qty,
                    # A bracket's leg is an exit of its entry's fill, never an opening order.
                    opening=leader.parent is None
                    and (not position or _sign(order.qty) == _sign(position)),
                    pair=pair,
                    active=order.active,
                )
                self.by_leader[leader_id] = mirror
                self.by_order[coid] = leader_id
            mirror.leader = leader
            wanted = mirror_quantity(leader.remaining, terms.ratio, terms.max_qty)
            stale = (order.price, order.stop) != (leader.price, leader.stop)
            if leader.parent is None and abs(order.qty) > abs(wanted):
                self._modify(mirror, mirror.filled + wanted, "the leader's order changed")
            elif stale:
                self._modify(mirror, mirror.qty, "the leader's order changed")
        placed: set[str] = set(found)
        for offered in restore.orders:
            if offered.order_id in placed or not offered.active:
                continue
            placed.update(
                self._place(offered, restore.orders, terms, reduce_only=True, cause=restore.cause)
            )
        self.decided = {o.order_id for o in restore.orders if o.active or o.order_id in found}
