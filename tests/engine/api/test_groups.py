"""Copy groups through the API: create, followers with their terms (S2.2, S2.3), remove, flatten
(S6), delete; one group per account."""

from __future__ import annotations

import pytest

from tests.conftest import ES, MES
from tests.engine.api.conftest import ApiRig

pytestmark = pytest.mark.trio


async def _free_accounts(api: ApiRig) -> None:
    """Leave LEAD, F1 and F2 in no group."""
    await api.call("DELETE", "/api/groups/g1", status=200)
    api.idle()


async def test_list_and_get(api: ApiRig) -> None:
    groups = await api.get("/api/groups")
    assert groups == [
        {
            "id": "g1",
            "leader": "LEAD",
            "followers": [
                {"account": "F1", "ratio": "1", "max_qty": None, "symbol_map": {},
                 "disable_reason": "", "copy": "fills"},
                {"account": "F2", "ratio": "1", "max_qty": None, "symbol_map": {},
                 "disable_reason": "", "copy": "fills"},
            ],
            "leader_positions": {},
            "on_drift": "alert",
        }
    ]  # fmt: skip
    await api.get("/api/groups/nope", status=404)


async def test_create_a_group_that_copies(api: ApiRig) -> None:
    await _free_accounts(api)
    body = {
        "id": "g2",
        "leader": "LEAD",
        "followers": [
            {"account": "F1", "ratio": "2", "max_qty": 3},
            {"account": "F2", "ratio": 0.5, "symbol_map": {"ES": "MES"}},
        ],
    }
    created = await api.post("/api/groups", body, status=201)
    assert [f["account"] for f in created["followers"]] == ["F1", "F2"]
    assert created["followers"][1]["symbol_map"] == {"ES": "MES"}
    api.idle()
    api.rig.trade("LEAD", 2)
    assert api.rig.position("F1") == 3  # S2.2: round(2·2) capped at 3
    assert api.rig.position("F2", MES) == 1  # S2.3: mapped, round(0.5·2)


async def test_an_account_belongs_to_one_group(api: ApiRig) -> None:
    problem = await api.post(
        "/api/groups", {"id": "g2", "leader": "F1", "followers": []}, status=409
    )
    assert "at most one group" in problem["message"]
    problem = await api.post("/api/groups", {"id": "g2", "leader": "NOPE"}, status=404)
    assert "NOPE" in problem["message"]
    problem = await api.post("/api/groups/g1/followers", {"account": "LEAD"}, status=409)
    assert "cannot follow" in problem["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"account": "X", "ratio": "0"}, "ratio"),
        ({"account": "X", "ratio": "-1"}, "ratio"),
        ({"account": "X", "max_qty": 0}, "max_qty"),
        ({"account": "X", "max_qty": "lots"}, "max_qty"),
        ({"account": "X", "symbol_map": {"ES": "ZZ"}}, "symbol_map"),
        ({"account": "X", "colour": "red"}, "colour"),
        ({"account": "X", "copy": "all"}, "copy"),
        ({"account": "X", "copy_mode": "orders"}, "copy_mode"),
        ({"ratio": "1"}, "account"),
    ],
)
async def test_follower_terms_are_checked_by_field(api: ApiRig, body: object, field: str) -> None:
    problem = await api.post("/api/groups/g1/followers", body, status=422)
    assert problem["field"] == field


async def test_add_change_and_remove_a_follower(api: ApiRig) -> None:
    await api.call("DELETE", "/api/groups/g1/followers/F2", status=200)
    api.idle()
    group = await api.post(
        "/api/groups/g1/followers", {"account": "F2", "ratio": "3", "max_qty": 4}, status=201
    )
    assert group["followers"][-1] == {
        "account": "F2",
        "ratio": "3",
        "max_qty": 4,
        "symbol_map": {},
        "disable_reason": "",
        "copy": "fills",
    }
    changed = await api.call(
        "PATCH", "/api/groups/g1/followers/F2", {"ratio": "2", "clear_max_qty": True}, status=200
    )
    assert (changed["ratio"], changed["max_qty"]) == ("2", None)
    api.idle()
    api.rig.trade("LEAD", 3)
    assert api.rig.position("F2") == 6
    await api.call("PATCH", "/api/groups/g1/followers/NOPE", {"ratio": "2"}, status=404)
    await api.call("DELETE", "/api/groups/g1/followers/NOPE", status=404)
    problem = await api.call(
        "PATCH", "/api/groups/g1/followers/F2", {"max_qty": 2, "clear_max_qty": True}, status=422
    )
    assert problem["field"] == "max_qty"


async def test_flatten_group(api: ApiRig) -> None:
    """S6: the leader and every follower; no status changes."""
    api.rig.trade("LEAD", 2)
    assert api.rig.position("F2") == 2
    await api.post("/api/groups/g1/flatten")
    api.idle()
    for account in ("LEAD", "F1", "F2"):
        shown = await api.get(f"/api/accounts/{account}")
        assert shown["positions"] == {}, account
        assert shown["risk_status"] == "OK"
    await api.post("/api/groups/nope/flatten", status=404)


