"""The configuration's setup against the store's: one difference per key, naming the file's and
the store's value, and the steps that make the store the file's (S4 for what a deletion takes)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.app.config import parse_config
from engine.app.setup_diff import (
    AddConnection,
    AddFollower,
    AddGroup,
    DeleteAccount,
    DeleteConnection,
    DeleteGroup,
    Difference,
    Follower,
    RemoveFollower,
    SetFollower,
    SetLimits,
    Setup,
    compare,
    setup_of_config,
    setup_of_topology,
)
from engine.core.topology import Topology
from engine.domain.copying import CopyMode, Membership
from engine.domain.setup import AccountConfig, ConnectionConfig, GroupConfig


def file_setup(
    connections: list[dict[str, Any]],
    accounts: list[dict[str, Any]],
    groups: list[dict[str, Any]] | None = None,
) -> Setup:
    raw = {"connections": connections, "accounts": accounts, "groups": groups or []}
    setup = setup_of_config(parse_config(raw, "engine.toml"))
    assert setup is not None
    return setup


def store_setup(
    connections: list[str],
    accounts: dict[str, tuple[str, dict[str, str]]],
    groups: dict[str, tuple[str, list[Membership]]] | None = None,
) -> Setup:
    topology = Topology()
    topology.connections = {c: ConnectionConfig(c) for c in connections}
    topology.accounts = {
        a: AccountConfig(a, c, limits={k: Decimal(v) for k, v in limits.items()})
        for a, (c, limits) in accounts.items()
    }
    topology.groups = {
        g: GroupConfig(g, leader, members) for g, (leader, members) in (groups or {}).items()
    }
    return setup_of_topology(topology)


PROP: list[dict[str, Any]] = [{"id": "prop"}]
LEAD_F1: list[dict[str, Any]] = [
    {"id": "LEAD", "connection": "prop"},
    {"id": "F1", "connection": "prop", "limits": {"daily_loss_limit": "500"}},
]
STORE_ACCOUNTS = {"LEAD": ("prop", {}), "F1": ("prop", {"daily_loss_limit": "1000"})}


def test_the_same_setup_has_no_difference() -> None:
    file = file_setup(
        PROP,
        LEAD_F1,
        [{"id": "main", "leader": "LEAD", "followers": [{"account": "F1", "max_qty": 4}]}],
    )
    store = store_setup(
        ["prop"],
        {"LEAD": ("prop", {}), "F1": ("prop", {"daily_loss_limit": "500.00"})},
        {"main": ("LEAD", [Membership("F1", Decimal("1.0"), 4)])},
    )
    plan = compare(file, store)
    assert plan.differences == ()
    assert plan.steps == ()


def test_a_lowered_limit_is_one_difference_and_sets_it() -> None:
    plan = compare(file_setup(PROP, LEAD_F1), store_setup(["prop"], STORE_ACCOUNTS))
    assert plan.differences == (Difference("accounts[F1].limits.daily_loss_limit", "500", "1000"),)
    assert plan.steps == (SetLimits("F1", {"daily_loss_limit": Decimal(500)}),)
    assert plan.deletions == ()


def test_a_limit_left_out_of_the_file_is_off_and_zero_is_off() -> None:
    file = file_setup(
        PROP,
        [
            {"id": "LEAD", "connection": "prop", "limits": {"trailing_drawdown": "0"}},
            {"id": "F1", "connection": "prop"},
        ],
    )
    plan = compare(file, store_setup(["prop"], STORE_ACCOUNTS))
    assert plan.differences == (Difference("accounts[F1].limits.daily_loss_limit", "off", "1000"),)
    assert plan.steps == (SetLimits("F1", {"daily_loss_limit": Decimal(0)}),)


def test_values_are_shown_as_entered_not_in_exponent_form() -> None:
    file = file_setup(
        PROP,
        [{"id": "LEAD", "connection": "prop"}, {"id": "F1", "connection": "prop", "limits": {
            "daily_loss_limit": "1e3"}}],
    )  # fmt: skip
    store = store_setup(["prop"], {"LEAD": ("prop", {}), "F1": ("prop", {})})
    assert compare(file, store).differences[0].file == "1000"


def test_a_new_connection_is_added_with_its_accounts_and_their_limits() -> None:
    file = file_setup(
        [*PROP, {"id": "prop2"}],
        [*LEAD_F1, {"id": "F2", "connection": "prop2", "limits": {"trailing_drawdown": "2500"}}],
    )
    store = store_setup(
        ["prop"], {"LEAD": ("prop", {}), "F1": ("prop", {"daily_loss_limit": "500"})}
    )
    plan = compare(file, store)
    assert [(d.key, d.file, d.store) for d in plan.differences] == [
        ("connections[prop2]", "broker paper, accounts F2", "(absent)"),
        ("accounts[F2]", "on prop2, limits trailing_drawdown=2500", "(absent)"),
    ]
    assert all(d.why_not == "" for d in plan.differences)
    (step,) = plan.steps
    assert isinstance(step, AddConnection)
    assert step.connection.id == "prop2"
    assert [(a.id, dict(a.limits)) for a in step.accounts] == [
        ("F2", {"trailing_drawdown": Decimal(2500)})
    ]


def test_an_account_added_to_a_connection_the_store_has_says_why_it_is_not_applied() -> None:
    file = file_setup(PROP, [*LEAD_F1, {"id": "F2", "connection": "prop"}])
    store = store_setup(
        ["prop"], {"LEAD": ("prop", {}), "F1": ("prop", {"daily_loss_limit": "500"})}
    )
    plan = compare(file, store)
    (difference,) = plan.differences
    assert difference.key == "accounts[F2]"
    assert "only with its connection" in difference.why_not
    assert plan.steps == ()


def test_what_the_file_no_longer_has_is_deleted_and_asks() -> None:
    """S4.1/S4.2: a connection's deletion takes its accounts, so they are not deleted again."""
    file = file_setup(PROP, LEAD_F1, [{"id": "main", "leader": "LEAD"}])
    store = store_setup(
        ["prop", "old"],
        {
            "LEAD": ("prop", {}),
            "F1": ("prop", {"daily_loss_limit": "500"}),
            "F9": ("prop", {}),
            "O1": ("old", {}),
        },
        {
            "main": ("LEAD", [Membership("F1", Decimal(1))]),
            "other": ("O1", []),
        },
    )
    plan = compare(file, store)
    assert {d.key: d.file for d in plan.differences} == {
        "connections[old]": "(absent)",
        "accounts[F9]": "(absent)",
        "accounts[O1]": "(absent)",
        "groups[other]": "(absent)",
        "groups[main].followers[F1]": "(absent)",
    }
    assert plan.steps == (
        DeleteGroup("other"),
        RemoveFollower("main", "F1"),
        DeleteAccount("F9"),
        DeleteConnection("old"),
    )
    assert plan.deletions == plan.steps


