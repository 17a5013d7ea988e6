"""S8.2: a follower copying orders maps only roots of the same price scale (the same tick size in
the contract table); a follower copying fills maps any roots."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.instruments import BUILTIN_CONTRACTS
from engine.domain.copying import CopyMode
from engine.domain.price_scale import price_scale_problem


def tick(root: str) -> Decimal:
    return BUILTIN_CONTRACTS[root].tick_size


@pytest.mark.parametrize(
    "symbol_map", [(), (("ES", "MES"),), (("NQ", "MNQ"), ("YM", "MYM")), (("CL", "MCL"),)]
)
def test_roots_of_the_same_tick_size_pass_in_orders_mode(
    symbol_map: tuple[tuple[str, str], ...],
) -> None:
    assert price_scale_problem(CopyMode.ORDERS, symbol_map, tick) is None


def test_roots_of_different_tick_sizes_are_refused_naming_both_roots_and_ticks() -> None:
    problem = price_scale_problem(CopyMode.ORDERS, (("ES", "MES"), ("NQ", "CL")), tick)
    assert problem is not None
    assert "symbol_map NQ → CL" in problem
    assert "NQ ticks 0.25, CL ticks 0.01" in problem


def test_fills_mode_maps_any_roots() -> None:
    assert price_scale_problem(CopyMode.FILLS, (("ES", "CL"),), tick) is None
