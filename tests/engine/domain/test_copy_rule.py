"""S2.2 quantities (``target``, ``split_point``, ``copy_quantity``) and S3.2 reconciliation
(``reconciliation_quantity``), with the property the issue asks for: a follower that is always
connected holds exactly ``t(L)`` after every leader fill."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.copy_rule import copy_quantity, reconciliation_quantity, split_point, target

D = Decimal


# --- target: t(L) = sign(L) · min(round(ratio·|L|), max_qty) -------------------------------------


@pytest.mark.parametrize(
    ("leader", "ratio", "expected"),
    [
        (0, "0.5", 0),
        (1, "0.5", 1),  # 0.5 rounds half up to 1
        (-1, "0.5", -1),  # half up on the magnitude: half away from zero
        (2, "0.5", 1),
        (3, "0.5", 2),  # 1.5 -> 2
        (-3, "0.5", -2),
        (1, "1.5", 2),  # 1.5 -> 2
        (2, "1.5", 3),
        (3, "1.5", 5),  # 4.5 -> 5
        (-3, "1.5", -5),
        (1, "2.5", 3),  # 2.5 -> 3
        (-1, "2.5", -3),
        (2, "2.5", 5),
        (1, "0.4", 0),  # 0.4 rounds down to 0
        (-1, "0.4", 0),
        (4, "1", 4),
        (-4, "2", -8),
    ],
)
def test_s2_2_target_rounds_half_up_on_the_magnitude(
    leader: int, ratio: str, expected: int
) -> None:
    assert target(leader, D(ratio), None) == expected


def test_s2_2_target_uses_the_ratio_as_an_exact_decimal() -> None:
    # 1.15 · 10 = 11.5 exactly, so 12; a float ratio (11.499999…) would give 11.
    assert target(10, D("1.15"), None) == 12
    assert target(-10, D("1.15"), None) == -12
    # 0.1 · 15 = 1.5 exactly -> 2; 0.29 · 50 = 14.5 -> 15.
    assert target(15, D("0.1"), None) == 2
    assert target(50, D("0.29"), None) == 15


@pytest.mark.parametrize(
    ("leader", "ratio", "max_qty", "expected"),
    [
        (5, "1", 3, 3),
        (-5, "1", 3, -3),
        (2, "2", 3, 3),
        (1, "2", 3, 2),  # under the cap: untouched
        (-1, "2", 3, -2),
        (3, "1", 3, 3),  # at the cap
        (100, "0.5", 7, 7),
        (0, "3", 1, 0),
    ],
)
def test_s2_2_target_caps_the_magnitude_at_max_qty_and_keeps_the_sign(
    leader: int, ratio: str, max_qty: int, expected: int
) -> None:
    assert target(leader, D(ratio), max_qty) == expected


def test_s2_2_target_without_max_qty_has_no_cap() -> None:
    assert target(1000, D("2.5"), None) == 2500
    assert target(-1000, D("2.5"), None) == -2500


@given(
    leader=st.integers(-10_000, 10_000),
    ratio=st.sampled_from(["1", "1.0", "1.000"]),
    max_qty=st.none() | st.integers(0, 50),
)
def test_s2_2_target_at_ratio_one_is_the_rule_without_decimal_arithmetic(
    leader: int, ratio: str, max_qty: int | None
) -> None:
    # S2.2's t(L) at ratio 1, however the ratio is written: sign(L) · min(|L|, max_qty).
    magnitude = abs(leader) if max_qty is None else min(abs(leader), max_qty)
    sign = (leader > 0) - (leader < 0)
    assert target(leader, D(ratio), max_qty) == sign * magnitude


# --- split_point: Lc ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "lc"),
    [
        (0, 3, 0),  # L = 0: an addition from flat, Lc = L
        (0, -2, 0),
        (2, 5, 2),  # same side, larger: an addition, Lc = L
        (-2, -5, -2),
        (5, 2, 2),  # same side, no larger: a reduction, Lc = L'
        (-5, -2, -2),
        (3, 0, 0),  # to flat
        (-3, 0, 0),
        (2, -3, 0),  # crosses zero
        (-2, 3, 0),
    ],
)
def test_s2_2_split_point(before: int, after: int, lc: int) -> None:
    assert split_point(before, after) == lc


# --- copy_quantity --------------------------------------------------------------------------------


def test_s2_2_worked_example() -> None:
    """Ratio 2, max_qty 3, leader buys 1, 1, 1 then sells 3: follower orders +2, +1, 0, −3."""
    ratio, max_qty = D(2), 3
    leader, follower = 0, 0
    orders = []
    for fill in (1, 1, 1, -3):
        qty = copy_quantity(leader, leader + fill, follower, ratio, max_qty)
        orders.append(qty)
        leader += fill
        follower += qty
    assert orders == [2, 1, 0, -3]
    assert follower == 0


@pytest.mark.parametrize(
    ("before", "after", "follower", "ratio", "expected"),
    [
        (2, 0, 0, "1", 0),  # missed the whole entry: the exit sends nothing
        (2, 1, 0, "1", 0),
        (-2, 0, 0, "1", 0),
        (3, 0, 1, "1", -1),  # missed part of it: closes only what it has
        (-3, 0, -1, "1", 1),
        (4, 2, 1, "1", 0),  # already at or below t(Lc) = 2: nothing to close
        (4, 0, 0, "2", 0),
    ],
)
def test_s2_2_exit_never_pushes_a_follower_that_missed_the_entry_to_the_other_side(
    before: int, after: int, follower: int, ratio: str, expected: int
) -> None:
    qty = copy_quantity(before, after, follower, D(ratio), None)
    assert qty == expected
    end = follower + qty
    assert end == 0 or (end > 0) == (follower > 0)


def test_s2_2_closing_leg_moves_at_most_the_leaders_share() -> None:
    # The follower holds more than t(L) (a manual add): the exit closes only |t(L) − t(Lc)|.
    assert copy_quantity(2, 0, 5, D(1), None) == -2
    assert copy_quantity(-2, -1, -4, D(1), None) == 1


def test_s2_2_crossing_zero_in_one_fill_nets_both_legs_into_one_order() -> None:
    assert copy_quantity(2, -3, 2, D(1), None) == -5
    assert copy_quantity(-1, 2, -2, D(2), None) == 6
    # With a cap: the closing leg goes to 0, the opening leg to t(L') = −2.
    assert copy_quantity(2, -3, 2, D(1), 2) == -4
    # Having missed the entry, the follower takes only the opening leg.
    assert copy_quantity(2, -3, 0, D(1), None) == -3


def test_s2_2_opening_leg_is_clipped_so_the_position_never_exceeds_max_qty() -> None:
    # The follower already holds 2 (say, by hand); max_qty 3 leaves room for one.
    assert copy_quantity(0, 2, 2, D(1), 3) == 1
    assert copy_quantity(0, -2, -2, D(1), 3) == -1
    # At the cap already: nothing.
    assert copy_quantity(0, 2, 3, D(1), 3) == 0
    # Beyond the cap on the other side is not the opening leg's business.
    assert copy_quantity(0, 2, -5, D(1), 3) == 2
    # Crossing zero and clipping: closes 1, then opens only up to −3 … from 0.
    assert copy_quantity(1, -9, 1, D(1), 3) == -4


def test_s2_2_a_zero_result_sends_nothing() -> None:
    assert copy_quantity(2, 3, 3, D(1), 3) == 0
    assert copy_quantity(1, 2, 0, D("0.4"), None) == 1  # t(1)=0, t(2)=1
    assert copy_quantity(0, 1, 0, D("0.4"), None) == 0


# --- the property: P = t(L) after every fill ------------------------------------------------------

ratios = st.one_of(
    st.integers(1, 50).map(lambda n: Decimal(n) / 10),  # 0.1 … 5.0, one decimal place
    st.integers(10, 500).map(lambda n: Decimal(n) / 100),  # 0.10 … 5.00, two decimal places
)
fills = st.lists(
    st.integers(-20, 20).filter(lambda q: q != 0),
    min_size=1,
    max_size=30,
)


@settings(max_examples=500, deadline=None)
@given(fills=fills, ratio=ratios, max_qty=st.none() | st.integers(1, 25))
def test_s2_2_property_connected_follower_tracks_target_after_every_fill(
    fills: list[int], ratio: Decimal, max_qty: int | None
) -> None:
    leader = follower = 0
    for fill in fills:
        after = leader + fill
        follower += copy_quantity(leader, after, follower, ratio, max_qty)
        leader = after
        assert follower == target(leader, ratio, max_qty), (leader, follower)
        if max_qty is not None:
            assert abs(follower) <= max_qty


# --- S3.2 reconciliation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "goal", "expected"),
    [
        # follower flat: nothing, whatever the target
        (0, 0, 0),
        (0, 3, 0),
        (0, -2, 0),
        # target 0: close
        (3, 0, -3),
        (-2, 0, 2),
        # opposite sign: close (never flip to the target)
        (3, -2, -3),
        (-2, 1, 2),
        # same sign, larger than the target: reduce to it
        (5, 3, -2),
        (-5, -3, 2),
        # same sign, smaller or equal: nothing (never add)
        (2, 3, 0),
        (3, 3, 0),
        (-2, -3, 0),
        (-3, -3, 0),
    ],
)
def test_s3_2_reconciliation_quantity_is_flatten_only(
    position: int, goal: int, expected: int
) -> None:
    qty = reconciliation_quantity(position, goal)
    assert qty == expected
    end = position + qty
    assert abs(end) <= abs(position)  # never opens or adds exposure
    assert end == 0 or (end > 0) == (position > 0)  # never flips
