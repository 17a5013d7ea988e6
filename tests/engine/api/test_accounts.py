"""Accounts through the API: state and figures (S5.1), limits (S5.2), lock and unlock (S5.7),
flatten (S6), delete (S4.2)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import ES
from tests.engine.api.conftest import ApiRig

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
    }
    leader = await api.get("/api/accounts/LEAD")
    assert leader["copying"] == "leader"
    assert leader["membership"]["role"] == "leader"
    listed = await api.get("/api/accounts?connection=f2")
    assert [a["id"] for a in listed] == ["F2"]
    await api.get("/api/accounts/NOPE", status=404)


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
    ("body", "field"),
    [
        ({"daily_loss_limit": "-5"}, "daily_loss_limit"),
        ({"daily_loss_limit": "abc"}, "daily_loss_limit"),
        ({"max_loss": "5"}, "max_loss"),
        ({"daily_loss_limit": "1.001"}, "daily_loss_limit"),
    ],
)
async def test_limits_refuse_bad_values_by_name(api: ApiRig, body: object, field: str) -> None:
    problem = await api.call("PUT", "/api/accounts/F1/limits", body, status=422)
    assert problem["field"] == field
    assert (await api.get("/api/accounts/F1/limits"))["limits"] == {}


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
    }
    await api.get("/api/accounts/F1")
    done = await api.call("DELETE", "/api/accounts/F1", status=200)
    assert done["dry_run"] is False
    api.idle()
    await api.get("/api/accounts/F1", status=404)
    group = await api.get("/api/groups/g1")
    assert [f["account"] for f in group["followers"]] == ["F2"]
    assert (await api.get("/api/connections/f1"))["accounts"] == []
