"""The topology's rules (an account in at most one group, S4 deletion cascades, S4.3 nothing
dangling, an account's effective risk keys: S9.7), and a cascade written to the store leaving it
equal to memory."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine.core import topology as topo
from engine.core.topology import (
    AccountConfig,
    CommandRefused,
    ConnectionConfig,
    DeletionPlan,
    GroupConfig,
    Topology,
    UnknownId,
)
from engine.domain.copying import Membership
from engine.domain.sessions import Blackout
from engine.storage import setup_rows
from engine.storage.store import Store

CPI = Blackout(
    datetime(2026, 11, 25, 13, 29, tzinfo=UTC), datetime(2026, 11, 25, 13, 45, tzinfo=UTC), "CPI"
)
NFP = Blackout(
    datetime(2026, 12, 4, 13, 29, tzinfo=UTC), datetime(2026, 12, 4, 13, 45, tzinfo=UTC), "NFP"
)


def build() -> Topology:
    """c1: LEAD, FX · c2: F1, L2 · c3: F3, FREE · g1: LEAD → F1, F3 · g2: L2 → FX."""
    t = Topology()
    for c in ("c1", "c2", "c3"):
        t.connections[c] = ConnectionConfig(c)
    for account, connection in [
        ("LEAD", "c1"),
        ("FX", "c1"),
        ("F1", "c2"),
        ("L2", "c2"),
        ("F3", "c3"),
        ("FREE", "c3"),
    ]:
        t.accounts[account] = AccountConfig(account, connection)
    t.groups["g1"] = GroupConfig(
        "g1", "LEAD", [Membership("F1", Decimal(1)), Membership("F3", Decimal(2))]
    )
    t.groups["g2"] = GroupConfig("g2", "L2", [Membership("FX", Decimal(1))])
    return t


# --- queries --------------------------------------------------------------------------------------


def test_queries() -> None:
    t = build()
    assert t.accounts_of("c1") == ["LEAD", "FX"]
    assert t.group_of("LEAD") == ("g1", True)
    assert t.group_of("F3") == ("g1", False)
    assert t.group_of("FREE") is None
    found = t.membership("F3")
    assert found is not None
    assert found[0] == "g1"
    assert found[1].ratio == Decimal(2)
    assert t.membership("LEAD") is None


# --- check_add_follower ---------------------------------------------------------------------------


def test_add_follower_accepts_a_free_account() -> None:
    build().check_add_follower("g1", Membership("FREE", Decimal(1)))


def test_add_follower_refuses_an_account_already_following_another_group() -> None:
    with pytest.raises(CommandRefused, match="'FX' already follows group 'g2'") as info:
        build().check_add_follower("g1", Membership("FX", Decimal(1)))
    assert "at most one group" in str(info.value)
    assert not isinstance(info.value, UnknownId)


def test_add_follower_refuses_an_account_already_following_the_same_group() -> None:
    with pytest.raises(CommandRefused, match="'F1' already follows group 'g1'"):
        build().check_add_follower("g1", Membership("F1", Decimal(1)))


def test_add_follower_refuses_the_leader_of_another_group() -> None:
    with pytest.raises(CommandRefused, match="'L2' leads group 'g2'"):
        build().check_add_follower("g1", Membership("L2", Decimal(1)))


def test_add_follower_refuses_the_leader_following_its_own_group() -> None:
    with pytest.raises(CommandRefused, match="'LEAD' leads group 'g1' and cannot follow it"):
        build().check_add_follower("g1", Membership("LEAD", Decimal(1)))


def test_add_follower_refuses_unknown_ids() -> None:
    t = build()
    with pytest.raises(UnknownId, match="unknown group 'nope'"):
        t.check_add_follower("nope", Membership("FREE", Decimal(1)))
    with pytest.raises(UnknownId, match="unknown account 'ghost'"):
        t.check_add_follower("g1", Membership("ghost", Decimal(1)))


# --- other checks ---------------------------------------------------------------------------------


def test_new_group_checks() -> None:
    t = build()
    with pytest.raises(CommandRefused, match="group 'g1' already exists"):
        t.check_new_group(GroupConfig("g1", "FREE"))
    with pytest.raises(UnknownId, match="unknown account 'ghost'"):
        t.check_new_group(GroupConfig("g3", "ghost"))
    with pytest.raises(CommandRefused, match="'F1' already follows group 'g1'"):
        t.check_new_group(GroupConfig("g3", "F1"))
    with pytest.raises(CommandRefused, match="'FREE' is in group 'g3' twice"):
        t.check_new_group(GroupConfig("g3", "FREE", [Membership("FREE", Decimal(1))]))
    with pytest.raises(CommandRefused, match="'LEAD' leads group 'g1'"):
        t.check_new_group(GroupConfig("g3", "FREE", [Membership("LEAD", Decimal(1))]))
    t.accounts["NEW"] = AccountConfig("NEW", "c3")
    t.check_new_group(GroupConfig("g3", "FREE", [Membership("NEW", Decimal(1))]))


def test_new_connection_and_account_checks() -> None:
    t = build()
    with pytest.raises(CommandRefused, match="connection 'c1' already exists"):
        t.check_new_connection(ConnectionConfig("c1"))
    with pytest.raises(CommandRefused, match="account 'F1' already exists"):
        t.check_new_account(AccountConfig("F1", "c1"))
    with pytest.raises(UnknownId, match="unknown connection 'c9'"):
        t.check_new_account(AccountConfig("NEW", "c9"))


# --- S4: deletion ---------------------------------------------------------------------------------


def test_s4_1_s4_2_leader_connection_deleted_removes_group_and_orphans_followers() -> None:
    t = build()
    plan = t.plan_delete_connection("c1")
    assert plan.connection == "c1"
    assert plan.accounts == ("FX", "LEAD")  # S4.1: its accounts go with it
    assert plan.groups == ("g1",)  # S4.2: LEAD leads g1, so g1 goes whole
    assert plan.memberships == (("g2", "FX"),)  # FX followed g2, which survives
    assert plan.orphaned_followers == (("g1", "F1"), ("g1", "F3"))
    t.apply_deletion(plan)
    assert set(t.connections) == {"c2", "c3"}
    assert set(t.accounts) == {"F1", "L2", "F3", "FREE"}
    assert set(t.groups) == {"g2"}
    assert t.groups["g2"].members == []
    assert t.group_of("F1") is None  # orphaned followers are free again
    _assert_whole(t)


def test_s4_2_deleting_a_followers_connection_removes_only_its_memberships() -> None:
    t = build()
    plan = t.plan_delete_connection("c3")
    assert plan.accounts == ("F3", "FREE")
    assert plan.groups == ()
    assert plan.memberships == (("g1", "F3"),)
    assert plan.orphaned_followers == ()
    t.apply_deletion(plan)
    assert set(t.groups) == {"g1", "g2"}
    assert [m.account for m in t.groups["g1"].members] == ["F1"]
    assert t.groups["g1"].leader == "LEAD"
    _assert_whole(t)


def test_s4_deleting_a_connection_that_leads_and_follows() -> None:
    t = build()
    plan = t.plan_delete_connection("c2")  # F1 follows g1, L2 leads g2
    assert plan.accounts == ("F1", "L2")
    assert plan.groups == ("g2",)
    assert plan.memberships == (("g1", "F1"),)
    assert plan.orphaned_followers == (("g2", "FX"),)
    t.apply_deletion(plan)
    assert set(t.groups) == {"g1"}
    assert [m.account for m in t.groups["g1"].members] == ["F3"]
    _assert_whole(t)


def test_s4_deleting_an_unknown_connection_is_refused() -> None:
    with pytest.raises(UnknownId, match="unknown connection 'c9'"):
        build().plan_delete_connection("c9")


def test_s4_2_deleting_a_leader_account_removes_its_group_and_orphans_its_followers() -> None:
    plan = build().plan_delete_account("LEAD")
    assert plan.connection == "c1"
    assert plan.groups == ("g1",)
    assert plan.memberships == ()
    assert plan.orphaned_followers == (("g1", "F1"), ("g1", "F3"))


def test_s4_2_deleting_a_follower_account_removes_only_its_membership() -> None:
    plan = build().plan_delete_account("FX")
    assert (plan.groups, plan.memberships, plan.orphaned_followers) == ((), (("g2", "FX"),), ())
    with pytest.raises(UnknownId, match="unknown account 'ghost'"):
        build().plan_delete_account("ghost")


def test_a_snapshot_is_not_changed_by_later_changes() -> None:
    t = build()
    t.accounts["F1"].limits["daily_loss_limit"] = Decimal(1)
    copy = t.snapshot()
    t.groups["g1"].members.append(Membership("FREE", Decimal(1)))
    t.accounts["F1"].limits["daily_loss_limit"] = Decimal(2)
    t.connections["c1"].state = "disconnected"
    t.apply_deletion(t.plan_delete_connection("c3"))
    assert [m.account for m in copy.groups["g1"].members] == ["F1", "F3"]
    assert copy.accounts["F1"].limits == {"daily_loss_limit": Decimal(1)}
    assert copy.connections["c1"].state == "connected"
    assert set(copy.connections) == {"c1", "c2", "c3"}
    _assert_whole(copy)


def test_s9_7_effective_keys_are_the_profiles_overridden_key_by_key_by_the_accounts_own() -> None:
    t = build()
    t.profiles["50K"] = {
        "max_loss": Decimal(2000),
        "max_contracts": Decimal(5),
        "commissions": {"ES": Decimal("2.1")},
    }
    t.accounts["F1"].profile = "50K"
    t.accounts["F1"].limits = {
        "max_contracts": Decimal(0),  # 0: off for this account, whatever the profile says
        "commissions": {"MES": Decimal("0.6")},  # a table is one key: replaced whole
        "flatten_at": "15:10",
    }
    assert t.effective("F1") == {
        "max_loss": Decimal(2000),
        "max_contracts": Decimal(0),
        "commissions": {"MES": Decimal("0.6")},
        "flatten_at": "15:10",
    }
    t.accounts["F3"].limits = {"max_loss": Decimal(1)}
    assert t.effective("F3") == {"max_loss": Decimal(1)}  # no profile: its own keys
    assert t.effective("FREE") == {}
    assert t.users_of("50K") == ["F1"]
    with pytest.raises(UnknownId, match="unknown account 'ghost'"):
        t.effective("ghost")
    t.profiles["50K"]["max_loss"] = Decimal(2500)
    assert t.effective("F1")["max_loss"] == Decimal(2500)  # the profile's keys as they are now


def test_s9_a_new_account_must_name_a_known_profile() -> None:
    t = build()
    with pytest.raises(CommandRefused, match="account 'NEW': unknown profile '50K'"):
        t.check_new_account(AccountConfig("NEW", "c1", profile="50K"))
    t.profiles["50K"] = {}
    t.check_new_account(AccountConfig("NEW", "c1", profile="50K"))


def test_s9_a_snapshot_copies_profiles_and_blackouts() -> None:
    t = build()
    t.profiles["50K"] = {"max_loss": Decimal(2000)}
    t.blackouts = [CPI]
    copy = t.snapshot()
    t.profiles["50K"]["max_loss"] = Decimal(1)
    t.profiles["other"] = {}
    t.blackouts.append(NFP)
    assert copy.profiles == {"50K": {"max_loss": Decimal(2000)}}
    assert copy.blackouts == [CPI]
    assert copy.blackout(CPI.key()) == CPI
    with pytest.raises(UnknownId, match="unknown blackout"):
        copy.blackout(NFP.key())


def _assert_whole(t: Topology) -> None:
    """S4.3: no group without its leader, no membership pointing at a missing account."""
    for group in t.groups.values():
        assert group.leader in t.accounts
        for member in group.members:
            assert member.account in t.accounts
    for account in t.accounts.values():
        assert account.connection in t.connections


# --- the cascade in the store (S4.3) -------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "engine.sqlite")
    yield s
    s.close()


def _save(store: Store, t: Topology) -> None:
    def write(conn: sqlite3.Connection) -> None:
        for c in t.connections.values():
            setup_rows.insert_connection(conn, c)
        for a in t.accounts.values():
            setup_rows.insert_account(conn, a)
        for g in t.groups.values():
            setup_rows.insert_group(conn, g)

    store.write(write, wait=True)


def _snapshot(t: Topology) -> tuple[object, object, object]:
    return (
        {k: vars(v) for k, v in t.connections.items()},
        {k: vars(v) for k, v in t.accounts.items()},
        {k: (g.leader, list(g.members)) for k, g in t.groups.items()},
    )


def _delete(conn: sqlite3.Connection, plan: DeletionPlan) -> None:
    """The rows ``setup_changes.delete_connection`` deletes, in its one transaction."""
    setup_rows.delete_setup(
        conn,
        groups=plan.groups,
        memberships=plan.memberships,
        accounts=plan.accounts,
        connection=plan.connection,
    )


@pytest.mark.parametrize("connection", ["c1", "c2", "c3"])
def test_s4_3_delete_cascade_leaves_the_store_whole_and_equal_to_memory(
    store: Store, connection: str
) -> None:
    t = build()
    t.accounts["LEAD"].limits = {"daily_loss_limit": Decimal(1)}
    _save(store, t)
    plan = t.plan_delete_connection(connection)
    store.write(lambda conn: _delete(conn, plan), wait=True)
    t.apply_deletion(plan)
    loaded = topo.load(store)
    assert _snapshot(loaded) == _snapshot(t)
    _assert_whole(loaded)
    dangling = store.query(
        "SELECT m.account FROM memberships m LEFT JOIN accounts a ON a.id = m.account"
        " WHERE a.id IS NULL"
    )
    assert dangling == []


def test_s4_3_a_failing_delete_leaves_everything(store: Store) -> None:
    t = build()
    _save(store, t)
    plan = t.plan_delete_connection("c1")

    def crash_midway(conn: sqlite3.Connection) -> None:
        _delete(conn, plan)
        raise RuntimeError("crash in the middle of the delete")

    with pytest.raises(RuntimeError):
        store.write(crash_midway, wait=True)
    assert _snapshot(topo.load(store)) == _snapshot(build())
