"""S8.3: a mirror's quantity (``mirror_quantity``), its size against the follower's position
(``size_mirror``: closing part within the position beside the other closing mirrors, an OCO
pair counted once; opening part clipped by ``max_qty`` beside the other opening mirrors) and
the quantity a leader order still works for (``LeaderOrder.remaining``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.base import OrderType
from engine.domain.mirroring import (
    LeaderOrder,
    MirrorSize,
    Resting,
    mirror_quantity,
    size_mirror,
    toward_target,
    within_target,
)


@pytest.mark.parametrize(
    ("leader_qty", "ratio", "max_qty", "expected"),
    [
        (1, "1", None, 1),
        (1, "2", None, 2),
        (-1, "2", None, -2),  # signed like the leader's order
        (1, "0.4", None, 0),  # rounds to zero: not placed (rounds_to_zero)
        (-1, "0.4", None, 0),
        (1, "0.5", None, 1),  # half up
        (-1, "0.5", None, -1),  # half up on the magnitude
        (3, "0.5", None, 2),  # 1.5 -> 2
        (3, "2", 5, 5),  # min(6, max_qty)
        (-3, "2", 5, -5),
        (2, "1.5", 3, 3),
    ],
)
def test_s8_3_mirror_quantity_is_the_rounded_ratio_capped_by_max_qty(
    leader_qty: int, ratio: str, max_qty: int | None, expected: int
) -> None:
    assert mirror_quantity(leader_qty, Decimal(ratio), max_qty) == expected


@pytest.mark.parametrize(
    ("qty", "position", "resting", "max_qty", "expected"),
    [
        # Flat: the whole mirror opens, clipped by max_qty.
        (2, 0, [], None, MirrorSize(0, 2)),
        (4, 0, [], 3, MirrorSize(0, 3)),
        (-4, 0, [], 3, MirrorSize(0, -3)),
        # Adding: clipped so that the position and every opening mirror stay within max_qty.
        (2, 2, [], 3, MirrorSize(0, 1)),
        (1, 2, [Resting(1, opening=True)], 3, MirrorSize(0, 0)),
        (2, 0, [Resting(2, opening=True)], 3, MirrorSize(0, 1)),
        # Opening mirrors the other way do not take room from this side.
        (3, 0, [Resting(-2, opening=True)], 3, MirrorSize(0, 3)),
        # Closing: within the position, beside the other closing mirrors.
        (-1, 2, [], None, MirrorSize(-1, 0)),
        (1, -2, [], None, MirrorSize(1, 0)),
        (-2, 2, [Resting(-1, opening=False)], None, MirrorSize(-1, 0)),
        (-1, 1, [Resting(-1, opening=False)], None, MirrorSize(0, 0)),
        # An OCO pair counts once: only one of its legs can fill.
        (-1, 2, [Resting(-1, False, "p"), Resting(-1, False, "p")], None, MirrorSize(-1, 0)),
        (-1, 1, [Resting(-1, False, "p"), Resting(-1, False, "p")], None, MirrorSize(0, 0)),
        # Through zero: split as S2.2 splits a fill, the opening part clipped by max_qty.
        (-3, 1, [], None, MirrorSize(-1, -2)),
        (-3, 1, [], 1, MirrorSize(-1, -1)),
        (4, -2, [], 1, MirrorSize(2, 1)),
        # Against the position and not through it: an exit, held to what is left of it.
        (-2, 2, [Resting(-1, opening=False)], None, MirrorSize(-1, 0)),
        (-1, 1, [Resting(-1, opening=False)], 3, MirrorSize(0, 0)),
        # Through it alone: opens once the others have closed the position (decision 0029).
        (-2, 1, [Resting(-1, opening=False)], None, MirrorSize(0, -2)),
        (-2, 1, [Resting(-1, opening=False)], 1, MirrorSize(0, -1)),
        # A mirror split through the position closes with its closing part: the next one
        # has none to close, and its opening part is clipped beside the first one's (E17).
        (
            -2,
            1,
            [Resting(-2, True, "o1", closing=1), Resting(-2, True, "o1", closing=1)],
            3,
            MirrorSize(0, -2),
        ),
        (
            -1,
            1,
            [
                Resting(-2, True, "o1", closing=1),
                Resting(-2, True, "o1", closing=1),
                Resting(-2, True, "o2", closing=0),
                Resting(-2, True, "o2", closing=0),
            ],
            3,
            MirrorSize(0, 0),
        ),
        # Its fills went into the position first: what is left of it opens only.
        (-2, 1, [Resting(-1, True, closing=0)], 3, MirrorSize(-1, -1)),
        # An entry resting against the position (placed when flat) closes nothing of it.
        (-2, 2, [Resting(-1, opening=True)], None, MirrorSize(-2, 0)),
    ],
)
def test_s8_3_size_mirror_splits_closing_and_opening_parts(
    qty: int, position: int, resting: list[Resting], max_qty: int | None, expected: MirrorSize
) -> None:
    size = size_mirror(qty, position, resting, max_qty)
    assert size == expected
    assert size.qty == expected.closing + expected.opening


def test_s8_3_closing_mirrors_never_exceed_the_position() -> None:
    """However many closing mirrors rest, their total never exceeds the position."""
    for position in range(1, 6):
        resting: list[Resting] = []
        for _ in range(8):
            size = size_mirror(-2, position, resting, None)
            closed = sum(-r.closes_up_to for r in resting) + size.closing
            # An opening part only once the position is closed whole, and only through it.
            assert size.opening == 0 or (closed == -position and position < 2)
            if size.qty:
                resting.append(Resting(size.qty, size.opening != 0, closing=-size.closing))
        assert sum(r.closes_up_to for r in resting) == position


def _order(qty: int, filled: int = 0, working: bool = True) -> LeaderOrder:
    return LeaderOrder(
        "L1", "ESZ6", qty, OrderType.LIMIT, price=Decimal("4990"), filled=filled, working=working
    )


@pytest.mark.parametrize(
    ("qty", "filled", "working", "expected"),
    [
        (3, 0, True, 3),
        (3, 1, True, 2),
        (-3, 1, True, -2),  # signed like the order
        (3, 3, True, 0),
        (-2, 5, True, 0),  # never past zero
        (3, 1, False, 0),  # ended: nothing works any more
    ],
)
def test_s8_3_leader_order_remaining_is_what_still_works(
    qty: int, filled: int, working: bool, expected: int
) -> None:
    """S8.3 sizes a mirror from what the leader's order still works for."""
    assert _order(qty, filled, working).remaining == expected


