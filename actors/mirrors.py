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
from datetime import timedelta

from actors import addresses
from actors.book import Working
from actors.messages.account import (
    MirrorGraceEnded,
    MirrorOffer,
    MirrorRestore,
    MirrorTerms,
)
from actors.messages.connection import CancelWorking, ModifyOrder
from actors.messages.risk import GateOrder, OrderIntent
from actors.mirror_fills import MirrorFills
from actors.mirror_found import MirrorFound
from actors.mirror_parts import Mirror, MirrorHost
from actors.mirror_positions import MirrorPositions
from actors.mirror_restore import MirrorRestoring
from brokers.base import (
    LegRequest,
    LegRole,
    ModifyRequest,
    OrderRequest,
    WorkingOrder,
)
from brokers.instruments import map_symbol
from engine.domain.activity import Kind, Level
from engine.domain.max_contracts import clip_opening, exposure_weight
from engine.domain.mirroring import LeaderOrder, Resting, mirror_quantity, sign, size_mirror
from engine.domain.order_ids import OrderKind, mirror_order_id, mirror_prefix
from engine.domain.working import WorkingLine


class Mirrors(MirrorFills, MirrorPositions, MirrorFound, MirrorRestoring):
    def __init__(self, host: MirrorHost, grace: timedelta) -> None:
        self.host = host
        self.grace = grace
        self.by_leader: dict[str, Mirror] = {}
        self.by_order: dict[str, str] = {}  # mirror client order id -> leader order id
        self.versions: dict[str, int] = {}  # mirror id prefix -> highest version the broker knows
        self.terms: MirrorTerms | None = None
        # The leader's position after the last of its fills offered here, by its symbol: what
        # a share still owed is held to (S8.4, ``MirrorFills._held_to_target``).
        self.leader_now: dict[str, int] = {}
        # Leader orders whose mirror was decided (placed, or skipped) once they worked: a later
        # change of one without a mirror places none (S8.5 changes mirrors; S8.6 a follower
        # that joined gets no opening mirror of an order it was not given).
        self.decided: set[str] = set()
        self.listed: dict[str, WorkingOrder] = {}
        self.dropped: set[str] = set()

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
        before, self.terms = self.terms, offer.terms
        if before is not None and _sizing(before) != _sizing(offer.terms):
            # The membership changed (a follower that joins again with other terms): the
            # mirrors it has are held to the new ones (S8.3), never made larger by them.
            for symbol in sorted({m.symbol for m in self.by_leader.values()}):
                self.position_changed(symbol, placing=True)
        self.hold_found()  # those not known yet, with the terms now known
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

    def _resting(self, symbol: str, skip: Mirror | None = None) -> list[Resting]:
        """The mirrors resting in ``symbol``, but ``skip`` and its OCO sibling (a mirror judged
        again is judged beside the others, not beside itself)."""
        return [
            m.resting
            for m in self.by_leader.values()
            if m.symbol == symbol
            and m.working
            and m.active
            and m.remaining
            and not (
                skip is not None and (m is skip or (skip.pair is not None and m.pair == skip.pair))
            )
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
        if host.flattening and held and sign(held) != sign(wanted):
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
        opening = qty != size.closing  # reduce-only, its opening part is not placed
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
        self._track(
            order, terms.group, symbol, version, coid, qty, opening, pair, closing=size.closing
        )
        for leg in legs:
            # A bracket leg works once the entry fills, as an exit of it; an OCO sibling is
            # sized and judged as its pair.
            exit_ = leg.parent == order.order_id
            self._track(
                leg,
                terms.group,
                symbol,
                version,
                mirror_order_id(leg.order_id, host.id, version),
                -qty if exit_ else qty,
                False if exit_ else opening,
                order.order_id if exit_ else pair,
                leg=exit_,
                closing=0 if exit_ else size.closing,
            )
            if exit_:
                self.by_leader[leg.order_id].active = False
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
        resting, others = (0, 0), None
        if host.book.rules.max_contracts is not None:  # S9.2: beside the account's others
            resting, others = host.book.exposure(symbol, coid)
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
                    resting=resting,
                    others=others,
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
        *,
        leg: bool = False,
        closing: int = 0,
    ) -> None:
        old = self.by_leader.get(order.order_id)
        if old is not None:
            self.by_order.pop(old.client_order_id, None)
        self.by_leader[order.order_id] = Mirror(
            order,
            group,
            symbol,
            version,
            coid,
            qty=qty,
            opening=opening,
            pair=pair,
            leg=leg,
            closing=abs(closing),
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
        if not mirror.leg:
            # Rescaled (S8.3), judged again against the position beside the other mirrors
            # (a larger mirror is clipped as a new one would be), never below what it filled.
            wanted = mirror_quantity(order.qty, self.terms.ratio, self.terms.max_qty)
            left = wanted - mirror.filled if sign(wanted) == sign(mirror.qty) else 0
            if abs(left) > abs(mirror.remaining):
                position = self.host.book.projected(mirror.symbol)
                resting = self._resting(mirror.symbol, skip=mirror)
                size = size_mirror(left, position, resting, self.terms.max_qty)
                left = size.closing if not mirror.opening else size.qty
                if mirror.opening:
                    mirror.closing = abs(mirror.filled + size.closing)
                    left = self._within_max_contracts(mirror, left)
            total = mirror.filled + left
            if sign(total) != sign(mirror.qty) or abs(total) < abs(mirror.filled):
                total = mirror.filled
        if total == mirror.qty and before.price == order.price and before.stop == order.stop:
            return
        if total == mirror.filled:  # nothing of it may work any more
            self._cancel(mirror)
            return
        self._modify(mirror, total, f"the leader modified order {order.order_id}")

    def _within_max_contracts(self, mirror: Mirror, left: int) -> int:
        """S9.2: what an opening mirror grown by a modification may have working, as the gate
        would let a new order rest beside the account's other orders and symbols (a
        modification does not pass the gate; an OCO pair is judged once, not against its own
        sibling) — never less than it has working now."""
        book = self.host.book
        cap = book.rules.max_contracts
        if cap is None:
            return left
        resting, exposure = book.exposure(mirror.symbol, mirror.client_order_id)
        buys, sells = resting
        for m in self.by_leader.values():
            if m is not mirror and mirror.pair is not None and m.pair == mirror.pair:
                if m.working and m.remaining > 0:
                    buys = max(0, buys - m.remaining)
                elif m.working and m.remaining < 0:
                    sells = max(0, sells + m.remaining)
        fit = clip_opening(
            mirror.symbol,
            book.projected(mirror.symbol),
            left,
            (buys, sells),
            exposure_weight(exposure, book.rules.contract_weights),
            cap,
            book.rules.contract_weights,
            rests=True,
        )
        return fit if abs(fit) >= abs(mirror.remaining) else mirror.remaining

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


def _sizing(terms: MirrorTerms) -> tuple[object, ...]:
    """What of a follower's terms sizes its mirrors (S8.3)."""
    return (terms.ratio, terms.max_qty, terms.symbol_map)


__all__ = ["Mirror", "MirrorHost", "Mirrors"]
