"""Records through the API (S7): the activity log, reconciliations (S3.3) and the order ledger
(S2.6), newest first, paged, filtered."""

from __future__ import annotations

import pytest

from tests.conftest import ES
from tests.engine.api.conftest import ApiRig

pytestmark = pytest.mark.trio


async def test_activity_pages_newest_first(api: ApiRig) -> None:
    for _ in range(3):
        api.rig.trade("LEAD", 1)
    everything = (await api.get("/api/activity?limit=500"))["items"]
    assert len(everything) >= 6
    seqs = [i["seq"] for i in everything]
    assert seqs == sorted(seqs, reverse=True)
    first = await api.get("/api/activity?limit=2")
    assert len(first["items"]) == 2
    assert first["next_before"] == first["items"][-1]["seq"]
    second = await api.get(f"/api/activity?limit=2&before={first['next_before']}")
    assert [i["seq"] for i in second["items"]] == seqs[2:4]
    last = await api.get(f"/api/activity?limit=500&before={seqs[-1] + 1}")
    assert last["next_before"] is None


async def test_activity_filters(api: ApiRig) -> None:
    api.rig.trade("LEAD", 1)
    await api.post("/api/accounts/F1/lock")
    api.idle()
    f1 = (await api.get("/api/activity?account=F1"))["items"]
    assert f1
    assert {i["account"] for i in f1} == {"F1"}
    locks = (await api.get("/api/activity?kind=lock"))["items"]
    assert [(i["account"], i["level"]) for i in locks] == [("F1", "warning")]
    warnings = (await api.get("/api/activity?level=warning"))["items"]
    assert all(i["level"] == "warning" for i in warnings)
    now = api.rig.clock.now().isoformat()
    assert (await api.get(f"/api/activity?until={now.replace('+', '%2B')}"))["items"] == []
    since = (await api.get(f"/api/activity?since={now.replace('+', '%2B')}"))["items"]
    assert len(since) == len((await api.get("/api/activity?limit=500"))["items"])


async def test_the_entries_of_one_leader_fill(api: ApiRig) -> None:
    """S7.1: the leader fill is an entry of the leader's (kind copy); each follower's copy
    names it by the key its copy orders carry as their cause (S2.6)."""
    api.rig.trade("LEAD", 1)
    api.rig.trade("LEAD", 1)
    causes = [o["cause"] for o in (await api.get("/api/orders?account=F1"))["items"]]
    newest, oldest = causes
    leader = (await api.get("/api/activity?account=LEAD"))["items"]
    assert [(i["kind"], i["fill"]) for i in leader] == [("copy", newest), ("copy", oldest)]
    assert leader[1]["message"].startswith(f"LEAD filled +1 {ES} ")
    query = oldest.replace(":", "%3A")
    entries = (await api.get(f"/api/activity?fill={query}"))["items"]
    assert {i["fill"] for i in entries} == {oldest}
    assert sorted((i["account"], i["kind"]) for i in entries) == [
        ("F1", "copy"),
        ("F2", "copy"),
        ("LEAD", "copy"),
    ]
    assert entries[-1]["account"] == "LEAD"  # newest first: the leader's entry came first
    locks = (await api.get("/api/activity?kind=lock"))["items"]
    assert all(i["fill"] is None for i in locks)
    assert (await api.get("/api/activity?fill=LEAD%3Anone"))["items"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=x", "limit"),
        ("before=-1", "before"),
        ("level=loud", "level"),
        ("kind=gossip", "kind"),
        ("since=yesterday", "since"),
        ("since=2026-01-01T00:00:00", "since"),
        ("account=", "account"),
        ("fill=", "fill"),
        ("fill=" + "x" * 301, "fill"),
    ],
)
async def test_bad_queries_name_the_field(api: ApiRig, query: str, field: str) -> None:
    problem = await api.get(f"/api/activity?{query}", status=422)
    assert problem["field"] == field


async def test_reconciliations_and_orders(api: ApiRig) -> None:
    """S3.3: one record per follower when its connection returns; S2.6: the ledger."""
    api.rig.trade("LEAD", 1)
    await api.post("/api/connections/f1/offline")
    api.idle()
    api.rig.trade("LEAD", -1)
    await api.post("/api/connections/f1/reconnect")
    api.idle()
    records = (await api.get("/api/reconciliations?account=F1"))["items"]
    assert records
    assert records[0]["before"] == {ES: 1}
    assert records[0]["target"] == {ES: 0}
    assert records[0]["orders"] == {ES: -1}
    orders = (await api.get("/api/orders?account=F1"))["items"]
    assert {o["kind"] for o in orders} == {"copy", "reconciliation"}
    assert orders[0]["kind"] == "reconciliation"
    assert all(o["status"] in ("filled", "sent") for o in orders)
    paged = await api.get("/api/orders?limit=1")
    assert paged["next_before"] is not None
    older = await api.get(f"/api/orders?limit=500&before={paged['next_before']}")
    assert paged["items"][0] not in older["items"]
