"""The configuration's setup against the store's: one difference per key, naming the file's and
the store's value, and the steps that make the store the file's (S4 for what a deletion takes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.app.config import parse_config
from engine.app.seeding import seed_from_config
from engine.app.setup_diff import (
    AddBlackout,
    AddConnection,
    AddFollower,
    AddGroup,
    DeleteAccount,
    DeleteConnection,
    DeleteGroup,
    DeleteProfile,
    Difference,
    Follower,
    RemoveBlackout,
    RemoveFollower,
    SetAccountProfile,
    SetFollower,
    SetLimits,
    SetOnDrift,
    SetProfile,
    Setup,
    compare,
    setup_of_config,
    setup_of_topology,
)
from engine.core.engine import Engine, EngineSettings
from engine.core.topology import Topology
from engine.domain.copying import CopyMode, Membership
from engine.domain.sessions import Blackout
from engine.domain.setup import AccountConfig, ConnectionConfig, GroupConfig
from engine.domain.watching import OnDrift
from engine.storage.setup_rows import read_setup
from engine.storage.store import Store
from tests.conftest import START

D = Decimal


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


def test_s10_2_a_groups_on_drift_is_one_difference_and_sets_it() -> None:
    group = {"id": "main", "leader": "LEAD", "followers": [{"account": "F1"}]}
    store = store_setup(
        ["prop"], STORE_ACCOUNTS, {"main": ("LEAD", [Membership("F1", Decimal(1))])}
    )
    accounts = [{"id": "LEAD", "connection": "prop"}, LEAD_F1[1] | {"limits": {}}]
    same = compare(file_setup(PROP, accounts, [group]), store)
    assert [d.key for d in same.differences] == ["accounts[F1].limits.daily_loss_limit"]
    plan = compare(file_setup(PROP, accounts, [group | {"on_drift": "reduce"}]), store)
    assert Difference("groups[main].on_drift", "reduce", "alert") in plan.differences
    assert SetOnDrift("main", OnDrift.REDUCE) in plan.steps
    assert SetOnDrift("main", OnDrift.REDUCE).describe() == "group main: on_drift reduce"


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
    assert plan.steps == (SetLimits("F1", {}, ("daily_loss_limit",)),)  # removed: off


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
            "leader LEAD, followers F1 (ratio 1, max_qty none, symbol_map none, copy fills),"
            " on_drift alert",
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


# --- S9: every risk key, named profiles (S9.7) and blackouts (S9.5) ----------------------------

CT = timezone(timedelta(hours=-6))
CPI = Blackout(
    datetime(2026, 11, 25, 7, 29, tzinfo=CT), datetime(2026, 11, 25, 7, 45, tzinfo=CT), "CPI"
)
FOMC = Blackout(
    datetime(2026, 11, 24, 19, tzinfo=UTC), datetime(2026, 11, 24, 20, tzinfo=UTC), "FOMC"
)
S9_FILE: dict[str, Any] = {
    "connections": [{"id": "prop"}],
    "profiles": {
        "50K": {"max_loss": 2000, "max_loss_mode": "eod_trailing", "commissions": {"ES": "2.10"}},
    },
    "accounts": [
        {"id": "F1", "connection": "prop", "profile": "50K",
         "limits": {"max_contracts": "2.5", "flatten_at": "15:10", "max_loss_stop": 0}},
        {"id": "F2", "connection": "prop", "limits": {"daily_loss_limit": 0, "blackout": "off"}},
    ],
    "blackout": [{"start": CPI.start, "end": CPI.end, "label": "CPI"}],
}  # fmt: skip


def s9_file(**changes: Any) -> Setup:
    setup = setup_of_config(parse_config({**S9_FILE, **changes}, "engine.toml"))
    assert setup is not None
    return setup


def s9_store(**changes: Any) -> Setup:
    """The store as seeding S9_FILE left it (changed as given)."""
    config = parse_config({**S9_FILE, **changes}, "engine.toml")
    topology = Topology()
    topology.connections = {"prop": ConnectionConfig("prop")}
    topology.accounts = {
        a.id: AccountConfig(a.id, a.connection, a.balance, dict(a.limits), a.profile)
        for a in config.accounts
    }
    topology.profiles = config.profile_keys
    topology.blackouts = config.blackouts
    return setup_of_topology(topology)


def test_s9_the_same_keys_profiles_and_blackouts_have_no_difference() -> None:
    """Every shape of value compares equal as the file and the store hold it; a key at what
    leaving it out does (0, "off") is no key, and a blackout written in another offset is the
    same blackout."""
    same_instant = [{"start": CPI.start.astimezone(UTC), "end": CPI.end, "label": "CPI"}]
    plan = compare(s9_file(), s9_store(blackout=same_instant))
    assert plan.differences == ()
    assert plan.steps == ()


def test_s9_7_a_changed_profile_is_one_difference_per_key_and_one_change() -> None:
    profiles = {"50K": {"max_loss": 2500, "commissions": {"ES": "2.10"}, "consistency_pct": 30}}
    plan = compare(s9_file(profiles=profiles), s9_store())
    assert [(d.key, d.file, d.store) for d in plan.differences] == [
        ("profiles[50K].max_loss", "2500", "2000"),
        ("profiles[50K].max_loss_mode", "off", "eod_trailing"),
        ("profiles[50K].consistency_pct", "30", "off"),
    ]
    (step,) = plan.steps
    assert step == SetProfile("50K", {"max_loss": D(2500), "consistency_pct": D(30)},
                              ("max_loss_mode",))  # fmt: skip
    assert step.describe() == (
        "profile 50K: max_loss=2500, consistency_pct=30, max_loss_mode removed"
        " (at once, for its accounts)"
    )
    assert plan.deletions == ()


def test_s9_7_an_own_key_is_compared_with_what_applies_instead_when_it_is_absent() -> None:
    """S9.7: an account without its own key takes its profile's; an own 0 turns the profile's
    off, so it is a value where a profile sets the key (and nothing where none does)."""
    accounts = [
        {"id": "F1", "connection": "prop", "profile": "50K",
         "limits": {"max_loss": 0, "flatten_at": "15:10", "max_loss_stop": 0}},
        {"id": "F2", "connection": "prop", "limits": {"max_contracts": 0}},
    ]  # fmt: skip
    plan = compare(s9_file(accounts=accounts), s9_store())
    assert [(d.key, d.file, d.store) for d in plan.differences] == [
        ("accounts[F1].limits.max_contracts", "off", "2.5"),
        ("accounts[F1].limits.max_loss", "0", "2000 (profile 50K)"),
    ]
    assert plan.steps == (SetLimits("F1", {"max_loss": D(0)}, ("max_contracts",)),)
    assert plan.steps[0].describe() == ("limits of F1: max_loss=0, max_contracts removed (at once)")


def test_s9_7_an_account_moved_to_a_new_profile_and_the_old_one_deleted() -> None:
    """The new profile is made first, the account moved, and the old profile deleted last,
    when no account uses it."""
    file = s9_file(
        profiles={"funded": {"max_loss": 1500, "flatten_at": "15:00"}},
        accounts=[
            {"id": "F1", "connection": "prop", "profile": "funded",
             "limits": {"max_contracts": "2.5", "flatten_at": "15:10", "max_loss_stop": 0}},
            {"id": "F2", "connection": "prop"},
        ],
    )  # fmt: skip
    plan = compare(file, s9_store())
    assert [(d.key, d.file, d.store) for d in plan.differences] == [
        ("accounts[F1].profile", "funded", "50K"),
        ("profiles[50K]", "(absent)",
         "max_loss=2000, max_loss_mode=eod_trailing, commissions={ES 2.1}"),
        ("profiles[funded]", "max_loss=1500, flatten_at=15:00", "(absent)"),
    ]  # fmt: skip
    assert plan.steps == (
        SetProfile("funded", {"max_loss": D(1500), "flatten_at": "15:00"}, new=True),
        SetAccountProfile("F1", "funded"),
        DeleteProfile("50K"),
    )
    assert plan.deletions == (DeleteProfile("50K"),)
    assert [s.describe() for s in plan.steps] == [
        "create profile funded: max_loss=1500, flatten_at=15:00",
        "profile of F1: funded (at once)",
        "delete profile 50K",
    ]


def test_s9_7_a_new_connections_account_uses_a_profile_made_before_it() -> None:
    file = s9_file(
        connections=[{"id": "prop"}, {"id": "prop2"}],
        profiles={**S9_FILE["profiles"], "funded": {"max_loss": 1500}},
        accounts=[*S9_FILE["accounts"], {"id": "F3", "connection": "prop2", "profile": "funded",
                                         "limits": {"commission": "1.5"}}],
    )  # fmt: skip
    plan = compare(file, s9_store())
    assert [type(s) for s in plan.steps] == [SetProfile, AddConnection]
    add = plan.steps[1]
    assert isinstance(add, AddConnection)
    (f3,) = add.accounts
    assert (f3.profile, dict(f3.limits)) == ("funded", {"commission": D("1.5")})
    assert ("accounts[F3]", "on prop2, limits commission=1.5, profile funded", "(absent)") in [
        (d.key, d.file, d.store) for d in plan.differences
    ]


def test_s9_5_blackouts_are_added_and_removed() -> None:
    fomc = [{"start": FOMC.start, "end": FOMC.end, "label": "FOMC"}]
    plan = compare(s9_file(blackout=fomc), s9_store())
    assert [(d.key, d.file, d.store) for d in plan.differences] == [
        ("blackout[CPI 2026-11-25T07:29:00-06:00]", "(absent)",
         "CPI: 2026-11-25T07:29:00-06:00 to 2026-11-25T07:45:00-06:00"),
        ("blackout[FOMC 2026-11-24T19:00:00+00:00]",
         "FOMC: 2026-11-24T19:00:00+00:00 to 2026-11-24T20:00:00+00:00", "(absent)"),
    ]  # fmt: skip
    assert plan.steps == (RemoveBlackout(CPI), AddBlackout(FOMC))
    assert plan.deletions == (RemoveBlackout(CPI),)
    assert plan.steps[1].describe() == (
        "add blackout FOMC: 2026-11-24T19:00:00+00:00 to 2026-11-24T20:00:00+00:00"
    )


def test_s9_a_seeded_store_has_the_files_setup(tmp_path: Path) -> None:
    """The file seeds the store (profiles, account profiles, blackouts, every key); the store
    read back from its rows is the file's, key by key."""
    config = parse_config(S9_FILE, "engine.toml")
    store = Store(tmp_path / "engine.sqlite")
    clock = VirtualClock(START)
    paper = PaperBroker(clock, ContractTable())
    engine = Engine(store=store, clock=clock, brokers={"paper": paper},
                    contracts=ContractTable(), settings=EngineSettings())  # fmt: skip
    try:
        seed_from_config(engine, config)
        rows = read_setup(tmp_path / "engine.sqlite")
    finally:
        engine.stop()
        store.close()
    assert rows is not None
    assert compare(s9_file(), setup_of_topology(rows)).differences == ()
