"""S6.2 ``plan_sync``: a follower brought to ``t(L)`` in every symbol its group copies — targets
with ratio, ``max_qty`` and ``symbol_map`` (S2.2, S2.3), opening and adding (the exception to
S2.5), orders already working counted, symbols the group does not copy untouched (S3.1) —
and nothing sent, with the reason, for a follower not connected, positions unknown (S3.5) or a
flatten in flight (S6.1); ``as_shown``: nothing sent when the plan is not the one shown."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import pytest

from engine.domain.sync_rule import (
    FollowerState,
    SyncPlan,
    SyncTerms,
    as_shown,
    describe_orders,
    plan_sync,
)

ES, MES, NQ = "ESZ6", "MESZ6", "NQZ6"
ONE = SyncTerms(Decimal(1), None)


def follower(
    positions: Mapping[str, int] | None = None,
    projected: Mapping[str, int] | None = None,
    *,
    state: str = "connected",
    confirmed: bool = True,
    flattening: bool = False,
) -> FollowerState:
    held = dict(positions or {})
    return FollowerState("f1", state, confirmed, flattening, held, dict(projected or held))


def test_a_flat_follower_opens_to_the_target() -> None:
    plan = plan_sync(follower(), {ES: 2}, ONE)
    assert plan == SyncPlan(before={ES: 0}, target={ES: 2}, orders={ES: 2})


def test_a_short_follower_adds_and_a_long_one_reduces() -> None:
    assert plan_sync(follower({ES: 1}), {ES: 3}, ONE).orders == {ES: 2}
    assert plan_sync(follower({ES: 5}), {ES: 3}, ONE).orders == {ES: -2}
    assert plan_sync(follower({ES: 2}), {ES: -1}, ONE).orders == {ES: -3}  # through zero


def test_at_its_target_nothing_to_send() -> None:
    plan = plan_sync(follower({ES: 2}), {ES: 2}, ONE)
    assert (plan.orders, plan.skip) == ({}, "")
    assert describe_orders(plan.orders) == "nothing to send"


@pytest.mark.parametrize(
    ("leader", "ratio", "max_qty", "expected"),
    [
        (2, "2", None, 4),
        (2, "2", 3, 3),  # S2.2: min(round(2·2), 3)
        (-2, "2", 3, -3),
        (3, "0.5", None, 2),  # 1.5 rounds half up
        (1, "0.5", None, 1),
    ],
)
def test_s2_2_the_target_is_t_of_l(
    leader: int, ratio: str, max_qty: int | None, expected: int
) -> None:
    plan = plan_sync(follower(), {ES: leader}, SyncTerms(Decimal(ratio), max_qty))
    assert (plan.target, plan.orders) == ({ES: expected}, {ES: expected})


def test_s2_3_a_mapped_symbol_is_synced_in_the_followers_root() -> None:
    terms = SyncTerms(Decimal(1), None, (("ES", "MES"),))
    plan = plan_sync(follower({ES: 4, MES: 1}), {ES: 2, NQ: -1}, terms)
    # ES is mapped away: the follower's own ES is not the group's to touch (S3.1)
    assert plan.target == {MES: 2, NQ: -1}
    assert plan.orders == {MES: 1, NQ: -1}
    assert plan.before == {MES: 1, NQ: 0}


def test_a_symbol_the_leader_left_is_closed() -> None:
    plan = plan_sync(follower({ES: 2, NQ: 1}), {ES: 2}, ONE)
    assert plan.orders == {NQ: -1}
    assert plan.target == {ES: 2, NQ: 0}


def test_working_orders_are_counted() -> None:
    """An order of the engine's still working counts as filled: no second order for it."""
    plan = plan_sync(follower({ES: 0}, {ES: 2}), {ES: 3}, ONE)
    assert (plan.before, plan.orders) == ({ES: 0}, {ES: 1})
    assert plan_sync(follower({ES: 0}, {ES: 3}), {ES: 3}, ONE).orders == {}


def test_the_leader_flat_closes_the_follower() -> None:
    assert plan_sync(follower({ES: -2}), {}, ONE).orders == {ES: 2}


@pytest.mark.parametrize(
    ("state", "skip"),
    [
        (follower({ES: 1}, state="disconnected"), "its connection f1 is disconnected"),
        (follower(state="reauth_required"), "its connection f1 is reauth_required"),
        (
            follower({ES: 1}, confirmed=False),
            "its positions are unknown: the broker has not confirmed them since its connection"
            " returned (S3.5)",
        ),
    ],
)
def test_nothing_is_sent_to_a_follower_that_cannot_be_synced(
    state: FollowerState, skip: str
) -> None:
    plan = plan_sync(state, {ES: 3}, ONE)
    assert (plan.orders, plan.target, plan.skip) == ({}, {}, skip)
    assert plan.before == {s: q for s, q in state.positions.items() if q}


def test_s3_5_nothing_is_sent_toward_an_unknown_leader() -> None:
    plan = plan_sync(follower({ES: 1}), None, ONE)
    assert (plan.orders, plan.before) == ({}, {ES: 1})
    assert plan.skip.startswith("the leader's positions are unknown")


def test_s6_1_nothing_is_sent_while_a_flatten_is_in_flight() -> None:
    plan = plan_sync(follower({ES: 2}, flattening=True), {ES: 3}, ONE)
    assert (plan.target, plan.orders) == ({ES: 3}, {})
    assert plan.skip == "a flatten is in flight for it (S6.1)"


def test_as_shown_keeps_the_plan_shown_and_drops_a_changed_one() -> None:
    plan = plan_sync(follower({ES: 1}), {ES: 3}, ONE)
    assert as_shown(plan, None) is plan  # nothing shown: the plan goes
    assert as_shown(plan, {ES: 2, NQ: 0}) is plan  # a zero shown is no order
    changed = as_shown(plan, {ES: 3})
    assert (changed.orders, changed.target) == ({}, {ES: 3})
    assert changed.skip == (
        f"the orders changed since they were shown (shown: {ES} +3; now: {ES} +2) — run sync"
        " again to see them"
    )
    skipped = plan_sync(follower(state="disconnected"), {ES: 3}, ONE)
    assert as_shown(skipped, {ES: 3}) is skipped  # its own reason stands
