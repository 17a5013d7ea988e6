"""S9.2: max contracts — the weighted exposure, the clip of an opening order against the cap,
the reduction of a manual fill that went above it, and the refusal's text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.max_contracts import (
    MICRO_ROOTS,
    clip_opening,
    excess_reduction,
    exposure_weight,
    in_use,
    refusal_text,
    root_of,
    weight,
    worst_case,
)

D = Decimal
NONE: dict[str, Decimal] = {}


def test_s9_2_micros_weigh_a_tenth_and_full_size_one() -> None:
    assert {"MES", "MNQ", "M2K", "MYM", "MCL", "MGC"} == MICRO_ROOTS
    for root in MICRO_ROOTS:
        assert weight(root, NONE) == D("0.1")
    for root in ("ES", "NQ", "RTY", "YM", "CL", "GC", "ZB"):
        assert weight(root, NONE) == D(1)


def test_s9_2_the_profile_overrides_a_root_weight() -> None:
    weights = {"MES": D("0.2"), "NQ": D(2)}
    assert weight("MES", weights) == D("0.2")
    assert weight("NQ", weights) == D(2)
    assert weight("MNQ", weights) == D("0.1")
    assert weight("ES", weights) == D(1)


@pytest.mark.parametrize(
    ("symbol", "root"),
    [("ESZ6", "ES"), ("MESZ6", "MES"), ("M2KH7", "M2K"), ("MCLF7", "MCL"), ("weird", "weird")],
)
def test_s9_2_root_of_a_symbol(symbol: str, root: str) -> None:
    assert root_of(symbol) == root


def test_s9_2_in_use_sums_absolute_positions_by_weight() -> None:
    assert in_use({}, NONE) == D(0)
    assert in_use({"ESZ6": 1, "MESZ6": -15, "NQZ6": 0}, NONE) == D("2.5")
    assert in_use({"ESZ6": -2, "MNQZ6": 3}, {"MNQ": D("0.5")}) == D("3.5")


@pytest.mark.parametrize(
    ("projected", "qty", "allowed"),
    [
        (0, 1, 1),
        (0, 2, 2),
        (0, 3, 2),
        (0, -3, -2),
        # adding: only the room left opens
        (1, 3, 1),
        (-1, -3, -1),
        (2, 1, 0),
        # reversing: the closing part always goes, the opening part up to the cap
        (-1, 4, 3),
        (1, -4, -3),
        (-2, 5, 4),
        # closing only: never cut
        (2, -2, -2),
        (2, -1, -1),
        (0, 0, 0),
    ],
)
def test_s9_2_clip_opening_full_size_cap_two(projected: int, qty: int, allowed: int) -> None:
    assert clip_opening("ESZ6", projected, qty, (0, 0), D(0), D(2), NONE) == allowed


@pytest.mark.parametrize(
    ("projected", "qty", "resting", "allowed"),
    [
        # E20: long 1 with a resting sell 2 (1 closing, 1 opening) and N = 1; a resting sell 1
        # more would close against the position alone, but the sell 2 closes it first
        (1, -1, (0, 2), 0),
        # the resting sell 1 closes the long 1 first: the new one opens, within N = 1
        (1, -1, (0, 1), -1),
        # nothing resting on its side: as a market order, its closing part goes
        (1, -2, (0, 0), -2),
        (2, -2, (2, 0), -2),
        # adding beside resting orders on its side: as before
        (1, 1, (1, 0), 0),
    ],
)
def test_s9_2_a_resting_order_is_judged_beside_the_resting_orders_on_its_side(
    projected: int, qty: int, resting: tuple[int, int], allowed: int
) -> None:
    """S8.3 with S9.2 (decision 0029): a mirror rests, so were the other resting orders on its
    side filled first, they close the position before it; only what they leave is closing."""
    assert clip_opening("ESZ6", projected, qty, resting, D(0), D(1), NONE, rests=True) == allowed


def test_s9_2_a_market_order_still_closes_whatever_rests() -> None:
    """The closing part of an order that does not rest always goes (S9.2)."""
    assert clip_opening("ESZ6", 1, -1, (0, 2), D(0), D(1), NONE) == -1


def test_s9_2_micros_fill_the_cap_at_a_tenth_each() -> None:
    assert clip_opening("MESZ6", 0, 25, (0, 0), D(0), D(2), NONE) == 20
    assert clip_opening("MESZ6", 0, -20, (0, 0), D(0), D(2), NONE) == -20
    assert clip_opening("MESZ6", 15, 10, (0, 0), D(0), D(2), NONE) == 5
    # others' exposure takes its share: 1 ES leaves room for 10 MES
    assert clip_opening("MESZ6", 0, 25, (0, 0), D(1), D(2), NONE) == 10


def test_s9_2_a_fractional_cap_and_weight() -> None:
    """N as written, 2.5: two ES and five MES fit, not a third ES."""
    assert clip_opening("ESZ6", 0, 3, (0, 0), D(0), D("2.5"), NONE) == 2
    assert clip_opening("MESZ6", 0, 9, (0, 0), D(2), D("2.5"), NONE) == 5
    # a weight that does not divide the cap exactly: 3 × 0.3 = 0.9 ≤ 1, 4 × 0.3 > 1
    assert clip_opening("MNQZ6", 0, 9, (0, 0), D(0), D(1), {"MNQ": D("0.3")}) == 3
    # 1 / 3 written to 28 digits: three of them stay just within a cap of 1
    third = D(1) / D(3)
    assert clip_opening("MNQZ6", 0, 9, (0, 0), D(0), D(1), {"MNQ": third}) == 3


def test_s9_2_resting_opening_orders_on_the_orders_side_count() -> None:
    """The worst case: every working opening order on the order's side fills too."""
    # a resting buy of 1 leaves room for one more buy under cap 2
    assert clip_opening("ESZ6", 0, 2, (1, 0), D(0), D(2), NONE) == 1
    # resting sells do not hold back a buy
    assert clip_opening("ESZ6", 0, 2, (0, 5), D(0), D(2), NONE) == 2
    # ... but hold back a sell
    assert clip_opening("ESZ6", 0, -2, (0, 2), D(0), D(2), NONE) == 0
    # a reversal: the closing part goes, the opening part meets the resting sells
    assert clip_opening("ESZ6", 1, -4, (0, 1), D(0), D(2), NONE) == -2
    # micros resting beside a position
    assert clip_opening("MESZ6", 5, 20, (10, 0), D(0), D(2), NONE) == 5


