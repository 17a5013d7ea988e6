"""A journal replay's report (``python -m engine replay --journal``): ``orders_sent`` counts
each order the engine placed once, each leg of a bracket or of an OCO pair included, as
SCENARIOS.md counts it for a scenario."""

from __future__ import annotations

from decimal import Decimal

from brokers.base import LegRequest, LegRole, OrderRequest, OrderType
from engine.replay.journal_replay import orders_sent


def test_a_bracket_and_an_oco_pair_count_each_of_their_orders() -> None:
    market = OrderRequest("m1", "F1", "ESZ6", 1)
    bracket = OrderRequest(
        "b1",
        "F1",
        "ESZ6",
        2,
        OrderType.LIMIT,
        price=Decimal(4990),
        bracket=(
            LegRequest("b1-stop", LegRole.STOP, OrderType.STOP, stop=Decimal(4980)),
            LegRequest("b1-target", LegRole.TARGET, OrderType.LIMIT, price=Decimal(5010)),
        ),
    )
    pair = OrderRequest(
        "p1",
        "F1",
        "ESZ6",
        -2,
        OrderType.STOP,
        stop=Decimal(4980),
        role=LegRole.STOP,
        oco=LegRequest("p1-target", LegRole.TARGET, OrderType.LIMIT, price=Decimal(5020)),
    )
    assert orders_sent([market]) == 1
    assert orders_sent([market, bracket, pair]) == 6
    assert orders_sent([]) == 0
