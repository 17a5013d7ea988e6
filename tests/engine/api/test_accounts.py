"""Accounts through the API: state and figures (S5.1), limits (S5.2), lock and unlock (S5.7),
flatten (S6), delete (S4.2)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from brokers.base import OrderType
from tests.conftest import ES
from tests.engine.api.conftest import ApiRig, short_follower

pytestmark = pytest.mark.trio


async def test_account_shows_positions_figures_and_copying(api: ApiRig) -> None:
    api.rig.trade("LEAD", 2)
    api.rig.price(ES, Decimal(5001))  # +1 point on 2 ES = +100 unrealized
    account = await api.get("/api/accounts/F1")
    assert account["positions"] == {ES: 2}
    assert account["unrealized"] == "100.00"
    assert account["daily_pnl"] == "100.00"
    assert account["equity"] == "50100.00"
    assert account["risk_status"] == "OK"
    assert account["lock_reason"] == ""
    assert account["copying"] == "copying"
    assert account["membership"] == {
        "group": "g1",
        "role": "follower",
        "ratio": "1",
        "max_qty": None,
        "symbol_map": {},
        "disable_reason": "",
        "copy": "fills",
    }
    assert account["orders"] == []
    leader = await api.get("/api/accounts/LEAD")
    assert leader["copying"] == "leader"
    assert leader["membership"]["role"] == "leader"
    listed = await api.get("/api/accounts?connection=f2")
    assert [a["id"] for a in listed] == ["F2"]
    await api.get("/api/accounts/NOPE", status=404)


async def test_a_drifting_follower_shows_its_drift(api: ApiRig) -> None:
    """S10.1: inside drift_grace (5 s) the drift is not shown; once the episode opens the
    account shows {symbol: follower position - expected}."""
    short_follower(api)  # F1 flat, its leader long 2
    api.rig.advance(4)
    assert (await api.get("/api/accounts/F1"))["drift"] == {}
    api.rig.advance(1)
    api.idle()
    assert (await api.get("/api/accounts/F1"))["drift"] == {ES: -2}
    assert (await api.get("/api/accounts/F2"))["drift"] == {}


async def test_limits_get_and_set(api: ApiRig) -> None:
    assert (await api.get("/api/accounts/F1/limits"))["limits"] == {}
    put = await api.call(
        "PUT",
        "/api/accounts/F1/limits",
        {"daily_loss_limit": "1000", "trailing_drawdown": 500},
        status=200,
    )
    assert put["limits"] == {"daily_loss_limit": "1000", "trailing_drawdown": "500"}
    api.idle()
    got = await api.get("/api/accounts/F1/limits")
    assert got["limits"] == {"daily_loss_limit": "1000", "trailing_drawdown": "500"}
    api.rig.restart()  # durable (S7.2)
    assert api.rig.engine.topology.accounts["F1"].limits["daily_loss_limit"] == Decimal(1000)


async def test_account_shows_the_distance_to_each_limit(api: ApiRig) -> None:
    """Each limit set (S5.2) and the money left before it: near within 20 %, breached at it,
    the others halted once the account is LIQUIDATE_ONLY or LOCKED (S5.3)."""
    assert (await api.get("/api/accounts/F1"))["limit_distances"] == []
    limits = {"daily_loss_limit": "1000", "daily_profit_target": "600", "trailing_drawdown": 2000}
    await api.call("PUT", "/api/accounts/F1/limits", limits, status=200)
    api.idle()
    api.rig.trade("LEAD", 2)
    api.rig.price(ES, Decimal(4992))  # −8 points on 2 ES: −800, 200 left of 1000

    def shown(account: Any) -> list[tuple[str, ...]]:
        return [tuple(d.values()) for d in account["limit_distances"]]

    account = await api.get("/api/accounts/F1")
    assert account["daily_pnl"] == "-800.00"
    assert shown(account) == [
        ("daily_loss_limit", "1000", "200.00", "near"),
        ("daily_profit_target", "600", "1400.00", "ok"),
        ("trailing_drawdown", "2000", "1200.00", "ok"),
    ]
    api.rig.price(ES, Decimal(4990))  # −1000: the daily loss limit is hit, exactly at it
    account = await api.get("/api/accounts/F1")
    assert (account["risk_status"], account["daily_pnl"]) == ("LOCKED", "-1000.00")
    assert shown(account) == [
        ("daily_loss_limit", "1000", "0.00", "breached"),
        ("daily_profit_target", "600", "1600.00", "halted"),
        ("trailing_drawdown", "2000", "1000.00", "halted"),
    ]
    assert (await api.get("/api/accounts/F2"))["limit_distances"] == []


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"daily_loss_limit": "-5"}, "daily_loss_limit", "negative"),
        ({"daily_loss_limit": "abc"}, "daily_loss_limit", "not a number"),
        ({"max_los": "5"}, "max_los", "unknown key; expected one of: daily_loss_limit"),
        ({"max_loss_mode": "weekly"}, "max_loss_mode", "expected one of: static"),
        ({"commissions": {"es": 1}}, "commissions", "'es' is not a contract root"),
        ({"commissions": "2.10"}, "commissions", "not a table of roots"),
        ({"flatten_at": "17:30"}, "flatten_at", "before 17:00"),
        ({"max_contracts": [2]}, "max_contracts", "not a number"),
        ({"start_balance": 0}, "start_balance", "more than 0"),
        ({"consistency_pct": 150}, "consistency_pct", "more than 100"),
        ({"max_loss": "100", "blackout": "sometimes"}, "blackout", "off, block, flatten"),
        ({"profile": "no spaces"}, "profile", "expected an id"),
    ],
)
async def test_limits_refuse_bad_values_by_name(
    api: ApiRig, body: object, field: str, says: str
) -> None:
    """S5.2/S9: every key is checked as the configuration's are; the 422 names the key and
    says what it takes, and nothing is set (not even the good keys beside it)."""
    problem = await api.call("PUT", "/api/accounts/F1/limits", body, status=422)
    assert problem["field"] == field
    assert problem["message"].startswith(f"{field}: ")
    assert says in problem["message"]
    assert problem["details"][0]["field"] == field
    assert (await api.get("/api/accounts/F1/limits"))["limits"] == {}


async def test_limits_take_every_key_and_keep_them(api: ApiRig) -> None:
    """S9: the prop-firm keys beside S5.2's limits, numbers as decimal strings, words as words,
    tables as objects; durable (S7.2)."""
    keys = {
        "daily_loss_limit": 1000,
        "commission": "2.10",
        "commissions": {"MES": "0.60", "ES": 2},
        "max_contracts": "2.5",
        "contract_weights": {"MNQ": "0.2"},
        "max_loss": "2500",
        "max_loss_mode": "eod_trailing",
        "max_loss_stop": 0,
        "start_balance": "50000",
        "flatten_at": "15:10",
        "blackout": "flatten",
        "consistency_pct": 40,
    }
    put = await api.call("PUT", "/api/accounts/F1/limits", keys, status=200)
    expected = {
        "daily_loss_limit": "1000",
        "commission": "2.10",
        "commissions": {"ES": "2", "MES": "0.60"},
        "max_contracts": "2.5",
        "contract_weights": {"MNQ": "0.2"},
        "max_loss": "2500",
        "max_loss_mode": "eod_trailing",
        "max_loss_stop": "0",
        "start_balance": "50000",
        "flatten_at": "15:10",
        "blackout": "flatten",
        "consistency_pct": "40",
    }
    assert put["limits"] == expected
    assert put["effective"] == expected
    assert put["profile"] is None
    api.idle()
    account = await api.get("/api/accounts/F1")
    assert account["limits"] == expected
    off = {"max_loss_stop": "off", "flatten_at": "off"}
    answer = await api.call("PUT", "/api/accounts/F1/limits", off, status=200)
    assert (answer["limits"]["max_loss_stop"], answer["limits"]["flatten_at"]) == ("off", "off")
    api.rig.restart()  # durable (S7.2)
    stored = api.rig.engine.topology.accounts["F1"].limits
    assert (stored["commissions"], stored["max_loss_stop"]) == (
        {"ES": Decimal(2), "MES": Decimal("0.60")}, "off",
    )  # fmt: skip


async def test_a_null_removes_the_accounts_own_key(api: ApiRig) -> None:
    """S9.7: null removes the account's own key; without a profile nothing is left of it."""
    own = {"max_loss": "2000", "commission": 2}
    await api.call("PUT", "/api/accounts/F1/limits", own, status=200)
    answer = await api.call("PUT", "/api/accounts/F1/limits", {"max_loss": None}, status=200)
    assert answer["limits"] == {"commission": "2"}
    assert answer["effective"] == {"commission": "2"}