def test_a_follower_moving_groups_leaves_one_before_it_joins_the_other() -> None:
    file = file_setup(
        PROP,
        [*LEAD_F1, {"id": "LEAD2", "connection": "prop"}],
        [
            {"id": "main", "leader": "LEAD"},
            {"id": "second", "leader": "LEAD2", "followers": [{"account": "F1", "ratio": "2"}]},
        ],
    )
    store = store_setup(
        ["prop"],
        {"LEAD": ("prop", {}), "F1": ("prop", {"daily_loss_limit": "500"}), "LEAD2": ("prop", {})},
        {"main": ("LEAD", [Membership("F1", Decimal(1))]), "second": ("LEAD2", [])},
    )
    plan = compare(file, store)
    assert plan.steps == (
        RemoveFollower("main", "F1"),
        AddFollower("second", Follower("F1", Decimal(2))),
    )


def test_changed_terms_are_one_difference_each_and_one_change() -> None:
    file = file_setup(
        PROP,
        LEAD_F1,
        [{"id": "main", "leader": "LEAD", "followers": [
            {"account": "F1", "ratio": "2", "symbol_map": {"ES": "MES"}}]}],
    )  # fmt: skip
    store = store_setup(
        ["prop"],
        {"LEAD": ("prop", {}), "F1": ("prop", {"daily_loss_limit": "500"})},
        {"main": ("LEAD", [Membership("F1", Decimal(1), 4)])},
    )
    plan = compare(file, store)
    assert [(d.key, d.file, d.store) for d in plan.differences] == [
        ("groups[main].followers[F1].ratio", "2", "1"),
        ("groups[main].followers[F1].max_qty", "none", "4"),
        ("groups[main].followers[F1].symbol_map", "ES=MES", "none"),
    ]
    assert plan.steps == (SetFollower("main", Follower("F1", Decimal(2), None, (("ES", "MES"),))),)


