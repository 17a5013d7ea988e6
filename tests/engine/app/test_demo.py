"""The demo: its followers copy orders (S8.1) with terms S8.2 allows, and its leader's brackets
reach every follower as mirrored brackets through the paper broker."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

from brokers.base import LegRole, OrderType
from engine.app import demo
from engine.domain.copying import CopyMode
from tests.conftest import ES, MES, MakeEngine


def test_the_demo_leader_sometimes_places_a_bracket_on_ticks_around_the_market() -> None:
    market = demo.Market(random.Random(1), demo.DEMO_INSTRUMENTS)
    leader = demo.DemoLeader(random.Random(7), market.symbols, market=market)
    brackets = [
        d for d in (leader.decide({}) for _ in range(400)) if isinstance(d, demo.LeaderBracket)
    ]
    assert 40 < len(brackets) < 200  # about a quarter of the decisions below the close size
    for b in brackets:
        last, tick = market.price(b.symbol)
        side = 1 if b.qty > 0 else -1
        assert 1 <= abs(b.qty) <= 2
        assert b.price == last - side * 2 * tick  # a buy below the market, a sell above
        assert (b.price - b.stop) * side == 8 * tick  # the stop-loss on the losing side
        assert (b.target - b.price) * side == 12 * tick
    assert not any(
        isinstance(leader.decide({ES: 3, "NQZ6": -3}), demo.LeaderBracket) for _ in range(200)
    )  # at the close size it only closes


def test_a_demo_bracket_is_mirrored_to_every_follower(
    tmp_path: Path, make_engine: MakeEngine
) -> None:
    connections, accounts, groups = demo.demo_setup()
    assert {m.copy for m in groups[0].members} == {CopyMode.ORDERS}
    rig = make_engine(tmp_path, connections=connections, accounts=accounts, groups=groups)
    bracket = demo.LeaderBracket(ES, 2, Decimal(4999), Decimal(4997), Decimal(5002))
    demo.PaperVenue(rig.broker).bracket(demo.LEADER, bracket)
    rig.idle()
    leader = {o.role: o for o in rig.broker.working_orders(demo.LEADER)}
    assert leader[None].order_type is OrderType.LIMIT
    assert (leader[LegRole.STOP].stop, leader[LegRole.TARGET].price) == (4997, 5002)
    for account, qty, symbol in (("DEMO-F1", 2, ES), ("DEMO-F2", 4, ES), ("DEMO-F3", 1, MES)):
        view = rig.engine.account_view(account)
        assert view is not None
        mirrored = {(o.qty, o.symbol, o.role, o.price, o.stop, o.mirrors) for o in view.orders}
        assert mirrored == {
            (qty, symbol, None, Decimal(4999), None, leader[None].broker_order_id),
            (-qty, symbol, "stop", None, Decimal(4997), leader[LegRole.STOP].broker_order_id),
            (-qty, symbol, "target", Decimal(5002), None, leader[LegRole.TARGET].broker_order_id),
        }, account