async def test_an_account_shows_its_prop_firm_figures(api: ApiRig) -> None:
    """S9.1-S9.6 on the account: the commissions charged, the max-loss threshold and the
    distance to it (net of commissions), the contracts in use of the cap, the next session
    close, the best day's share; no threshold without max_loss."""
    plain = await api.get("/api/accounts/F1")
    assert (plain["threshold"], plain["threshold_distance"], plain["max_contracts"]) == (
        None, None, None,
    )  # fmt: skip
    assert (plain["contracts_in_use"], plain["commissions"], plain["blackout"]) == (
        "0", "0.00", None,
    )  # fmt: skip
    keys = {"max_loss": "2000", "max_contracts": 2, "flatten_at": "15:10", "commission": "2.10",
            "consistency_pct": 40}  # fmt: skip
    await api.call("PUT", "/api/accounts/F1/limits", keys, status=200)
    api.idle()
    api.rig.trade("LEAD", 1)
    api.rig.price(ES, Decimal(5001))  # +1 point on 1 ES: +50, less 2.10 commission
    account = await api.get("/api/accounts/F1")
    assert account["positions"] == {ES: 1}
    assert account["commissions"] == "2.10"
    assert account["start_balance"] == "50000.00"
    assert account["threshold"] == "48000.00"  # static: start_balance - max_loss
    assert account["threshold_distance"] == "2047.90"  # equity 50047.90 - 48000
    assert (account["contracts_in_use"], account["max_contracts"]) == ("1", "2")
    assert account["next_session_close"] == "2026-01-06T21:10:00+00:00"  # 15:10 in Chicago
    assert account["best_day_share"] == "1.0000"  # today is the only day, and a profit
    assert account["profile"] is None


