"""The values and rules of orders mode (S8): a leader's working order as a group fans it out,
and how large a follower's mirror of it may be.

Pure: the follower's account actor (``actors/mirrors.py``) decides with these against its own
position; a preview or a test judges a mirror alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from brokers.base import LegRole, OrderType, TimeInForce


def sign(value: int) -> int:
    """-1, 0 or +1: the side of a signed quantity."""
    return (value > 0) - (value < 0)


@dataclass(frozen=True, slots=True)
class LeaderOrder:
    """A leader's order working at its broker (or one that just ended), as the group offers
    it to its followers in orders mode (S8.2)."""

    order_id: str  # the leader's broker order id
    symbol: str  # the leader's symbol
    qty: int  # signed total quantity
    order_type: OrderType
    price: Decimal | None = None
    stop: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    filled: int = 0  # unsigned quantity filled so far
    role: LegRole | None = None
    parent: str | None = None  # a bracket leg: its entry's order id
    oco: str | None = None  # the order it cancels when it fills
    active: bool = True  # a bracket leg works only once its entry has filled
    working: bool = True  # False once it ended (filled, cancelled, expired)

    @property
    def remaining(self) -> int:
        """The signed quantity still working (0 once ended)."""
        if not self.working:
            return 0
        return sign(self.qty) * max(0, abs(self.qty) - self.filled)

    def same_terms(self, other: LeaderOrder) -> bool:
        """Whether a mirror of ``other`` needs no modification to mirror this."""
        return (self.qty, self.price, self.stop) == (other.qty, other.price, other.stop)

    def describe(self) -> str:
        """``buy 2 ESZ6 limit 4990`` / ``sell 1 ESZ6 stop 4980 (stop leg)``."""
        side = "buy" if self.qty > 0 else "sell"
        prices = " ".join(
            str(p) for p in (self.stop, self.price) if p is not None
        )  # a stop-limit: stop, then limit
        leg = f" ({self.role.value} leg)" if self.role else ""
        return f"{side} {abs(self.qty)} {self.symbol} {self.order_type.value} {prices}{leg}"


def mirror_quantity(leader_qty: int, ratio: Decimal, max_qty: int | None) -> int:
    """S8.3: ``q = min(round(ratio·qty_L), max_qty)``, half up on the magnitude, signed like
    the leader's order; 0 means the mirror is not placed (``rounds_to_zero``)."""
    magnitude = int((ratio * abs(leader_qty)).to_integral_value(rounding=ROUND_HALF_UP))
    if max_qty is not None:
        magnitude = min(magnitude, max_qty)
    return sign(leader_qty) * magnitude


def within_target(qty: int, position: int, goal: int) -> int:
    """An order ``qty`` at ``position`` that goes no further than ``goal`` on its side: the part
    that would take the position past it is cut off (nothing is sent when the position is there
    already); an order away from ``goal``'s side is left as it is.

    A follower copying orders, completing a leader fill after a restart (S2.9), does not know
    which leader order the fill was of, nor so whether a mirror of it filled already — those
    fills being the copy (S8.4), its position holds them: the completion is held to the
    leader's target after the fill."""
    side = sign(goal)
    if not side or sign(qty) != side:
        return qty
    return side * min(abs(qty), max(0, side * (goal - position)))


def toward_target(qty: int, position: int, goal: int) -> int:
    """The part of an order ``qty`` at ``position`` that moves it toward ``goal`` without
    passing it: nothing when the position is at ``goal`` already or beyond it on ``qty``'s
    side.

    A share a mirror still owes of a leader fill (S8.4) goes out at market when its grace
    ends; the leader may have traded since (closed, say), and the follower holds ``t(L)``
    now, not at the fill (S2.2): what would take it past the leader's target now is not
    owed any more. A part the max-contracts gate cut (S9.2) is never owed either: were the
    leader still there, the gate would cut it again; were it gone, it would open the follower
    against a flat leader."""
    if qty > 0:
        return min(qty, max(0, goal - position))
    if qty < 0:
        return -min(-qty, max(0, position - goal))
    return 0