@pytest.mark.parametrize(
    ("qty", "position", "goal", "expected"),
    [
        (1, 0, 1, 1),  # up to the goal
        (1, 1, 1, 0),  # there already: its mirror filled it
        (2, 1, 3, 2),
        (3, 1, 3, 2),  # cut at the goal
        (-2, -1, -2, -1),  # short alike
        (-1, 2, 1, -1),  # away from the goal's side: as it is
        (2, -1, 1, 2),  # from the other side, to the goal
        (3, -1, 1, 2),
        (1, 0, 0, 1),  # no side to hold it to
    ],
)
def test_s2_9_s8_4_a_completion_is_held_to_the_target(
    qty: int, position: int, goal: int, expected: int
) -> None:
    """A follower copying orders completing a leader fill after a restart may already hold it
    through its mirror (S8.4): the completion (S2.9) takes it to the target at most."""
    assert within_target(qty, position, goal) == expected


@pytest.mark.parametrize(
    ("qty", "position", "goal", "expected"),
    [
        (2, 0, 2, 2),  # the leader still there: all of it
        (2, 1, 2, 1),  # part of it filled already: the rest
        (1, 0, 0, 0),  # the leader closed since: nothing (E16)
        (1, 1, 2, 1),
        (1, 2, 2, 0),  # at the goal already
        (1, 3, 2, 0),  # past it already: never further
        (-2, 0, -1, -1),  # short alike, cut at the goal
        (-1, 0, 1, 0),  # away from the goal: nothing
        (0, 0, 3, 0),
    ],
)
def test_s8_4_a_share_still_owed_goes_toward_the_target_now_never_past_it(
    qty: int, position: int, goal: int, expected: int
) -> None:
    """S8.4 and S2.2: what a mirror still owes when its grace ends goes out at market only as
    far as ``t(L)`` at the leader's position now; a part max contracts cut is not owed."""
    assert toward_target(qty, position, goal) == expected