async def test_limits_need_one_value(api: ApiRig) -> None:
    await api.call("PUT", "/api/accounts/F1/limits", {}, status=422)
    await api.call("PUT", "/api/accounts/NOPE/limits", {"daily_loss_limit": "1"}, status=404)


async def test_lock_and_unlock(api: ApiRig) -> None:
    """S5.7: a flat account locks at once; unlock returns it to OK and re-enables copying."""
    await api.post("/api/accounts/F1/lock")
    api.idle()
    locked = await api.get("/api/accounts/F1")
    assert (locked["risk_status"], locked["lock_reason"]) == ("LOCKED", "manual")
    assert locked["copying"].startswith("disabled")
    api.rig.trade("LEAD", 1)
    assert api.rig.position("F1") == 0  # S5.5: no trades
    await api.post("/api/accounts/F1/unlock")
    api.idle()
    unlocked = await api.get("/api/accounts/F1")
    assert (unlocked["risk_status"], unlocked["lock_reason"]) == ("OK", "")
    assert unlocked["copying"] == "copying"
    await api.post("/api/accounts/NOPE/lock", status=404)


async def test_flatten_account_changes_no_status(api: ApiRig) -> None:
    """S6."""
    api.rig.trade("LEAD", 2)
    await api.post("/api/accounts/F1/flatten")
    api.idle()
    account = await api.get("/api/accounts/F1")
    assert account["positions"] == {}
    assert account["risk_status"] == "OK"
    assert (await api.get("/api/accounts/F2"))["positions"] == {ES: 2}