def test_a_changed_copy_mode_is_one_difference_and_one_change() -> None:
    """S8.1: the copy mode is a term like the ratio: compared, shown, and changed."""
    file = file_setup(
        PROP,
        LEAD_F1,
        [{"id": "main", "leader": "LEAD", "followers": [{"account": "F1", "copy": "orders"}]}],
    )
    store = store_setup(
        ["prop"],
        {"LEAD": ("prop", {}), "F1": ("prop", {"daily_loss_limit": "500"})},
        {"main": ("LEAD", [Membership("F1", Decimal(1))])},
    )
    plan = compare(file, store)
    assert [(d.key, d.file, d.store) for d in plan.differences] == [
        ("groups[main].followers[F1].copy", "orders", "fills")
    ]
    assert plan.steps == (SetFollower("main", Follower("F1", copy=CopyMode.ORDERS)),)
    assert plan.steps[0].describe().endswith("symbol_map none, copy orders")
    assert compare(store, store).differences == ()


def test_a_new_leader_makes_the_group_anew() -> None:
    file = file_setup(PROP, LEAD_F1, [{"id": "main", "leader": "F1"}])
    store = store_setup(
        ["prop"],
        {"LEAD": ("prop", {}), "F1": ("prop", {"daily_loss_limit": "500"})},
        {"main": ("LEAD", [])},
    )
    plan = compare(file, store)
    assert [(d.key, d.file, d.store) for d in plan.differences] == [
        ("groups[main].leader", "F1", "LEAD")
    ]
    assert [type(s) for s in plan.steps] == [DeleteGroup, AddGroup]
    assert plan.deletions == (DeleteGroup("main"),)


def test_a_new_group_is_created_with_its_followers() -> None:
    file = file_setup(
        PROP, LEAD_F1, [{"id": "main", "leader": "LEAD", "followers": [{"account": "F1"}]}]
    )
    store = store_setup(
        ["prop"], {"LEAD": ("prop", {}), "F1": ("prop", {"daily_loss_limit": "500"})}
    )
    plan = compare(file, store)
    assert [(d.key, d.file, d.store) for d in plan.differences] == [
        (
            "groups[main]",
            "leader LEAD, followers F1 (ratio 1, max_qty none, symbol_map none, copy fills)",
            "(absent)",
        )
    ]
    (step,) = plan.steps
    assert isinstance(step, AddGroup) and step.group.followers == (Follower("F1"),)


def test_a_key_named_like_a_secret_never_shows_its_values() -> None:
    shown = Difference.of("connections[prop].client_secret", "s3cr3t-new", "s3cr3t-old")
    assert (shown.file, shown.store) == ("[redacted]", "[redacted]")
    assert "s3cr3t" not in repr(shown)
    plain = Difference.of("connections[token-login].broker", "paper", "tradovate")
    assert (plain.file, plain.store) == ("paper", "tradovate")


def test_a_file_without_connections_describes_no_setup() -> None:
    assert setup_of_config(parse_config({}, "engine.toml")) is None
