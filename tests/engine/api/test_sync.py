"""Sync through the API (``/api/accounts/{account}/sync``, ``/api/groups/{group}/sync``): a
follower short of its leader brought to ``t(L)`` on request (S6.2, the one exception to S2.5),
shown first and sending nothing then; the orders shown carried as ``expect``, nothing sent when
the plan changed since; the gate still applies (S5.4, S5.5); a follower that cannot be synced
skipped with a ``skip`` entry and its record; a leader refused; bad input named by field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.domain.risk_status import RiskStatus
from tests.conftest import ES
from tests.engine.api.conftest import ApiRig, short_follower

pytestmark = pytest.mark.trio

F1_SYNC = "/api/accounts/F1/sync"
LOCKED = "Account is LOCKED — no trades allowed."


def records(api: ApiRig, account: str) -> list[tuple[str, dict[str, int], dict[str, int]]]:
    """The account's sync records: (cause, target, orders)."""
    return [
        (r["cause"], json.loads(r["target"]), json.loads(r["orders"]))
        for r in api.rig.reconciliations(account)
        if r["cause"].startswith("sync:")
    ]


def sync_skips(api: ApiRig, account: str) -> list[str]:
    return [m for m in api.rig.messages(account, "skip") if m.startswith("sync toward")]


async def dry_run(api: ApiRig, path: str = F1_SYNC) -> Any:
    return await api.post(f"{path}?dry_run=true", status=200)


async def test_s6_2_a_short_follower_is_shown_then_brought_to_its_target(api: ApiRig) -> None:
    short_follower(api)
    shown = await dry_run(api)
    assert shown == {
        "account": "F1",
        "group": "g1",
        "connection": "f1",
        "connection_state": "connected",
        "risk_status": "OK",
        "positions": {ES: 0},
        "targets": {ES: 2},
        "orders": {ES: 2},
        "skip": "",
        "gate": "",
        "dry_run": True,
        "message": f"F1: would send {ES} +2 toward its leader's target",
    }
    api.idle()
    assert api.rig.orders("F1") == []  # a dry run sends nothing
    assert records(api, "F1") == []

    sent = await api.post(F1_SYNC, {"expect": shown["orders"]})
    assert sent == {**shown, "dry_run": False, "message": f"F1: sending {ES} +2 toward its"
                    " leader's target"}  # fmt: skip
    api.idle()
    assert api.rig.position("F1") == api.rig.broker_position("F1") == 2
    assert [o["qty"] for o in api.rig.orders("F1")] == [2]
    assert records(api, "F1") == [("sync:1", {ES: 2}, {ES: 2})]
    assert f"sync toward the leader (sync:1): {ES} +2" in api.rig.messages("F1", "reconciliation")
    again = await dry_run(api)
    assert (again["orders"], again["message"]) == ({}, "F1: nothing to send, it is at its"
                                                   " leader's target")  # fmt: skip


async def test_s6_2_without_expect_the_plan_then_goes(api: ApiRig) -> None:
    short_follower(api)
    response = await api.http.post(F1_SYNC)  # no body at all
    assert response.status_code == 202, response.text
    assert response.json()["orders"] == {ES: 2}
    api.idle()
    assert api.rig.position("F1") == 2


async def test_s6_2_orders_changed_since_shown_send_nothing(api: ApiRig) -> None:
    short_follower(api)
    shown = await dry_run(api)
    api.rig.trade("F1", 1)  # the owner buys one by hand: the plan is now +1, not the +2 shown
    sent = await api.post(F1_SYNC, {"expect": shown["orders"]})
    skip = (
        f"the orders changed since they were shown (shown: {ES} +2; now: {ES} +1) — run sync"
        " again to see them"
    )
    assert (sent["orders"], sent["skip"]) == ({}, skip)
    assert sent["message"] == f"F1: nothing sent — {skip}"
    api.idle()
    assert api.rig.position("F1") == 1
    assert api.rig.orders("F1") == []
    assert records(api, "F1") == [("sync:1", {ES: 2}, {})]
    assert sync_skips(api, "F1") == [f"sync toward the leader (sync:1): nothing sent — {skip}"]


