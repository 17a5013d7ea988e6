"""A flatten-only reconciliation toward the leader's net positions (S3.2, S3.3), planned on the
follower's book: for each contract the group copies, where the follower stands, where the
leader's position puts it, and the order that moves it toward there without ever opening."""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.book import Book
from actors.messages.account import ReconcileOrder
from brokers.instruments import copies_root, map_symbol, split_symbol
from engine.domain.copy_rule import reconciliation_quantity, target


@dataclass(slots=True)
class Plan:
    """By symbol, in symbol order: what the reconciliation record says (S3.3)."""

    before: dict[str, int] = field(default_factory=dict)  # the follower's position
    target: dict[str, int] = field(default_factory=dict)  # t(L) of the leader's position
    orders: dict[str, int] = field(default_factory=dict)  # what is sent


def plan(book: Book, order: ReconcileOrder, *, liquidating: bool) -> Plan:
    """``liquidating``: a flatten is in flight, which covers every symbol (S3.2): nothing is
    sent."""
    symbol_map = dict(order.symbol_map)
    targets: dict[str, int] = {}
    for leader_symbol, qty in order.leader_positions.items():
        mine = map_symbol(leader_symbol, symbol_map)
        targets[mine] = targets.get(mine, 0) + target(qty, order.ratio, order.max_qty)
    out = Plan()
    for symbol in sorted(set(book.held()) | set(targets)):
        if not copies_root(split_symbol(symbol).root, symbol_map):
            continue
        goal = targets.get(symbol, 0)
        out.before[symbol] = book.position(symbol)
        out.target[symbol] = goal
        if liquidating:
            continue
        qty = reconciliation_quantity(book.projected(symbol), goal)
        if qty:
            out.orders[symbol] = qty
    return out