@dataclass(frozen=True, slots=True)
class Resting:
    """A mirror already resting for the follower in the symbol: its signed remaining quantity,
    whether it was placed as an opening one, its OCO pair (counted once), and — for one placed
    through the position (S8.3's split) — the part of it placed as closing (``closing``, None
    for a mirror wholly closing or wholly opening)."""

    qty: int
    opening: bool
    pair: str | None = None
    closing: int | None = None

    @property
    def closes_up_to(self) -> int:
        """How much of it may close a position against it: all of a closing mirror, the
        closing part of one split through the position, none of an entry."""
        if self.closing is None:
            return 0 if self.opening else abs(self.qty)
        return min(self.closing, abs(self.qty))


@dataclass(frozen=True, slots=True)
class MirrorSize:
    """A mirror's size judged against the follower's position: ``closing`` part (up to the
    position, beside the other closing mirrors) and ``opening`` part (clipped so that were
    every opening mirror filled, ``|position|`` stays within ``max_qty``)."""

    closing: int
    opening: int

    @property
    def qty(self) -> int:
        return self.closing + self.opening


def through(qty: int, position: int) -> bool:
    """Whether an order of ``qty`` lies against ``position`` for more than it: alone it would
    take the follower through zero (S8.3's split: a closing part, and an opening one)."""
    return position != 0 and sign(qty) != sign(position) and abs(qty) > abs(position)


def closing_parts(position: int, resting: Sequence[Resting]) -> list[int]:
    """The part of each resting mirror that closes ``position`` (unsigned, 0 for one on the
    position's side): the position goes to the closing mirrors first, then to the closing
    parts of mirrors split through it, in their order; an OCO pair takes its share once (both
    orders are given it, as either may fill). What a mirror does not close, it opens."""
    parts = [0] * len(resting)
    if not position:
        return parts
    against = -sign(position)
    left = abs(position)
    taken: dict[str, int] = {}
    order = sorted(
        (i for i, r in enumerate(resting) if sign(r.qty) == against),
        key=lambda i: resting[i].opening,
    )
    for i in order:
        r = resting[i]
        if r.pair is not None and r.pair in taken:
            parts[i] = min(taken[r.pair], abs(r.qty))
            continue
        share = min(r.closes_up_to, left)
        left -= share
        parts[i] = share
        if r.pair is not None:
            taken[r.pair] = share
    return parts


def _exposure(
    resting: Sequence[Resting], parts: Sequence[int], *, opening: bool, direction: int
) -> int:
    """The resting mirrors' unsigned quantity in ``direction`` that closes the position (their
    ``parts``) or that opens (the rest), an OCO pair counted once."""
    pairs: dict[str, int] = {}
    total = 0
    for order, part in zip(resting, parts, strict=True):
        if sign(order.qty) != direction:
            continue
        size = abs(order.qty) - part if opening else part
        if order.pair is None:
            total += size
        else:
            pairs[order.pair] = max(pairs.get(order.pair, 0), size)
    return total + sum(pairs.values())


def size_mirror(
    qty: int, position: int, resting: Iterable[Resting], max_qty: int | None
) -> MirrorSize:
    """S8.3: split a mirror of ``qty`` at the follower's ``position`` (S2.2's P: its market
    orders in flight counted, resting mirrors not) into its closing and opening parts.

    Closing mirrors never add up to more than the position: the closing part is what the
    other mirrors against it leave (``closing_parts``). A mirror that would alone take the
    follower through zero has an opening part, the rest, clipped so that, were it and every
    other opening part of the symbol filled, ``|position|`` would not exceed ``max_qty``; one
    that would not (a stop-loss or take-profit larger than what is left of the position) is
    its closing part only (decision 0029)."""
    resting = tuple(resting)
    parts = closing_parts(position, resting)
    direction = sign(qty)
    closing = 0
    if position and sign(position) != direction:
        room = abs(position) - _exposure(resting, parts, opening=False, direction=direction)
        closing = direction * max(0, min(abs(qty), room))
    opening = qty - closing
    if opening and sign(position) == -direction and not through(qty, position):
        opening = 0  # against the position and not through it: an exit, held to what is left
    if opening and max_qty is not None:
        held = max(0, direction * position)
        room = max_qty - held - _exposure(resting, parts, opening=True, direction=direction)
        opening = direction * max(0, min(abs(opening), room))
    return MirrorSize(closing, opening)
