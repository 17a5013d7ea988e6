"""S6.2: what ``sync F`` sends — follower F brought to ``t(L)`` in every symbol its group copies,
opening or adding if needed, at market.

One rule for the follower's actor, which sends the orders, and for the preview a person reads
before confirming, which must show exactly those orders. Nothing is decided on a position the
broker has not confirmed (S3.5): a follower whose positions or whose leader's are unknown, whose
connection is not connected, or whose flatten is in flight gets nothing, and the plan says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from brokers.instruments import copies_root, map_symbol, split_symbol
from engine.domain.copy_rule import target


@dataclass(frozen=True, slots=True)
class SyncTerms:
    """The follower's membership terms the targets are computed with (S2.2, S2.3)."""

    ratio: Decimal
    max_qty: int | None
    symbol_map: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class FollowerState:
    """Where the follower stands, as its actor knows it."""

    connection: str
    connection_state: str  # S1: "connected", "disconnected", "reauth_required"
    confirmed: bool  # its positions confirmed since its connection last became connected
    flattening: bool  # a flatten is in flight for it
    positions: Mapping[str, int]  # the broker's positions
    projected: Mapping[str, int]  # the positions once the engine's working orders have filled


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """By symbol, in symbol order: the follower's position, its target, and the orders to send
    (the S3.3 record); ``skip`` says why nothing is sent, empty when the orders go."""

    before: Mapping[str, int] = field(default_factory=dict)
    target: Mapping[str, int] = field(default_factory=dict)
    orders: Mapping[str, int] = field(default_factory=dict)
    skip: str = ""


def plan_sync(
    follower: FollowerState,
    leader_positions: Mapping[str, int] | None,
    terms: SyncTerms,
) -> SyncPlan:
    """``leader_positions``: the leader's net positions its broker confirmed since its
    connection last became connected (S3.5), None when they are not known."""
    before = {s: q for s, q in sorted(follower.positions.items()) if q}
    if follower.connection_state != "connected":
        why = f"its connection {follower.connection} is {follower.connection_state}"
        return SyncPlan(before=before, skip=why)
    if not follower.confirmed:
        why = (
            "its positions are unknown: the broker has not confirmed them since its"
            " connection returned (S3.5)"
        )
        return SyncPlan(before=before, skip=why)
    if leader_positions is None:
        why = (
            "the leader's positions are unknown: its broker has not confirmed them since"
            " its connection last returned (S3.5)"
        )
        return SyncPlan(before=before, skip=why)
    symbol_map = dict(terms.symbol_map)
    targets: dict[str, int] = {}
    for leader_symbol, qty in leader_positions.items():
        mine = map_symbol(leader_symbol, symbol_map)
        targets[mine] = targets.get(mine, 0) + target(qty, terms.ratio, terms.max_qty)
    held = {s for s, q in follower.positions.items() if q}
    held |= {s for s, q in follower.projected.items() if q}
    positions: dict[str, int] = {}
    goals: dict[str, int] = {}
    orders: dict[str, int] = {}
    for symbol in sorted(held | set(targets)):
        if not copies_root(split_symbol(symbol).root, symbol_map):
            continue  # only the symbols the group copies (S3.1)
        goal = targets.get(symbol, 0)
        positions[symbol] = follower.positions.get(symbol, 0)
        goals[symbol] = goal
        qty = goal - follower.projected.get(symbol, positions[symbol])
        if qty:
            orders[symbol] = qty
    if follower.flattening:
        return SyncPlan(positions, goals, {}, "a flatten is in flight for it (S6.1)")
    return SyncPlan(positions, goals, orders)


def as_shown(planned: SyncPlan, shown: Mapping[str, int] | None) -> SyncPlan:
    """``planned``, or nothing to send when its orders are not the ``shown`` ones the user
    confirmed (the leader or the follower traded in between): they confirmed those orders, not
    these. ``None``: nothing was shown, the orders planned go."""
    if planned.skip or shown is None or _same(shown, planned.orders):
        return planned
    return replace(
        planned,
        orders={},
        skip=f"the orders changed since they were shown (shown: {describe_orders(shown)};"
        f" now: {describe_orders(planned.orders)}) — run sync again to see them",
    )


def _same(shown: Mapping[str, int], now: Mapping[str, int]) -> bool:
    return {s: q for s, q in shown.items() if q} == {s: q for s, q in now.items() if q}


def describe_orders(orders: Mapping[str, int]) -> str:
    """``ESZ6 +2, NQZ6 -1``, or ``nothing to send``."""
    return ", ".join(f"{s} {q:+d}" for s, q in sorted(orders.items())) or "nothing to send"