def test_s9_2_clipped_to_nothing_when_the_cap_is_full() -> None:
    assert clip_opening("ESZ6", 0, 1, (0, 0), D(2), D(2), NONE) == 0
    assert clip_opening("ESZ6", 0, 1, (0, 0), D("1.95"), D(2), NONE) == 0
    assert clip_opening("MESZ6", 0, 1, (0, 0), D("1.95"), D(2), NONE) == 0
    assert clip_opening("MESZ6", 0, 1, (0, 0), D("1.9"), D(2), NONE) == 1


def test_s9_2_above_the_cap_nothing_opens_and_closing_still_goes() -> None:
    """Lowering N below what is held reduces nothing; opening orders are refused until the
    account is within N."""
    # held 3 ES under cap 2
    assert clip_opening("ESZ6", 3, 1, (0, 0), D(0), D(2), NONE) == 0
    assert clip_opening("ESZ6", 3, -1, (0, 0), D(0), D(2), NONE) == -1
    # a reversal from above the cap: only the closing part
    assert clip_opening("ESZ6", 3, -5, (0, 0), D(0), D(2), NONE) == -3
    # above the cap through other symbols: a flat symbol opens nothing
    assert clip_opening("NQZ6", 0, 1, (0, 0), D(3), D(2), NONE) == 0
    # ... and a short closes, but does not reverse
    assert clip_opening("NQZ6", -1, 3, (0, 0), D(2), D(2), NONE) == 1


