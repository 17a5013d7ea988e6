"""The store rows of the setup: what is written is read back, in the order it was written;
every S5/S9 risk key, the named profiles (S9.7) and the blackouts (S9.5) included."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.copying import CopyMode, Membership
from engine.domain.risk_profile import RiskValue
from engine.domain.sessions import Blackout
from engine.domain.setup import AccountConfig, ConnectionConfig, GroupConfig
from engine.storage import setup_rows
from engine.storage.setup_rows import SetupRows, UnreadableRow
from engine.storage.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "engine.sqlite")
    yield s
    s.close()


def build() -> SetupRows:
    """c1: LEAD, FX · c2: F1, F3, FREE · g1: LEAD → F1, F3."""
    rows = SetupRows()
    rows.connections["c1"] = ConnectionConfig("c1")
    rows.connections["c2"] = ConnectionConfig("c2", "paper", "reauth_required", True, True, 4)
    for account, connection in [
        ("LEAD", "c1"),
        ("FX", "c1"),
        ("F1", "c2"),
        ("F3", "c2"),
        ("FREE", "c2"),
    ]:
        rows.accounts[account] = AccountConfig(account, connection)
    rows.accounts["F1"].balance = Decimal("12345.67")
    rows.accounts["F1"].limits = {
        "daily_loss_limit": Decimal(500),
        "trailing_drawdown": Decimal("250.5"),
    }
    rows.groups["g1"] = GroupConfig(
        "g1",
        "LEAD",
        [
            Membership("F1", Decimal("1.5"), 3, (("ES", "MES"), ("NQ", "MNQ")), "locked manually"),
            Membership("F3", Decimal("0.25"), copy=CopyMode.ORDERS),
        ],
    )
    return rows


def _save(store: Store, rows: SetupRows) -> None:
    def write(conn: sqlite3.Connection) -> None:
        for c in rows.connections.values():
            setup_rows.insert_connection(conn, c)
        for a in rows.accounts.values():
            setup_rows.insert_account(conn, a)
        for g in rows.groups.values():
            setup_rows.insert_group(conn, g)

    store.write(write, wait=True)


def test_round_trip(store: Store) -> None:
    rows = build()
    _save(store, rows)
    assert setup_rows.load(store) == rows
    loaded = setup_rows.load(store).groups["g1"].members
    assert [m.account for m in loaded] == ["F1", "F3"]  # order kept


def test_membership_order_is_kept_after_adding(store: Store) -> None:
    _save(store, build())
    store.write(
        lambda conn: setup_rows.insert_membership(conn, "g1", Membership("FREE", Decimal(3))),
        wait=True,
    )
    members = [m.account for m in setup_rows.load(store).groups["g1"].members]
    assert members == ["F1", "F3", "FREE"]


def test_write_limits_overwrites_a_limit(store: Store) -> None:
    _save(store, build())
    for value in (Decimal(100), Decimal(0)):
        store.write(
            lambda conn, v=value: setup_rows.write_limits(conn, "F3", {"daily_loss_limit": v}),
            wait=True,
        )
    assert setup_rows.load(store).accounts["F3"].limits == {"daily_loss_limit": Decimal(0)}


def test_update_terms_keeps_the_disable_reason(store: Store) -> None:
    _save(store, build())
    terms = Membership("F1", Decimal(2), None, (("YM", "MYM"),))
    store.write(lambda conn: setup_rows.update_terms(conn, "g1", terms), wait=True)
    f1 = setup_rows.load(store).groups["g1"].members[0]
    assert f1 == Membership("F1", Decimal(2), None, (("YM", "MYM"),), "locked manually")


def test_update_terms_changes_the_copy_mode(store: Store) -> None:
    """S8.1: the copy mode is a term like the ratio, changed both ways."""
    _save(store, build())
    for mode in (CopyMode.FILLS, CopyMode.ORDERS):
        terms = Membership("F3", Decimal("0.25"), copy=mode)
        store.write(lambda conn, t=terms: setup_rows.update_terms(conn, "g1", t), wait=True)
        assert setup_rows.load(store).groups["g1"].members[1].copy is mode


def test_delete_setup_removes_groups_memberships_accounts_and_the_connection(
    store: Store,
) -> None:
    _save(store, build())
    store.write(
        lambda conn: setup_rows.delete_setup(conn, memberships=(("g1", "F3"),), accounts=("FREE",)),
        wait=True,
    )
    loaded = setup_rows.load(store)
    assert [m.account for m in loaded.groups["g1"].members] == ["F1"]
    assert "FREE" not in loaded.accounts
    store.write(
        lambda conn: setup_rows.delete_setup(
            conn, groups=("g1",), accounts=("LEAD", "FX"), connection="c1"
        ),
        wait=True,
    )
    loaded = setup_rows.load(store)
    assert (list(loaded.connections), list(loaded.accounts), loaded.groups) == (
        ["c2"],
        ["F1", "F3"],
        {},
    )
    assert store.query("SELECT * FROM risk_limits WHERE account = 'F1'")  # F1 stays whole


@pytest.mark.parametrize(
    ("symbol_map", "text"),
    [((), ""), ((("ES", "MES"), ("NQ", "MNQ")), '{"ES": "MES", "NQ": "MNQ"}')],
)
def test_symbol_map_column(symbol_map: tuple[tuple[str, str], ...], text: str) -> None:
    assert setup_rows.symbol_map_json(symbol_map) == text
    assert setup_rows.symbol_map_of(text) == symbol_map
    assert setup_rows.symbol_map_json(reversed(symbol_map)) == text  # sorted by source symbol


# --- S9: every risk key, the named profiles and the blackouts ----------------------------------

CT = timezone(timedelta(hours=-6))
CPI = Blackout(
    datetime(2026, 11, 25, 7, 29, tzinfo=CT), datetime(2026, 11, 25, 7, 45, tzinfo=CT), "CPI"
)
FOMC = Blackout(
    datetime(2026, 11, 24, 19, 0, tzinfo=UTC), datetime(2026, 11, 24, 20, 0, tzinfo=UTC), "FOMC"
)
EVERY_KEY: dict[str, RiskValue] = {
    "daily_loss_limit": Decimal(1000),
    "weekly_profit_target": Decimal("6000.5"),
    "commission": Decimal("2.10"),
    "commissions": {"ES": Decimal("2.10"), "MES": Decimal("0.60")},
    "max_contracts": Decimal("2.5"),
    "contract_weights": {"MNQ": Decimal("0.2")},
    "max_loss": Decimal(2000),
    "max_loss_mode": "eod_trailing",
    "max_loss_stop": Decimal(0),
    "start_balance": Decimal(50000),
    "flatten_at": "15:10",
    "blackout": "flatten",
    "consistency_pct": Decimal(30),
}  # fmt: skip


def _save_s9(store: Store, rows: SetupRows) -> None:
    def write(conn: sqlite3.Connection) -> None:
        for name, keys in rows.profiles.items():
            setup_rows.write_profile(conn, name, keys)
        for b in rows.blackouts:
            setup_rows.insert_blackout(conn, b)

    store.write(write, wait=True)
    _save(store, rows)


def test_s9_every_risk_key_profiles_and_blackouts_round_trip(store: Store) -> None:
    """S9.7: an account's own keys of every shape, the profile it uses and the profiles' keys;
    S9.5: the blackouts, sorted, each with its offset as written."""
    rows = build()
    rows.profiles["50K"] = dict(EVERY_KEY)
    rows.profiles["empty"] = {}
    rows.accounts["F1"].limits = {**EVERY_KEY, "max_loss_stop": "off", "flatten_at": "off"}
    rows.accounts["F1"].profile = "50K"
    rows.blackouts.extend([FOMC, CPI])  # sorted: FOMC starts first
    _save_s9(store, rows)
    loaded = setup_rows.load(store)
    assert loaded == rows
    assert loaded.blackouts[1].start.utcoffset() == timedelta(hours=-6)  # CPI: its own offset
    stored = {r["name"]: r["value"] for r in store.query("SELECT * FROM profile_keys")}
    assert stored["commissions"] == '{"ES": "2.10", "MES": "0.60"}'
    assert stored["max_contracts"] == "2.5"


def test_s9_plain_decimals_from_before_still_load(store: Store) -> None:
    """Limits written as plain decimals (schema 6) read as the numbers they are."""
    _save(store, build())
    store.write(
        lambda conn: conn.execute(
            "UPDATE risk_limits SET value = '250.50' WHERE name = 'trailing_drawdown'"
        ),
        wait=True,
    )
    assert setup_rows.load(store).accounts["F1"].limits["trailing_drawdown"] == Decimal("250.50")


def test_s9_a_stored_value_that_no_longer_parses_names_the_account_and_the_key(
    store: Store,
) -> None:
    _save(store, build())
    store.write(
        lambda conn: conn.execute("UPDATE risk_limits SET value = 'x' WHERE account = 'F1'"),
        wait=True,
    )
    with pytest.raises(UnreadableRow, match="account 'F1': daily_loss_limit: not a number"):
        setup_rows.load(store)


def test_s9_keys_profiles_and_blackouts_change_and_go(store: Store) -> None:
    rows = build()
    rows.profiles["50K"] = {"max_loss": Decimal(2000), "commission": Decimal(1)}
    rows.blackouts.append(CPI)
    _save_s9(store, rows)

    def change(conn: sqlite3.Connection) -> None:
        setup_rows.delete_limits(conn, "F1", ["daily_loss_limit", "max_loss"])  # one not set
        setup_rows.write_profile(conn, "50K", {"max_loss": Decimal(2500)})
        setup_rows.delete_profile_keys(conn, "50K", ["commission"])
        setup_rows.set_account_profile(conn, "F3", "50K")
        setup_rows.insert_blackout(conn, FOMC)
        setup_rows.delete_blackout(conn, CPI.key())

    store.write(change, wait=True)
    loaded = setup_rows.load(store)
    assert loaded.accounts["F1"].limits == {"trailing_drawdown": Decimal("250.5")}
    assert loaded.profiles == {"50K": {"max_loss": Decimal(2500)}}
    assert (loaded.accounts["F3"].profile, loaded.accounts["F1"].profile) == ("50K", None)
    assert loaded.blackouts == [FOMC]
    with pytest.raises(sqlite3.IntegrityError):  # the store refuses a profile still in use
        store.write(lambda conn: setup_rows.delete_profile(conn, "50K"), wait=True)
    store.write(lambda conn: setup_rows.set_account_profile(conn, "F3", None), wait=True)
    store.write(lambda conn: setup_rows.delete_profile(conn, "50K"), wait=True)
    assert setup_rows.load(store).profiles == {}
    assert store.query("SELECT * FROM profile_keys") == []


def test_s9_deleting_an_account_keeps_the_profile_it_used(store: Store) -> None:
    rows = build()
    rows.profiles["50K"] = {"max_loss": Decimal(2000)}
    rows.accounts["FREE"].profile = "50K"
    rows.accounts["FREE"].limits = {"commission": Decimal(1)}
    _save_s9(store, rows)
    store.write(lambda conn: setup_rows.delete_setup(conn, accounts=("FREE",)), wait=True)
    loaded = setup_rows.load(store)
    assert "FREE" not in loaded.accounts
    assert loaded.profiles == {"50K": {"max_loss": Decimal(2000)}}
    assert store.query("SELECT * FROM risk_limits WHERE account = 'FREE'") == []
