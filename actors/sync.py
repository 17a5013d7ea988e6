"""The user's ``sync`` of a follower, in its account actor (S6.2).

The orders come from ``engine.domain.sync_rule`` — the rule the preview a person confirms is
computed with — on the follower's own book: its broker positions, the engine's orders still
working for it, whether the broker confirmed them (S3.5), and whether a flatten is in flight.
Each order then passes the risk gate like any other (rejected in ``LIQUIDATE_ONLY`` and
``LOCKED``). One reconciliation record per sync is written, also when nothing is sent.
"""

from __future__ import annotations

from actors.book import Book
from actors.messages.account import SyncOrder
from engine.domain.activity import Kind, Level
from engine.domain.sync_rule import (
    FollowerState,
    SyncPlan,
    SyncTerms,
    as_shown,
    describe_orders,
    plan_sync,
)
from engine.host.storage import Storage


def follower_state(
    book: Book, connection: str, state: str, confirmed: bool, flattening: bool
) -> FollowerState:
    return FollowerState(
        connection=connection,
        connection_state=state,
        confirmed=confirmed,
        flattening=flattening or book.liquidating(),
        positions=book.held(),
        projected=book.projection(),
    )


def plan(follower: FollowerState, order: SyncOrder) -> SyncPlan:
    """The orders to send; none when the plan is not the one the user confirmed."""
    terms = SyncTerms(order.ratio, order.max_qty, order.symbol_map)
    return as_shown(plan_sync(follower, order.leader_positions, terms), order.expect)


def record(
    storage: Storage, account: str, connection: str, order: SyncOrder, planned: SyncPlan
) -> None:
    """The S3.3 record (its cause ``sync:N`` is its reason) and the activity entry."""
    storage.reconciliation(
        account, connection, order.cause, planned.before, planned.target, planned.orders
    )
    if planned.skip:
        storage.activity(
            Level.WARNING,
            Kind.SKIP,
            f"sync toward the leader ({order.cause}): nothing sent — {planned.skip}",
            account=account,
        )
        return
    storage.activity(
        Level.INFO,
        Kind.RECONCILIATION,
        f"sync toward the leader ({order.cause}): {describe_orders(planned.orders)}",
        account=account,
    )
