"""CopyGroupActor through the real engine: fan-out with each membership's terms (S2.1–S2.3),
memberships at run time, who is reconciled when (S3.1–S3.3), never toward a leader whose
positions are unknown (S3.5), and deletion (S4)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.paper import PaperBroker
from engine.core.topology import CommandRefused, GroupConfig, UnknownId
from engine.domain.copying import Membership, Role
from tests.conftest import ES, MES, NQ, MakeEngine, Rig, member

D = Decimal

THREE = (
    ("lead", "f1", "f2"),
    (("LEAD", "lead"), ("F1", "f1"), ("F2", "f2"), ("F3", "f2")),
)


def group_rig(
    make_engine: MakeEngine,
    tmp_path: Path,
    runtime: str = "deterministic",
    members: list[Membership] | None = None,
    **kw: object,
) -> Rig:
    connections, accounts = THREE
    members = members if members is not None else [member("F1"), member("F2")]
    return make_engine(
        tmp_path,
        runtime,
        connections=connections,
        accounts=accounts,
        groups=(GroupConfig("g1", "LEAD", members),),
        **kw,  # type: ignore[arg-type]
    )


def membership(rig: Rig, account: str) -> Membership:
    view = rig.engine.group_view("g1")
    assert view is not None
    found = [m for m in view.members if m.account == account]
    assert found, f"{account} is no member of g1"
    return found[0]


# --- S2.1–S2.3: fan-out ---------------------------------------------------------------------------


def test_s2_1_each_follower_gets_the_fill_with_its_own_terms(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    members = [
        member("F1", 2),
        member("F2", "0.5", max_qty=1, symbol_map={"ES": "MES"}),
        member("F3", 1, max_qty=2),
    ]
    rig = group_rig(make_engine, tmp_path, runtime, members)
    rig.trade("LEAD", 3)
    assert rig.position("F1") == 6
    assert rig.position("F2", MES) == 1  # round(1.5) = 2, capped at 1, mapped to MES
    assert rig.position("F2", ES) == 0
    assert rig.position("F3") == 2
    view = rig.engine.group_view("g1")
    assert view is not None
    assert view.leader == "LEAD"
    assert view.leader_positions == {ES: 3}
    rig.trade("LEAD", -3)
    assert (rig.position("F1"), rig.position("F2", MES), rig.position("F3")) == (0, 0, 0)
    view = rig.engine.group_view("g1")
    assert view is not None
    assert view.leader_positions == {}


def test_s2_6_copy_order_ids_derive_from_the_leader_fill(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = group_rig(make_engine, tmp_path)
    rig.trade("LEAD", 1)
    rows = rig.orders(kind="copy")
    assert len(rows) == 2
    assert {r["account"] for r in rows} == {"F1", "F2"}
    assert len({r["cause"] for r in rows}) == 1  # one leader fill, one cause
    assert rows[0]["cause"].startswith("LEAD:")
    assert all(r["client_order_id"].startswith("C") for r in rows)
    assert len({r["client_order_id"] for r in rows}) == 2


def test_a_follower_of_a_group_does_not_fan_out_its_own_fills(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = group_rig(make_engine, tmp_path)
    rig.trade("F1", 2)
    assert rig.position("F2") == 0
    assert rig.position("LEAD") == 0


# --- memberships at run time ----------------------------------------------------------------------


def test_add_follower_copies_only_later_fills(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = group_rig(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 1)
    rig.engine.add_follower("g1", member("F3", 2))
    rig.idle()
    assert rig.position("F3") == 0  # S2.5: nothing replayed
    rig.trade("LEAD", 1)
    assert rig.position("F3") == 2  # t(2) − t(1) = 4 − 2
    view = rig.engine.account_view("F3")
    assert view is not None
    assert view.role == Role("g1", False)
    risk = rig.engine.risk_view("F3")
    assert risk is not None
    assert risk.group == "g1"
    assert [
        m["account"] for m in rig.rows("SELECT account FROM memberships ORDER BY position")
    ] == [
        "F1",
        "F2",
        "F3",
    ]


def test_remove_follower_stops_copying(make_engine: MakeEngine, tmp_path: Path) -> None:
    rig = group_rig(make_engine, tmp_path)
    rig.trade("LEAD", 1)
    rig.engine.remove_follower("g1", "F1")
    rig.idle()
    rig.trade("LEAD", -1)
    assert rig.position("F1") == 1  # no longer follows: the exit is not copied
    assert rig.position("F2") == 0
    view = rig.engine.account_view("F1")
    assert view is not None
    assert view.role == Role()
    assert rig.rows("SELECT * FROM memberships WHERE account = 'F1'") == []
    with pytest.raises(CommandRefused, match="'F1' does not follow group 'g1'"):
        rig.engine.remove_follower("g1", "F1")


def test_add_follower_refusals_change_nothing(make_engine: MakeEngine, tmp_path: Path) -> None:
    rig = group_rig(make_engine, tmp_path)
    with pytest.raises(CommandRefused, match="leads group 'g1' and cannot follow it"):
        rig.engine.add_follower("g1", member("LEAD"))
    with pytest.raises(CommandRefused, match="'F1' already follows group 'g1'"):
        rig.engine.add_follower("g1", member("F1", 3))
    with pytest.raises(UnknownId):
        rig.engine.add_follower("g1", member("GHOST"))
    with pytest.raises(UnknownId):
        rig.engine.add_follower("nope", member("F3"))
    view = rig.engine.group_view("g1")
    assert view is not None
    assert [m.account for m in view.members] == ["F1", "F2"]
    assert membership(rig, "F1").ratio == 1


def test_s5_3_a_locked_followers_membership_is_disabled_but_still_offered(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = group_rig(make_engine, tmp_path, runtime)
    rig.engine.lock("F1")
    rig.idle()
    reason = membership(rig, "F1").disable_reason
    assert reason
    stored = rig.rows("SELECT disable_reason FROM memberships WHERE account = 'F1'")
    assert stored[0]["disable_reason"] == reason
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 0
    assert rig.position("F2") == 1  # S2.7: a rejected copy does not stop the fan-out
    rejections = rig.messages("F1", "rejection")
    assert len(rejections) == 1
    assert rejections[0].endswith("Account is LOCKED — no trades allowed.")
    rig.engine.unlock("F1")
    rig.idle()
    assert membership(rig, "F1").disable_reason == ""
    stored = rig.rows("SELECT disable_reason FROM memberships WHERE account = 'F1'")
    assert stored[0]["disable_reason"] == ""


# --- S3: reconciliation ---------------------------------------------------------------------------


def record(rig: Rig, account: str) -> dict[str, object]:
    row = rig.reconciliations(account)[-1]
    return {k: json.loads(row[k]) for k in ("before", "target", "orders")}


def test_s3_1_a_returning_follower_is_reduced_to_its_target(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = group_rig(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 3)
    rig.broker.drop("f1")
    rig.idle()
    rig.trade("LEAD", -2)  # F1 misses the reduction (skip)
    assert rig.position("F1") == 3
    rig.engine.reconnect("f1")
    rig.idle()
    assert rig.position("F1") == rig.broker_position("F1") == 1
    assert record(rig, "F1") == {"before": {ES: 3}, "target": {ES: 1}, "orders": {ES: -2}}
    assert [r["qty"] for r in rig.orders("F1", "reconciliation")] == [-2]
    assert len(rig.activity("F1", "reconciliation")) >= 1
    assert rig.position("F2") == 1  # F2 never left


def test_s3_2_a_returning_follower_on_the_other_side_is_closed_not_flipped(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = group_rig(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.broker.drop("f1")
    rig.idle()
    rig.trade("LEAD", -4)
    rig.engine.reconnect("f1")
    rig.idle()
    assert rig.position("F1") == 0
    assert record(rig, "F1") == {"before": {ES: 2}, "target": {ES: -2}, "orders": {ES: -2}}


def test_s3_2_a_returning_follower_smaller_than_its_target_gets_nothing(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = group_rig(make_engine, tmp_path)
    rig.trade("LEAD", 1)
    rig.broker.drop("f1")
    rig.idle()
    rig.trade("LEAD", 2)
    rig.engine.reconnect("f1")
    rig.idle()
    assert rig.position("F1") == 1  # never adds
    assert record(rig, "F1") == {"before": {ES: 1}, "target": {ES: 3}, "orders": {}}
    assert rig.orders("F1", "reconciliation") == []


def test_s3_1_a_returning_leader_reconciles_every_connected_follower(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = group_rig(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.broker.drop("lead")
    rig.broker.drop("f2")
    rig.idle()
    rig.trade("LEAD", -2)  # made while the leader's login was down: not fanned out (S2.1)
    assert rig.position("F1") == 2
    f2_records = len(rig.reconciliations("F2"))
    rig.engine.reconnect("lead")
    rig.idle()
    assert rig.position("F1") == 0  # reconciled toward L_now = 0
    assert record(rig, "F1")["orders"] == {ES: -2}
    assert len(rig.reconciliations("F2")) == f2_records  # not connected: not reconciled
    assert rig.broker_position("F2") == 2
    rig.engine.reconnect("f2")
    rig.idle()
    assert rig.position("F2") == 0  # reconciled when it returns
    view = rig.engine.group_view("g1")
    assert view is not None
    assert view.leader_positions == {}


def test_s3_3_every_reconciliation_writes_one_record_per_account(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = group_rig(make_engine, tmp_path)
    rig.broker.drop("lead")
    rig.idle()
    rig.engine.reconnect("lead")
    rig.idle()
    for account in ("F1", "F2"):
        rows = rig.reconciliations(account)
        assert len(rows) == 1
        assert json.loads(rows[0]["orders"]) == {}
        assert rows[0]["connection"] == ("f1" if account == "F1" else "f2")
    assert rig.reconciliations("LEAD") == []


def test_s3_1_leader_and_follower_returning_together_reconcile_once(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(
        tmp_path,
        connections=("both",),
        accounts=(("LEAD", "both"), ("F1", "both")),
        groups=(GroupConfig("g1", "LEAD", [member("F1")]),),
    )
    rig.trade("LEAD", 1)
    rig.broker.drop("both")
    rig.idle()
    rig.engine.reconnect("both")
    rig.idle()
    assert len(rig.reconciliations("F1")) == 1
    assert rig.position("F1") == 1


def test_s3_1_only_the_symbols_the_group_copies_are_touched(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = group_rig(make_engine, tmp_path, members=[member("F1", symbol_map={"ES": "MES"})])
    rig.trade("F1", 2, ES)  # the trader's own ES: the group copies into MES only
    rig.trade("F1", 1, MES)  # more MES than the leader's 0
    rig.broker.drop("f1")
    rig.idle()
    rig.engine.reconnect("f1")
    rig.idle()
    assert rig.position("F1", ES) == 2  # untouched
    assert rig.position("F1", MES) == 0  # closed toward t(0)
    assert record(rig, "F1")["before"] == {MES: 1}


def test_s3_1_an_engine_restart_counts_as_every_connection_returning(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = group_rig(make_engine, tmp_path)
    rig.trade("LEAD", 2)
    rig.restart(reconcile=False)  # a restart that does not reconcile touches nothing
    assert rig.position("F1") == 2
    rig.engine.stop()
    rig.broker.trade("LEAD", ES, -2)  # while the engine was down
    rig.restart(reconcile=True)
    assert rig.position("LEAD") == 0
    assert rig.position("F1") == rig.position("F2") == 0
    assert record(rig, "F1")["orders"] == {ES: -2}


def test_s3_1_leader_positions_held_at_start_are_the_target_of_a_later_reconciliation(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    def open_positions(broker: PaperBroker) -> None:
        broker.trade("LEAD", ES, 2)
        broker.trade("F1", ES, 2)

    rig = group_rig(make_engine, tmp_path, before_start=open_positions)
    assert rig.position("LEAD") == 2
    assert rig.position("F1") == 2
    rig.broker.drop("f1")
    rig.idle()
    rig.engine.reconnect("f1")
    rig.idle()
    assert rig.position("F1") == 2  # t(L_now) = t(2) = 2: nothing to do


# --- S3.5: never toward a leader whose positions are unknown --------------------------------------


def waits_for_leader(rig: Rig, account: str) -> list[str]:
    return [
        r["message"]
        for r in rig.activity(account, "reconciliation")
        if r["level"] == "warning" and "reconciliation toward leader LEAD waits" in r["message"]
    ]


def test_s3_5_a_follower_back_before_its_leaders_answer_waits_and_is_reconciled_once(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = group_rig(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.broker.drop("lead")
    rig.broker.drop("f1")
    rig.idle()
    rig.trade("LEAD", -2)  # unseen: the engine still has the leader at +2
    rig.broker.fail_snapshot("lead", 2)
    rig.engine.reconnect("lead")
    rig.engine.reconnect("f1")  # F1's own answer is in at once; its leader's is not
    rig.idle()
    assert rig.reconciliations("F1") == []  # not toward the leader's +2 from before
    assert rig.broker_position("F1") == 2
    assert len(waits_for_leader(rig, "F1")) == 1
    assert len(waits_for_leader(rig, "F2")) == 1  # connected all along: the return owes it
    rig.advance(1)
    assert rig.reconciliations("F1") == []
    rig.advance(2)
    for account in ("F1", "F2"):
        assert rig.position(account) == rig.broker_position(account) == 0
        (row,) = rig.reconciliations(account)
        assert (row["before"], row["target"]) == ('{"ESZ6": 2}', '{"ESZ6": 0}')
        assert len(waits_for_leader(rig, account)) == 1


def test_s3_5_leader_and_follower_on_one_login_with_an_unknown_answer_reconcile_once(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(
        tmp_path,
        connections=("both",),
        accounts=(("LEAD", "both"), ("F1", "both")),
        groups=(GroupConfig("g1", "LEAD", [member("F1")]),),
    )
    rig.trade("LEAD", 1)
    rig.broker.drop("both")
    rig.idle()
    rig.trade("LEAD", -1)
    rig.broker.fail_snapshot("both")
    rig.engine.reconnect("both")
    rig.idle()
    assert rig.broker_position("F1") == 1
    assert rig.reconciliations("F1") == []
    warnings = [r["message"] for r in rig.activity("F1") if r["level"] == "warning"]
    assert [w.split(":")[0] for w in warnings if "unknown" in w] == [
        "positions of F1 unknown",
        "reconciliation toward leader LEAD waits",
    ]
    rig.advance(1)
    assert rig.position("F1") == 0
    assert len(rig.reconciliations("F1")) == 1


def test_s3_5_a_reconciliation_held_for_the_followers_answer_is_dropped_when_the_leader_leaves(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = group_rig(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.broker.drop("lead")
    rig.broker.drop("f1")
    rig.idle()
    rig.trade("LEAD", -2)
    rig.broker.fail_snapshot("f1", 2)
    rig.engine.reconnect("f1")  # F1's answer is unknown
    rig.engine.reconnect("lead")  # the leader's is in: F1 is sent a reconciliation toward 0
    rig.idle()
    assert rig.broker_position("F1") == 2  # held until F1's own answer
    rig.broker.drop("lead")  # the leader's 0 is no longer known ...
    rig.idle()
    rig.trade("LEAD", 2)  # ... and indeed it buys back, unseen
    rig.advance(1)
    rig.advance(2)  # F1's answer: it waits for the leader, not closed toward its old 0
    assert rig.broker_position("F1") == 2
    assert rig.reconciliations("F1") == []
    rig.engine.reconnect("lead")
    rig.idle()
    assert rig.position("F1") == 2  # t(2) = 2: nothing to send
    (row,) = rig.reconciliations("F1")
    assert row["orders"] == "{}"


def test_s3_5_a_restarted_group_learns_only_the_leaders_confirmed_positions(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = group_rig(make_engine, tmp_path)
    rig.trade("LEAD", 2)
    rig.broker.drop("lead")
    rig.idle()
    rig.trade("LEAD", -2)
    rig.broker.fail_snapshot("lead", 2)
    rig.engine.reconnect("lead")
    rig.idle()
    rig.engine.inject_failure("group", "g1")  # rebuilt: it asks the leader for its positions
    rig.idle()
    view = rig.engine.group_view("g1")
    assert view is not None
    assert view.leader_positions == {}  # not the +2 the leader's book still shows
    rig.broker.drop("f1")
    rig.idle()
    rig.engine.reconnect("f1")
    rig.idle()
    assert rig.reconciliations("F1") == []  # nothing toward an unknown leader
    rig.advance(1)
    rig.advance(2)
    view = rig.engine.group_view("g1")
    assert view is not None
    assert view.leader_positions == {}
    assert rig.position("F1") == rig.position("F2") == 0
    assert len(rig.reconciliations("F1")) == len(rig.reconciliations("F2")) == 1


def test_s3_5_a_follower_back_while_the_leaders_first_answer_fails_is_reconciled_by_it(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """At a first start nothing is reconciled (S1.3); a follower that returns while its
    leader's first answer is still unknown waits for it, and is reconciled when it comes."""

    def before_start(broker: PaperBroker) -> None:
        broker.trade("LEAD", ES, 2)
        broker.trade("F1", ES, 3)
        broker.fail_snapshot("lead", 2)

    rig = group_rig(make_engine, tmp_path, before_start=before_start)
    assert rig.reconciliations() == []
    rig.broker.drop("f1")
    rig.idle()
    rig.engine.reconnect("f1")
    rig.idle()
    assert rig.position("F1") == 3
    assert rig.reconciliations("F1") == []
    assert len(waits_for_leader(rig, "F1")) == 1
    rig.advance(1)
    rig.advance(2)
    assert rig.position("F1") == 2  # reduced to t(2), once
    assert len(rig.reconciliations("F1")) == 1
    assert rig.reconciliations("F2") == []  # the first start reconciles no one