async def test_delete_account(api: ApiRig) -> None:
    """S4.2: a follower's deletion removes only its membership."""
    plan = await api.call("DELETE", "/api/accounts/F1?dry_run=true", status=200)
    assert plan == {
        "dry_run": True,
        "account": "F1",
        "connection": "f1",
        "groups": [],
        "memberships": [{"group": "g1", "account": "F1"}],
        "orphaned_followers": [],
        "working_orders": [],
    }
    await api.get("/api/accounts/F1")
    done = await api.call("DELETE", "/api/accounts/F1", status=200)
    assert done["dry_run"] is False
    api.idle()
    await api.get("/api/accounts/F1", status=404)
    group = await api.get("/api/groups/g1")
    assert [f["account"] for f in group["followers"]] == ["F2"]
    assert (await api.get("/api/connections/f1"))["accounts"] == []


async def test_an_account_shows_its_working_orders_and_the_leader_order_each_mirrors(
    api: ApiRig,
) -> None:
    """S8.2/S8.3: a follower copying orders gets the leader's bracket as a bracket; its account
    lists each working order with the leader order it mirrors, a bracket leg inactive until its
    entry fills."""
    await api.call("PATCH", "/api/groups/g1/followers/F2", {"copy": "orders"}, status=200)
    api.idle()
    placed = api.rig.broker.place_working(
        "LEAD", ES, 2, OrderType.LIMIT, price=Decimal(4990),
        bracket_stop=Decimal(4980), bracket_target=Decimal(5010),
    )  # fmt: skip
    api.idle()
    orders = (await api.get("/api/accounts/F2"))["orders"]
    shown = {(o["order_type"], o["qty"], o["price"], o["stop"], o["role"], o["active"],
              o["mirrors"]) for o in orders}  # fmt: skip
    assert shown == {
        ("limit", 2, "4990", None, None, True, placed.entry),
        ("stop", -2, None, "4980", "stop", False, placed.stop),
        ("limit", -2, "5010", None, "target", False, placed.target),
    }
    assert all(o["symbol"] == ES and o["broker_order_id"] for o in orders)
    assert (await api.get("/api/accounts/F1"))["orders"] == []  # copies fills: nothing mirrored


async def test_a_deletion_lists_the_working_orders_that_stay_at_the_broker(api: ApiRig) -> None:
    """S8.8: a deletion sends nothing, cancels included; its confirmation lists what stays."""
    stop_id = api.rig.broker.place_manual_working("F1", ES, -1)
    api.idle()
    line = {
        "account": "F1", "broker_order_id": stop_id, "client_order_id": None, "symbol": ES,
        "qty": -1, "order_type": "market", "price": None, "stop": None, "role": None,
        "active": True, "mirrors": None,
    }  # fmt: skip
    plan = await api.call("DELETE", "/api/accounts/F1?dry_run=true", status=200)
    assert plan["working_orders"] == [line]
    group = await api.call("DELETE", "/api/groups/g1?dry_run=true", status=200)
    assert group["working_orders"] == [line]  # F1 follows g1: its order stays, unfollowed
    connection = await api.call("DELETE", "/api/connections/lead?dry_run=true", status=200)
    assert connection["working_orders"] == [line]  # F1 is left without a group
    done = await api.call("DELETE", "/api/accounts/F1", status=200)
    assert done["working_orders"] == [line]
    api.idle()
    assert [o.broker_order_id for o in api.rig.broker.working_orders("F1")] == [stop_id]


async def test_s10_3_an_account_shows_its_missed_copies_and_its_symbols_without_prices(
    api: ApiRig,
) -> None:
    rig = api.rig
    rig.broker.hold("f1")
    rig.trade("LEAD", 1)
    rig.advance(5)  # F1's copy unanswered past copy_fill_timeout
    f1 = await api.get("/api/accounts/F1")
    (coid,) = [r["client_order_id"] for r in rig.orders("F1", "copy")]
    assert f1["missed_copies"] == [coid]
    assert f1["stale_prices"] == []  # nothing held yet
    rig.advance(25)  # 30 s without a price of ES
    f2 = await api.get("/api/accounts/F2")
    assert (f2["missed_copies"], f2["stale_prices"]) == ([], [ES])
    rig.broker.release("f1")
    rig.price(ES, Decimal(5001))
    f1 = await api.get("/api/accounts/F1")
    assert (f1["missed_copies"], f1["stale_prices"]) == ([], [])
