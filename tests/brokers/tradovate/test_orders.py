"""Orders through the adapter against the local server, under the real engine: a leader fill
on the server's socket becomes the followers' ``placeorder`` calls (S2.1, S2.2, S2.6), a breach
becomes ``liquidateposition`` per contract and cancels (S5.3), business errors become
rejections with the broker's text (S2.7), penalty tickets are honoured, and 20 followers on one
login stay within its request budget (TRADOVATE.md, "Rate limits and penalty tickets")."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from brokers.tradovate.sim.exchange import REJECT_FORCED
from engine.core.topology import AccountConfig, GroupConfig
from engine.domain.risk_status import RiskStatus
from tests.brokers.tradovate.conftest import ES, NQ, MakeTv, member


def test_leader_fill_is_copied_to_placeorder_with_correct_bodies(
    tmp_path: Path, make_tv: MakeTv
) -> None:
    rig = make_tv(tmp_path, groups=[GroupConfig("g1", "LEAD", [member("F1"), member("F2", 2)])])
    rig.trade("LEAD", 2)
    bodies = sorted(rig.bodies("order/placeorder"), key=lambda b: b["accountSpec"])
    ledger = {r["account"]: r["client_order_id"] for r in rig.orders("F1") + rig.orders("F2")}
    ids = rig.read(lambda sim: {a.name: a.id for a in sim.exchange.accounts.values()})
    assert bodies == [
        {
            "accountSpec": name,
            "accountId": ids[name],
            "clOrdId": ledger[name],
            "action": "Buy",
            "symbol": ES,
            "orderQty": qty,
            "orderType": "Market",
            "timeInForce": "Day",
            "isAutomated": True,
        }
        for name, qty in (("F1", 2), ("F2", 4))
    ]
    assert (rig.position("F1"), rig.position("F2")) == (2, 4)
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (2, 4)
    # S2.2 on the way out: the exit of the leader closes both, once each.
    rig.trade("LEAD", -2)
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (0, 0)
    assert len(rig.requests("order/placeorder")) == 4


def test_breach_liquidates_each_contract_and_cancels_working_orders(
    tmp_path: Path, make_tv: MakeTv
) -> None:
    rig = make_tv(
        tmp_path,
        accounts=[
            ("LEAD", "lead"),
            AccountConfig("F1", "prop", limits={"daily_loss_limit": Decimal(1000)}),
            ("F2", "prop"),
        ],
        prices={ES: Decimal(5000), NQ: Decimal(20000)},
    )
    rig.trade("LEAD", 1, ES)
    rig.trade("LEAD", 1, NQ)
    stop = rig.control("place_manual_working", "F1", ES, -1)
    assert rig.position("F1", ES) == 1 and rig.position("F1", NQ) == 1
    rig.price(ES, 4990)  # F1: -500 on ES
    assert rig.status("F1") is RiskStatus.OK
    rig.price(NQ, 19970)  # and -600 on NQ: daily P&L -1100, through the 1000 limit
    account = rig.read(lambda sim: sim.exchange.account("F1").id)
    contracts = rig.read(lambda sim: {c.id for c in sim.exchange.contracts.values()})
    liquidations = rig.bodies("order/liquidateposition")
    assert sorted(b["contractId"] for b in liquidations) == sorted(contracts)
    assert all(
        b
        == {
            "accountId": account,
            "contractId": b["contractId"],
            "admin": False,
            "isAutomated": True,
        }
        for b in liquidations
    )
    assert {"orderId": stop, "isAutomated": True} in rig.bodies("order/cancelorder")
    assert rig.read(lambda sim: sim.exchange.orders[stop].status) == "Canceled"
    assert rig.broker_position("F1", ES) == 0 and rig.broker_position("F1", NQ) == 0
    assert rig.status("F1") is RiskStatus.LOCKED
    assert rig.status("F2") is RiskStatus.OK  # the login's other account is untouched
    assert rig.broker_position("F2", ES) == 1


def test_business_errors_are_rejections_with_the_brokers_text(
    tmp_path: Path, make_tv: MakeTv
) -> None:
    rig = make_tv(tmp_path)
    rig.control("reject_next", "prop", 1)
    rig.trade("LEAD", 1)
    rejected = [r for r in rig.orders("F1") + rig.orders("F2") if r["status"] == "rejected"]
    assert len(rejected) == 1
    assert REJECT_FORCED in rejected[0]["reason"]
    assert "UnknownReason" in rejected[0]["reason"]
    assert (rig.position("F1") + rig.position("F2")) == 1  # the other follower is copied


def test_penalty_ticket_waited_out_and_request_resent_with_it(
    tmp_path: Path, make_tv: MakeTv
) -> None:
    rig = make_tv(tmp_path, groups=[GroupConfig("g1", "LEAD", [member("F1")])])
    rig.control("penalize_next", "prop", 1, 0.05)
    rig.trade("LEAD", 1)
    first, second = rig.bodies("order/placeorder")
    assert "p-ticket" not in first
    assert second == {**first, "p-ticket": second["p-ticket"]}
    assert rig.bridge.control("tickets_issued", "prop") == 1
    assert rig.position("F1") == 1 and rig.broker_position("F1") == 1
    assert len(rig.orders("F1")) == 1  # one order, sent twice


def test_twenty_followers_on_one_login_stay_within_the_budget(
    tmp_path: Path, make_tv: MakeTv
) -> None:
    followers = [f"F{i}" for i in range(20)]
    rig = make_tv(
        tmp_path,
        accounts=[("LEAD", "lead"), *((f, "prop") for f in followers)],
        groups=[GroupConfig("g1", "LEAD", [member(f) for f in followers])],
        # the broker throttles past 25 requests at once; the adapter's budget is 25 at 1.3/s
        server={"rate_limit": (25.0, 1.3), "penalty_s": 0.05},
        settings={"budget_burst": 25, "budget_per_s": 1.3},
    )
    rig.trade("LEAD", 1)
    assert all(rig.broker_position(f) == 1 for f in followers)
    assert rig.bridge.control("tickets_issued", "prop") == 0
    assert len(rig.requests("order/placeorder")) == 20


def test_past_the_brokers_limit_tickets_are_honoured_and_nothing_is_lost(
    tmp_path: Path, make_tv: MakeTv
) -> None:
    followers = [f"F{i}" for i in range(20)]
    rig = make_tv(
        tmp_path,
        accounts=[("LEAD", "lead"), *((f, "prop") for f in followers)],
        groups=[GroupConfig("g1", "LEAD", [member(f) for f in followers])],
        server={"rate_limit": (8.0, 1.0), "penalty_s": 0.05},  # a stingy broker
    )
    rig.trade("LEAD", 1)
    assert rig.bridge.control("tickets_issued", "prop") > 0
    assert all(rig.broker_position(f) == 1 for f in followers)
    placed = [b for b in rig.bodies("order/placeorder") if "p-ticket" not in b]
    assert sorted(b["accountSpec"] for b in placed) == sorted(followers)  # each sent once
