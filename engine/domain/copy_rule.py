"""S2.2: how many contracts a follower trades for one leader fill.

``t(L) = sign(L) · min(round(ratio·|L|), max_qty)``, ratio an exact decimal, rounding half up on
the magnitude. A leader fill ``L → L'`` splits at ``Lc`` into a closing leg (``L → Lc``) and an
opening leg (``Lc → L'``); the legs net into one follower order.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

_ONE = Decimal(1)


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def target(leader: int, ratio: Decimal, max_qty: int | None) -> int:
    """The follower's target position for a leader net position (S2.2). At ratio 1 (most
    memberships) ``|L|`` is its own rounding: no decimal arithmetic on the copy path."""
    if ratio == _ONE:
        magnitude = abs(leader)
    else:
        magnitude = int((ratio * abs(leader)).to_integral_value(rounding=ROUND_HALF_UP))
    if max_qty is not None:
        magnitude = min(magnitude, max_qty)
    return _sign(leader) * magnitude


def split_point(before: int, after: int) -> int:
    """``Lc``: where a leader fill ``before → after`` stops closing and starts opening."""
    if before == 0:
        return 0
    if _sign(after) == _sign(before):
        return after if abs(after) <= abs(before) else before
    return 0


def copy_quantity(
    before: int, after: int, follower: int, ratio: Decimal, max_qty: int | None
) -> int:
    """The signed follower order for a leader fill ``before → after``.

    ``follower`` is the follower's position including the engine's orders still working for it.
    The closing leg moves it toward ``t(Lc)`` by at most ``|t(L) − t(Lc)|`` and only in the
    closing direction, so a follower that missed the entry is never pushed to the other side by
    the exit; the opening leg adds ``t(L') − t(Lc)``, clipped so ``|P|`` stays within
    ``max_qty``.
    """
    lc = split_point(before, after)
    t_before = target(before, ratio, max_qty)
    t_split = target(lc, ratio, max_qty)
    t_after = target(after, ratio, max_qty)

    closing = 0
    direction = _sign(t_split - t_before)
    gap = t_split - follower
    if direction and _sign(gap) == direction:
        closing = direction * min(abs(gap), abs(t_before - t_split))
    position = follower + closing

    opening = t_after - t_split
    if max_qty is not None and opening:
        if opening > 0:
            opening = max(0, min(opening, max_qty - position))
        else:
            opening = min(0, max(opening, -max_qty - position))
    return closing + opening


def closing_part(position: int, qty: int) -> int:
    """The part of an order ``qty`` that reduces ``position`` without taking it through zero
    (0 when the order opens or adds)."""
    if position == 0 or (position > 0) == (qty > 0):
        return 0
    return max(qty, -position) if position > 0 else min(qty, -position)


def reconciliation_quantity(position: int, target_position: int) -> int:
    """S3.2, flatten-only: the order that brings ``position`` toward ``target_position`` without
    ever opening or adding exposure (0 when nothing may be sent)."""
    if position == 0:
        return 0
    if target_position == 0 or _sign(target_position) != _sign(position):
        return -position
    if abs(position) > abs(target_position):
        return target_position - position
    return 0