# --- S4: deletion ---------------------------------------------------------------------------------


def test_s4_2_deleting_the_leaders_connection_removes_the_group_and_frees_its_followers(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = group_rig(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 1)
    orders_before = len(rig.orders())
    activity_lead = len(rig.activity("LEAD"))
    plan = rig.engine.delete_connection("lead")
    rig.idle()
    assert plan.groups == ("g1",)
    assert rig.engine.group_view("g1") is None
    assert rig.engine.account_view("LEAD") is None
    for account in ("F1", "F2"):
        view = rig.engine.account_view(account)
        risk = rig.engine.risk_view(account)
        assert view is not None
        assert risk is not None
        assert view.role == Role()
        assert risk.group is None
        assert view.positions == {ES: 1}  # S4.5: positions left as they are
    assert len(rig.orders()) == orders_before  # S4.5: no order sent
    assert len(rig.activity("LEAD")) > activity_lead  # S4.4: records kept, deletion added
    assert len(rig.orders("F1")) == 1  # the follower's order records are kept
    assert rig.rows("SELECT * FROM groups") == []
    assert rig.rows("SELECT * FROM memberships") == []
    assert rig.activity(kind="restart") == []  # no actor failed on the way


def test_s4_2_deleting_a_followers_connection_removes_only_its_membership(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = group_rig(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 1)
    rig.engine.delete_connection("f1")
    rig.idle()
    view = rig.engine.group_view("g1")
    assert view is not None
    assert [m.account for m in view.members] == ["F2"]
    rig.trade("LEAD", 1)
    assert rig.position("F2") == 2
    assert rig.broker_position("F1") == 1  # left as it was
    assert rig.engine.account_view("F1") is None
    assert [r["account"] for r in rig.rows("SELECT account FROM memberships")] == ["F2"]
    assert rig.activity(kind="restart") == []
    deletions = rig.activity(kind="deletion")
    assert any(r["account"] == "F1" for r in deletions)


def test_s4_deleting_a_connection_leaves_other_groups_working(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(
        tmp_path,
        connections=("a", "b"),
        accounts=(("L1", "a"), ("X", "a"), ("L2", "b"), ("Y", "b")),
        groups=(
            GroupConfig("g1", "L1", [member("Y")]),
            GroupConfig("g2", "L2", [member("X")]),
        ),
    )
    rig.engine.delete_connection("a")
    rig.idle()
    assert rig.engine.group_view("g1") is None
    g2 = rig.engine.group_view("g2")
    assert g2 is not None
    assert g2.members == ()
    rig.trade("L2", 1)  # g2 survives without X
    assert rig.position("Y") == 0  # Y's group g1 is gone
    view = rig.engine.account_view("Y")
    assert view is not None
    assert view.role == Role()  # orphaned by g1's removal
    assert rig.activity(kind="restart") == []


@pytest.mark.parametrize("symbol", [NQ])
def test_a_leader_fill_in_another_symbol_fans_out_in_that_symbol(
    make_engine: MakeEngine, tmp_path: Path, symbol: str
) -> None:
    rig = group_rig(make_engine, tmp_path)
    rig.trade("LEAD", -1, symbol)
    assert rig.position("F1", symbol) == rig.position("F2", symbol) == -1
    view = rig.engine.group_view("g1")
    assert view is not None
    assert view.leader_positions == {symbol: -1}
