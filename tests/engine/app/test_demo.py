"""The demo: its followers copy orders (S8.1) with terms S8.2 allows, its leader's brackets
reach every follower as mirrored brackets through the paper broker, and one follower trades under
a prop-firm style profile (S9.7) roomy enough for the demo's trading."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

from brokers.base import LegRole, OrderType
from engine.app import demo
from engine.domain.copy_rule import target
from engine.domain.copying import CopyMode
from engine.domain.max_contracts import in_use
from engine.domain.risk_profile import RiskRules, parse_values
from tests.conftest import ES, MES, NQ, MakeEngine


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
    rig = make_engine(
        tmp_path,
        connections=connections,
        accounts=accounts,
        groups=groups,
        profiles=demo.demo_profiles(),
    )
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


def test_the_demo_profile_is_a_valid_prop_firm_profile_roomy_for_the_demo() -> None:
    """S9.7: the demo's profile is what the configuration would accept, and its cap (S9.2) is at
    least three times what DEMO-F3 holds when the demo leader holds its usual most (5) of both
    symbols: room for resting bracket entries, so a normal demo run never cuts a copy."""
    keys = demo.DEMO_PROFILES[demo.PROFILE]
    assert parse_values(keys) == keys
    rules = RiskRules.of(keys)
    assert rules.max_loss is not None and rules.max_contracts is not None
    assert rules.commission_for(MES) < rules.commission_for(NQ)
    membership = {m.account: m for m in demo.demo_setup()[2][0].members}["DEMO-F3"]
    symbols = dict(membership.symbol_map)
    most = {
        f"{symbols.get(root, root)}Z6": target(5, membership.ratio, membership.max_qty)
        for root in ("ES", "NQ")
    }
    assert most == {MES: 3, NQ: 3}
    assert in_use(most, rules.contract_weights) * 3 <= rules.max_contracts


def test_the_demo_follower_on_its_prop_firm_profile_shows_a_threshold_commissions_and_contracts(
    tmp_path: Path, make_engine: MakeEngine
) -> None:
    """S9.7: DEMO-F3 has its profile's keys, the other followers none; S9.3: its end-of-day
    threshold starts at the balance less max_loss; S9.1 and S9.2: its copies are charged and
    counted, a micro at 0.1."""
    connections, accounts, groups = demo.demo_setup()
    rig = make_engine(
        tmp_path,
        connections=connections,
        accounts=accounts,
        groups=groups,
        profiles=demo.demo_profiles(),
    )
    assert rig.engine.topology.effective("DEMO-F3") == demo.DEMO_PROFILES[demo.PROFILE]
    for account in ("DEMO-F1", "DEMO-F2", demo.LEADER):
        assert rig.engine.topology.effective(account) == {}
    venue = demo.PaperVenue(rig.broker)
    venue.trade(demo.LEADER, ES, 2)  # DEMO-F3: +1 MES
    venue.trade(demo.LEADER, NQ, 3)  # DEMO-F3: +2 NQ (1.5 rounds half up)
    rig.idle()
    risk = rig.engine.risk_view("DEMO-F3")
    account = rig.engine.account_view("DEMO-F3")
    assert risk is not None and account is not None
    assert (risk.threshold, risk.max_contracts) == (Decimal(40000), Decimal(10))
    assert risk.contracts_in_use == Decimal("2.1")
    assert account.commissions == Decimal("0.25") + 2 * Decimal("0.50")
    other = rig.engine.risk_view("DEMO-F1")
    assert other is not None and other.threshold is None