async def test_flatten_all(api: ApiRig) -> None:
    api.rig.trade("LEAD", 1)
    await api.post("/api/flatten")
    api.idle()
    assert all(a["positions"] == {} for a in await api.get("/api/accounts"))


async def test_delete_group_dry_run_then_for_real(api: ApiRig) -> None:
    plan = await api.call("DELETE", "/api/groups/g1?dry_run=true", status=200)
    assert plan == {
        "dry_run": True,
        "group": "g1",
        "leader": "LEAD",
        "followers": ["F1", "F2"],
        "working_orders": [],
    }
    assert len(await api.get("/api/groups")) == 1
    await _free_accounts(api)
    assert await api.get("/api/groups") == []
    api.rig.trade("LEAD", 1)
    assert api.rig.position("F1", ES) == 0


async def test_a_follower_copies_fills_or_orders(api: ApiRig) -> None:
    """S8.1: the copy mode is a term of the membership, set when it is added and changed like
    the ratio; the group, the follower and the account all show it."""
    await api.call("DELETE", "/api/groups/g1/followers/F2", status=200)
    api.idle()
    body = {"account": "F2", "copy": "orders", "symbol_map": {"ES": "MES"}}
    group = await api.post("/api/groups/g1/followers", body, status=201)
    assert group["followers"][-1]["copy"] == "orders"
    account = await api.get("/api/accounts/F2")
    assert account["membership"]["copy"] == "orders"
    changed = await api.call("PATCH", "/api/groups/g1/followers/F2", {"copy": "fills"}, status=200)
    assert (changed["copy"], changed["symbol_map"]) == ("fills", {"ES": "MES"})
    changed = await api.call("PATCH", "/api/groups/g1/followers/F2", {"ratio": "2"}, status=200)
    assert changed["copy"] == "fills"  # kept when another term changes
    assert (await api.get("/api/groups/g1"))["followers"][-1]["copy"] == "fills"
    assert (await api.get("/api/accounts/LEAD"))["membership"]["copy"] is None


async def test_orders_mode_refuses_a_map_between_price_scales(api: ApiRig) -> None:
    """S8.2: mirrors carry the leader's prices, so a follower copying orders maps only roots of
    the same tick size; refused when the membership is set, naming both roots and their ticks."""
    problem = await api.call(
        "PATCH", "/api/groups/g1/followers/F1", {"copy": "orders", "symbol_map": {"ES": "CL"}},
        status=409,
    )  # fmt: skip
    assert "symbol_map ES → CL" in problem["message"]
    assert "ES ticks 0.25, CL ticks 0.01" in problem["message"]
    follower = (await api.get("/api/groups/g1"))["followers"][0]
    assert (follower["copy"], follower["symbol_map"]) == ("fills", {})  # nothing changed
    await api.call("PATCH", "/api/groups/g1/followers/F1", {"symbol_map": {"ES": "CL"}}, status=200)
    problem = await api.call("PATCH", "/api/groups/g1/followers/F1", {"copy": "orders"}, status=409)
    assert "ES ticks 0.25, CL ticks 0.01" in problem["message"]
    await api.call("DELETE", "/api/groups/g1/followers/F2", status=200)
    api.idle()
    body = {"account": "F2", "copy": "orders", "symbol_map": {"NQ": "CL"}}
    problem = await api.post("/api/groups/g1/followers", body, status=409)
    assert "NQ ticks 0.25, CL ticks 0.01" in problem["message"]
    body["symbol_map"] = {"NQ": "MNQ"}
    group = await api.post("/api/groups/g1/followers", body, status=201)
    assert group["followers"][-1]["copy"] == "orders"


async def test_on_drift_at_creation_and_changed(api: ApiRig) -> None:
    """S10.2: a group's on_drift is given when it is made, changed by PATCH, and kept in the
    store; any other value is refused with the field named."""
    await _free_accounts(api)
    body = {"id": "g2", "leader": "LEAD", "followers": [{"account": "F1"}], "on_drift": "reduce"}
    created = await api.post("/api/groups", body, status=201)
    assert created["on_drift"] == "reduce"
    changed = await api.call("PATCH", "/api/groups/g2", {"on_drift": "alert"}, status=200)
    assert changed["on_drift"] == "alert"
    api.idle()
    assert [r["on_drift"] for r in api.rig.rows("SELECT on_drift FROM groups")] == ["alert"]
    problem = await api.call("PATCH", "/api/groups/g2", {"on_drift": "close"}, status=422)
    assert problem["field"] == "on_drift"
    await api.call("PATCH", "/api/groups/nope", {"on_drift": "alert"}, status=404)
    bad = {"id": "g3", "leader": "F2", "on_drift": "sometimes"}
    assert (await api.post("/api/groups", bad, status=422))["field"] == "on_drift"
