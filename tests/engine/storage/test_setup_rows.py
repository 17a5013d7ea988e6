"""The store rows of the setup: what is written is read back, in the order it was written."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.copying import CopyMode, Membership
from engine.domain.setup import AccountConfig, ConnectionConfig, GroupConfig
from engine.storage import setup_rows
from engine.storage.setup_rows import SetupRows
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
        "daily_loss": Decimal(500),
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
            lambda conn, v=value: setup_rows.write_limits(conn, "F3", {"daily_loss": v}),
            wait=True,
        )
    assert setup_rows.load(store).accounts["F3"].limits == {"daily_loss": Decimal(0)}


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