def test_s9_2_a_root_weighed_at_nothing_opens_freely_within_the_cap() -> None:
    weights = {"ZB": D(0)}
    assert clip_opening("ZBZ6", 0, 50, (0, 0), D(2), D(2), weights) == 50
    assert clip_opening("ZBZ6", 0, 50, (0, 0), D(3), D(2), weights) == 0


@pytest.mark.parametrize(
    ("symbol", "positions", "cap", "order"),
    [
        ("ESZ6", {"ESZ6": 3}, "2", -1),
        ("ESZ6", {"ESZ6": -3}, "2", 1),
        ("MESZ6", {"ESZ6": 1, "MESZ6": 15}, "2", -5),
        ("MESZ6", {"ESZ6": 1, "MESZ6": -16}, "2", 6),
        # a full-size contract covers a fractional excess
        ("ESZ6", {"ESZ6": 1, "MESZ6": 15}, "2", -1),
        # within the cap: nothing
        ("ESZ6", {"ESZ6": 2}, "2", 0),
        ("MESZ6", {"ESZ6": 1, "MESZ6": 10}, "2", 0),
        # the symbol is flat
        ("NQZ6", {"ESZ6": 3}, "2", 0),
        # never beyond the position in the symbol, even when it leaves the account above
        ("MESZ6", {"ESZ6": 3, "MESZ6": 4}, "2", -4),
        ("ESZ6", {"ESZ6": 1, "NQZ6": 4}, "2", -1),
        # a fractional cap
        ("ESZ6", {"ESZ6": 3}, "2.5", -1),
        ("MESZ6", {"ESZ6": 2, "MESZ6": 7}, "2.5", -2),
    ],
)
def test_s9_2_excess_reduction_takes_the_fewest_contracts(
    symbol: str, positions: dict[str, int], cap: str, order: int
) -> None:
    assert excess_reduction(symbol, positions, D(cap), NONE) == order
    if order:
        after = dict(positions)
        after[symbol] += order
        # fewest: one contract less would leave the account above the cap (or the symbol open)
        fewer = dict(positions)
        fewer[symbol] += order + (1 if order < 0 else -1)
        assert in_use(after, NONE) <= D(cap) or after[symbol] == 0
        assert in_use(fewer, NONE) > D(cap)


def test_s9_2_excess_reduction_with_a_weight_override() -> None:
    weights = {"MES": D("0.25")}
    assert excess_reduction("MESZ6", {"MESZ6": 10}, D(2), weights) == -2
    assert excess_reduction("MESZ6", {"MESZ6": 9}, D(2), weights) == -1


@pytest.mark.parametrize(
    ("cap", "text"),
    [
        ("2", "2"),
        ("2.0", "2"),
        ("2.5", "2.5"),
        ("2.50", "2.5"),
        ("10", "10"),
        ("1E+1", "10"),
        ("100", "100"),
        ("0.5", "0.5"),
    ],
)
def test_s9_2_refusal_text_writes_n_as_in_the_profile(cap: str, text: str) -> None:
    assert refusal_text(D(cap)) == f"Order exceeds the account's max contracts ({text})."


def test_s9_2_a_symbols_worst_case_is_the_side_that_takes_it_furthest_from_flat() -> None:
    assert worst_case(1, (2, 0)) == 3  # long, resting buys add to it
    assert worst_case(1, (0, 3)) == -2  # resting sells would take it short 2
    assert worst_case(1, (2, 4)) == 3  # |3| >= |-3|: the side that adds wins a tie
    assert worst_case(0, (0, 0)) == 0


def test_s9_2_the_other_symbols_weigh_by_their_roots() -> None:
    """What every other symbol holds of the cap: micros at 0.1 by default, a profile's weights
    where it sets them, a short worst case counted by its size."""
    assert exposure_weight((("ESZ6", 2), ("MESZ6", -3)), NONE) == D("2.3")
    assert exposure_weight((("NQZ6", -1),), {"NQ": D(2)}) == D(2)
    assert exposure_weight((), NONE) == 0
