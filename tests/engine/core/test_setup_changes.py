"""Setup changes while the engine runs (engine/core/setup_changes.py), on both runtimes: a new
connection copies at once, deleting a connection or an account cascades as S4.1/S4.2 say and
survives a restart, groups come and go, a follower's new terms apply from the next fill (S2.2)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from actors import addresses
from actors.messages.group import DisableMember
from engine.core import topology as topo
from engine.core.topology import CommandRefused, UnknownId
from tests.conftest import ES, MES, MakeEngine, Rig, member


def _accounts(rig: Rig) -> set[str]:
    return {r["id"] for r in rig.rows("SELECT id FROM accounts")}


def _memberships(rig: Rig) -> set[tuple[str, str]]:
    return {(r["group_id"], r["account"]) for r in rig.rows("SELECT * FROM memberships")}


def test_a_connection_added_while_running_copies_at_once(
    tmp_path: Path, make_engine: MakeEngine, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.add_connection("f3", "paper", {"F3": Decimal(25000)})
    rig.engine.set_risk("F3", {"daily_loss_limit": Decimal(900)})
    rig.engine.add_follower("g1", member("F3", 2))
    rig.idle()
    view = rig.engine.account_view("F3")
    assert view is not None
    assert view.balance == Decimal(25000)
    assert rig.engine.connection_state("f3") == "connected"

    rig.trade("LEAD", 1)
    assert rig.position("F3") == 2  # S2.2: ratio 2
    assert rig.broker_position("F3") == 2

    rig.restart()
    assert "F3" in rig.engine.topology.accounts
    assert rig.engine.topology.accounts["F3"].limits == {"daily_loss_limit": Decimal(900)}
    rig.trade("LEAD", -1)
    assert rig.position("F3") == 0


def test_adding_a_connection_checks_first(tmp_path: Path, make_engine: MakeEngine) -> None:
    rig = make_engine(tmp_path)
    with pytest.raises(CommandRefused, match="no broker 'tradovate'"):
        rig.engine.add_connection("t1", "tradovate", {"T1": Decimal(1)})
    with pytest.raises(CommandRefused, match="already exists"):
        rig.engine.add_connection("f1", "paper", {})
    with pytest.raises(CommandRefused, match="account 'F1' already exists"):
        rig.engine.add_connection("new", "paper", {"F1": Decimal(1)})
    assert "new" not in rig.engine.topology.connections
    assert {r["id"] for r in rig.rows("SELECT id FROM connections")} == {"lead", "f1", "f2"}


def test_deleting_a_leaders_connection_cascades_stops_its_actors_and_survives_a_restart(
    tmp_path: Path, make_engine: MakeEngine, runtime: str
) -> None:
    """S4.1: the connection's accounts go, and with LEAD the group it leads (S4.2); its session
    is closed and its actors stopped; no order is sent (S4.5)."""
    rig = make_engine(tmp_path, runtime)
    rig.trade("LEAD", 1)
    orders_before = len(rig.orders())
    plan = rig.engine.delete_connection("lead")
    rig.idle()
    assert (plan.accounts, plan.groups) == (("LEAD",), ("g1",))
    assert set(plan.orphaned_followers) == {("g1", "F1"), ("g1", "F2")}
    assert "lead" not in rig.engine.sessions
    for address in (
        addresses.connection("lead"),
        addresses.account("LEAD"),
        addresses.risk("LEAD"),
        addresses.group("g1"),
    ):
        assert not rig.engine.runtime.exists(address), address
    assert _accounts(rig) == {"F1", "F2"}
    assert _memberships(rig) == set()
    assert len(rig.orders()) == orders_before
    assert rig.position("F1") == 1  # positions are left as they are (S4.5)
    assert rig.messages("LEAD", "deletion") == ["account LEAD deleted"]

    rig.restart()
    assert set(rig.engine.topology.connections) == {"f1", "f2"}
    assert rig.engine.topology.groups == {}


def test_deleting_a_leader_account_removes_its_group(
    tmp_path: Path, make_engine: MakeEngine, runtime: str
) -> None:
    """S4.2: the whole group goes; the followers stay, in no group; no order is sent (S4.5);
    the records stay (S4.4)."""
    rig = make_engine(tmp_path, runtime)
    rig.trade("LEAD", 2)
    orders_before = len(rig.orders())
    activity_before = rig.activity()
    plan = rig.engine.delete_account("LEAD")
    rig.idle()
    assert plan.groups == ("g1",)
    assert set(plan.orphaned_followers) == {("g1", "F1"), ("g1", "F2")}
    assert "LEAD" not in _accounts(rig)
    assert _memberships(rig) == set()
    assert rig.rows("SELECT * FROM groups") == []
    assert len(rig.orders()) == orders_before
    assert rig.position("F1") == 2  # positions are left as they are (S4.5)
    assert rig.engine.topology.group_of("F1") is None
    assert rig.messages("LEAD", "deletion")
    assert rig.activity()[: len(activity_before)] == activity_before  # records kept (S4.4)

    rig.restart()
    assert rig.engine.topology.groups == {}
    assert set(rig.engine.topology.accounts) == {"F1", "F2"}


def test_deleting_a_follower_account_removes_only_its_membership(
    tmp_path: Path, make_engine: MakeEngine, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.trade("LEAD", 1)
    plan = rig.engine.delete_account("F1")
    rig.idle()
    assert plan.groups == ()
    assert plan.memberships == (("g1", "F1"),)
    assert _memberships(rig) == {("g1", "F2")}
    assert rig.activity("F1", "copy")  # its records are kept (S4.4)
    assert rig.orders("F1")
    rig.trade("LEAD", 1)
    assert rig.position("F2") == 2
    assert rig.broker_position("F1") == 1  # never touched again
    assert rig.engine.account_view("F1") is None
    with pytest.raises(UnknownId):
        rig.engine.delete_account("F1")


def test_a_group_created_while_running_copies(
    tmp_path: Path, make_engine: MakeEngine, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime, groups=())
    rig.trade("LEAD", 1)  # before the group: nothing to copy
    rig.engine.add_group("g2", "LEAD", [member("F1"), member("F2", 3, max_qty=4)])
    rig.idle()
    group = rig.engine.group_view("g2")
    assert group is not None
    assert group.leader_positions == {ES: 1}  # learned from the leader's account
    rig.trade("LEAD", 1)
    # S2.2: the leader went 1 → 2; F2 (ratio 3, max 4) gets t(2) − t(1) = 4 − 3, not a replay
    # of the entry it was not there for (S2.5).
    assert (rig.position("F1"), rig.position("F2")) == (1, 1)
    with pytest.raises(CommandRefused, match="at most one group"):
        rig.engine.add_group("g3", "F1", [])

    rig.engine.delete_group("g2")
    rig.idle()
    rig.trade("LEAD", 1)
    assert (rig.position("F1"), rig.position("F2")) == (1, 1)
    assert rig.rows("SELECT * FROM groups") == []
    assert rig.engine.topology.group_of("F1") is None


def test_new_follower_terms_apply_from_the_next_fill(
    tmp_path: Path, make_engine: MakeEngine, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 1
    rig.engine.update_follower("g1", member("F1", 2, symbol_map={"ES": "MES"}))
    rig.idle()
    rig.trade("LEAD", 1)
    assert rig.position("F1", MES) == 2  # S2.2 on the new ratio, S2.3 mapped
    assert rig.position("F1") == 1  # nothing sent for the change itself
    loaded = topo.load(rig.store)
    terms = next(m for m in loaded.groups["g1"].members if m.account == "F1")
    assert (terms.ratio, terms.symbol_map) == (Decimal(2), (("ES", "MES"),))
    with pytest.raises(CommandRefused, match="does not follow"):
        rig.engine.update_follower("g1", member("LEAD"))


def test_new_terms_keep_the_disable_reason(tmp_path: Path, make_engine: MakeEngine) -> None:
    rig = make_engine(tmp_path)
    rig.engine.lock("F1")
    rig.idle()
    updated = rig.engine.update_follower("g1", member("F1", 3))
    rig.idle()
    assert updated.disable_reason
    group = rig.engine.group_view("g1")
    assert group is not None
    f1 = next(m for m in group.members if m.account == "F1")
    assert (f1.ratio, f1.disable_reason) == (Decimal(3), updated.disable_reason)


def test_new_terms_keep_a_disable_reason_set_after_the_command_read_it(
    tmp_path: Path, make_engine: MakeEngine
) -> None:
    """The group disables F1 between the command's read of the group and its new terms
    arriving: the group keeps its own, newer reason (S5.3 step 3: the lock marks it)."""
    rig = make_engine(tmp_path)
    rig.engine.runtime.tell(addresses.group("g1"), DisableMember("F1", "locked: test"))
    updated = rig.engine.update_follower("g1", member("F1", 3))  # read before it is delivered
    assert updated.disable_reason == ""
    rig.idle()
    group = rig.engine.group_view("g1")
    assert group is not None
    f1 = next(m for m in group.members if m.account == "F1")
    assert (f1.ratio, f1.disable_reason) == (Decimal(3), "locked: test")
