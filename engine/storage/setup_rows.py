"""The store rows behind the setup: connections, accounts, risk limits, groups and memberships.

The engine checks a change against the topology's rules first and writes it here, inside one
``Store.write`` transaction, so a crash leaves all of it or none (S4.3). ``load`` reads the whole
setup back, in the order it was written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from engine.domain.copying import CopyMode, Membership
from engine.domain.setup import AccountConfig, ConnectionConfig, GroupConfig
from engine.storage.durable import delete_account_state
from engine.storage.store import SCHEMA_VERSION, Store, StoreError, stored_schema


def symbol_map_json(symbol_map: Iterable[tuple[str, str]]) -> str:
    """A follower's symbol map as its ``memberships.symbol_map`` column holds it ("" if none)."""
    mapping = dict(symbol_map)
    return json.dumps(mapping, sort_keys=True) if mapping else ""


def symbol_map_of(text: str) -> tuple[tuple[str, str], ...]:
    """The symbol map a ``memberships.symbol_map`` column holds, sorted by source symbol."""
    return tuple(sorted(json.loads(text).items())) if text else ()


@dataclass(frozen=True)
class SetupRows:
    """The whole setup as the store holds it, each table in the order it was written."""

    connections: dict[str, ConnectionConfig] = field(default_factory=dict)
    accounts: dict[str, AccountConfig] = field(default_factory=dict)
    groups: dict[str, GroupConfig] = field(default_factory=dict)


def load(store: Store) -> SetupRows:
    return _rows(store.query)


def read_setup(path: Path) -> SetupRows | None:
    """The setup in the store file at ``path``, read without writing a byte to it and without an
    engine (``python -m engine setup diff`` with none running); ``None`` where no store was ever
    made. Raises :class:`StoreError` for a file that is not a store of this engine's schema."""
    version = stored_schema(path)
    if version is None:
        return None
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"{path}: the store is of schema {version}, this engine's is {SCHEMA_VERSION}:"
            " start the engine once on it (it upgrades the store), then try again"
        )
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            conn.row_factory = sqlite3.Row
            return _rows(lambda sql: list(conn.execute(sql).fetchall()))
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path}: cannot read the store: {error}") from None


def _rows(query: Callable[[str], list[sqlite3.Row]]) -> SetupRows:
    rows = SetupRows()
    for row in query("SELECT * FROM connections ORDER BY rowid"):
        rows.connections[row["id"]] = ConnectionConfig(
            row["id"],
            row["broker"],
            row["state"],
            bool(row["offline"]),
            bool(row["token_expired"]),
            row["reconnects"],
        )
    for row in query("SELECT * FROM accounts ORDER BY rowid"):
        rows.accounts[row["id"]] = AccountConfig(
            row["id"], row["connection"], Decimal(row["balance"])
        )
    for row in query("SELECT * FROM risk_limits ORDER BY account, name"):
        rows.accounts[row["account"]].limits[row["name"]] = Decimal(row["value"])
    for row in query("SELECT * FROM groups ORDER BY rowid"):
        rows.groups[row["id"]] = GroupConfig(row["id"], row["leader"])
    for row in query("SELECT * FROM memberships ORDER BY group_id, position"):
        rows.groups[row["group_id"]].members.append(
            Membership(
                account=row["account"],
                ratio=Decimal(row["ratio"]),
                max_qty=row["max_qty"],
                symbol_map=symbol_map_of(row["symbol_map"]),
                disable_reason=row["disable_reason"],
                copy=CopyMode(row["copy"]),
            )
        )
    return rows


# --- writes: each runs inside the caller's transaction --------------------------------------------


def insert_connection(conn: sqlite3.Connection, c: ConnectionConfig) -> None:
    conn.execute(
        "INSERT INTO connections (id, broker, state, offline, token_expired, reconnects)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (c.id, c.broker, c.state, int(c.offline), int(c.token_expired), c.reconnects),
    )


def insert_account(conn: sqlite3.Connection, a: AccountConfig) -> None:
    conn.execute(
        "INSERT INTO accounts (id, connection, balance) VALUES (?, ?, ?)",
        (a.id, a.connection, str(a.balance)),
    )
    write_limits(conn, a.id, a.limits)


def write_limits(conn: sqlite3.Connection, account: str, limits: Mapping[str, Decimal]) -> None:
    for name, value in limits.items():
        conn.execute(
            "INSERT INTO risk_limits (account, name, value) VALUES (?, ?, ?)"
            " ON CONFLICT(account, name) DO UPDATE SET value = excluded.value",
            (account, name, str(value)),
        )


def insert_group(conn: sqlite3.Connection, g: GroupConfig) -> None:
    conn.execute("INSERT INTO groups (id, leader) VALUES (?, ?)", (g.id, g.leader))
    for member in g.members:
        insert_membership(conn, g.id, member)


def insert_membership(conn: sqlite3.Connection, group: str, m: Membership) -> None:
    """A follower joins ``group`` after those already in it."""
    position = conn.execute(
        "SELECT coalesce(max(position), 0) + 1 FROM memberships WHERE group_id = ?", (group,)
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO memberships (group_id, account, position, ratio, max_qty, symbol_map,"
        " disable_reason, copy) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            group,
            m.account,
            position,
            str(m.ratio),
            m.max_qty,
            symbol_map_json(m.symbol_map),
            m.disable_reason,
            m.copy.value,
        ),
    )


def update_terms(conn: sqlite3.Connection, group: str, m: Membership) -> None:
    """A follower's new ratio, max_qty, symbol_map and copy mode; its disable reason is left as
    it is."""
    conn.execute(
        "UPDATE memberships SET ratio = ?, max_qty = ?, symbol_map = ?, copy = ?"
        " WHERE group_id = ? AND account = ?",
        (str(m.ratio), m.max_qty, symbol_map_json(m.symbol_map), m.copy.value, group, m.account),
    )


def delete_membership(conn: sqlite3.Connection, group: str, account: str) -> None:
    conn.execute("DELETE FROM memberships WHERE group_id = ? AND account = ?", (group, account))


def delete_setup(
    conn: sqlite3.Connection,
    *,
    groups: Iterable[str] = (),
    memberships: Iterable[tuple[str, str]] = (),
    accounts: Iterable[str] = (),
    connection: str | None = None,
) -> None:
    """S4: whole groups, then single (group, account) memberships, then accounts with their
    state, memberships and limits, then the connection. Records (activity, orders,
    reconciliations) are kept (S4.4)."""
    for group in groups:
        conn.execute("DELETE FROM memberships WHERE group_id = ?", (group,))
        conn.execute("DELETE FROM groups WHERE id = ?", (group,))
    for group, account in memberships:
        delete_membership(conn, group, account)
    for account in accounts:
        delete_account_state(conn, account)
        conn.execute("DELETE FROM memberships WHERE account = ?", (account,))
        conn.execute("DELETE FROM risk_limits WHERE account = ?", (account,))
        conn.execute("DELETE FROM accounts WHERE id = ?", (account,))
    if connection is not None:
        conn.execute("DELETE FROM connections WHERE id = ?", (connection,))


__all__ = [
    "SetupRows",
    "delete_membership",
    "delete_setup",
    "insert_account",
    "insert_connection",
    "insert_group",
    "insert_membership",
    "load",
    "read_setup",
    "symbol_map_json",
    "symbol_map_of",
    "update_terms",
    "write_limits",
]