async def test_s6_2_a_locked_follower_is_shown_the_gate_and_rejected(api: ApiRig) -> None:
    """S5.5: each order passes the gate; the record is written all the same."""
    await api.post("/api/accounts/F1/lock")
    api.idle()
    api.rig.trade("LEAD", 2)  # F1's copy is rejected: LOCKED
    assert api.rig.position("F1") == 0
    shown = await dry_run(api)
    assert (shown["risk_status"], shown["orders"]) == ("LOCKED", {ES: 2})
    assert shown["gate"] == f"every order would be rejected: {LOCKED}"
    assert shown["message"].endswith(f"— every order would be rejected: {LOCKED}")
    await api.post(F1_SYNC, {"expect": shown["orders"]})
    api.idle()
    assert api.rig.position("F1") == 0
    assert api.rig.status("F1") is RiskStatus.LOCKED
    assert len(api.rig.messages("F1", "rejection")) == 2  # the copy, then the sync's order
    assert records(api, "F1") == [("sync:1", {ES: 2}, {ES: 2})]


async def test_s6_2_a_disconnected_follower_is_skipped_with_its_record(api: ApiRig) -> None:
    api.rig.broker.drop("f1")
    api.idle()
    api.rig.trade("LEAD", 2)
    shown = await dry_run(api)
    skip = "its connection f1 is disconnected"
    assert (shown["connection_state"], shown["orders"], shown["skip"]) == ("disconnected", {}, skip)
    assert shown["message"] == f"F1: nothing to send — {skip}"
    sent = await api.post(F1_SYNC, {"expect": {}})
    assert sent["message"] == f"F1: nothing sent — {skip}"
    api.idle()
    assert api.rig.orders("F1") == []
    assert records(api, "F1") == [("sync:1", {}, {})]
    assert sync_skips(api, "F1") == [f"sync toward the leader (sync:1): nothing sent — {skip}"]


async def test_a_leader_or_an_account_in_no_group_is_refused(api: ApiRig) -> None:
    refused = await api.post("/api/accounts/LEAD/sync?dry_run=true", status=409)
    assert refused["message"] == (
        "account 'LEAD' leads group 'g1': sync brings a follower to its leader"
    )
    await api.post("/api/accounts/LEAD/sync", status=409)
    await api.call("DELETE", "/api/groups/g1/followers/F2", status=200)
    refused = await api.post("/api/accounts/F2/sync", status=409)
    assert refused["message"] == "account 'F2' follows no group: there is nothing to sync to"
    api.idle()
    assert api.rig.reconciliations() == []


async def test_unknown_ids_are_404(api: ApiRig) -> None:
    await api.post("/api/accounts/NOPE/sync?dry_run=true", status=404)
    await api.post("/api/accounts/NOPE/sync", status=404)
    await api.post("/api/groups/nope/sync?dry_run=true", status=404)
    await api.post("/api/groups/nope/sync", status=404)


async def test_s6_2_a_group_sync_shows_then_syncs_every_follower(api: ApiRig) -> None:
    short_follower(api)
    shown = await dry_run(api, "/api/groups/g1/sync")
    assert (shown["group"], shown["dry_run"]) == ("g1", True)
    assert [(f["account"], f["orders"]) for f in shown["followers"]] == [
        ("F1", {ES: 2}),
        ("F2", {}),
    ]
    expect = {f["account"]: f["orders"] for f in shown["followers"] if f["orders"]}
    sent = await api.post("/api/groups/g1/sync", {"expect": expect})
    assert sent["dry_run"] is False
    assert [f["message"] for f in sent["followers"]] == [
        f"F1: sending {ES} +2 toward its leader's target",
        "F2: nothing to send, it is at its leader's target",
    ]
    api.idle()
    assert (api.rig.position("F1"), api.rig.position("F2")) == (2, 2)
    assert records(api, "F1") == [("sync:1", {ES: 2}, {ES: 2})]
    assert records(api, "F2") == [("sync:1", {ES: 2}, {})]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expect": {"ES": 2}}, "expect"),
        ({"expect": {"ESZ6" * 5: 2}}, "expect"),
        ({"expect": {ES: 1.5}}, f"expect.{ES}"),
        ({"expect": {ES: "2"}}, f"expect.{ES}"),
        ({"expect": {ES: 10**6}}, f"expect.{ES}"),
        ({"expect": {ES: 2}, "orders": {}}, "orders"),
        ({"expect": [2]}, "expect"),
    ],
)
async def test_a_bad_expect_is_named_and_sends_nothing(
    api: ApiRig, body: dict[str, Any], field: str
) -> None:
    short_follower(api)
    problem = await api.call("POST", F1_SYNC, body, status=422)
    assert problem["field"] == field, problem
    api.idle()
    assert records(api, "F1") == []


async def test_a_bad_group_expect_names_the_follower(api: ApiRig) -> None:
    problem = await api.call(
        "POST", "/api/groups/g1/sync", {"expect": {"F1": {ES: True}}}, status=422
    )
    assert problem["field"] == f"expect.F1.{ES}"
    api.idle()
    assert api.rig.reconciliations() == []
