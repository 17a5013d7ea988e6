"""``[records] activity_retention_days`` and ``ledger_retention_days``: the store keeps activity
entries, answered orders and fills (S10.5, with the ledger's retention) for as long as asked (by
default for ever), the oldest deleted by ``Engine.maintain``; an order still without an answer
stays whatever its age (S2.6)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from tests.conftest import MakeEngine


def test_records_past_their_retention_go_and_the_rest_stay(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(tmp_path)
    rig.broker.hold("f2")  # F2's copies stay working: no answer, whatever their age
    for qty in (1, -1, 1):
        rig.trade("LEAD", qty)
    old_orders = len(rig.orders())
    old_activity = len(rig.activity())
    old_fills = len(rig.rows("SELECT seq FROM fills"))
    rig.engine.maintain()
    assert len(rig.orders()) == old_orders  # kept for ever by default
    assert len(rig.rows("SELECT seq FROM fills")) == old_fills
    rig.advance(3 * 24 * 3600)
    rig.trade("LEAD", -1)
    engine = rig.engine
    engine.settings = replace(
        engine.settings,
        activity_retention=timedelta(days=2),
        ledger_retention=timedelta(days=2),
    )
    engine.maintain()
    orders = rig.orders()
    statuses = {
        (r["account"], r["status"])
        for r in orders
        if r["created_at"] < orders[-1]["created_at"][:10]
    }
    assert {account for account, _ in statuses} == {"F2"}  # only F2's, still working
    assert all(status in ("sent", "working") for _, status in statuses)
    assert len([r for r in orders if r["account"] == "F1"]) == 1  # the last day's copy
    # S10.5: the fills go with the ledger's retention; the last day's stay.
    fills = rig.rows("SELECT account, time FROM fills ORDER BY seq")
    assert sorted(r["account"] for r in fills) == ["F1", "LEAD"]
    assert all(r["time"] == rig.clock.now().isoformat() for r in fills)
    activity = rig.activity()
    assert 0 < len(activity) < old_activity + 20
    assert all(r["time"] >= (rig.clock.now() - timedelta(days=2)).isoformat() for r in activity)
