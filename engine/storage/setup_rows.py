"""The store rows behind the setup: connections, accounts with their own risk keys and the
profile they use, the named profiles and their keys (S9.7), the blackouts (S9.5), groups and
memberships.

The engine checks a change against the topology's rules first and writes it here, inside one
``Store.write`` transaction, so a crash leaves all of it or none (S4.3). ``load`` reads the whole
setup back, in the order it was written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from engine.domain import risk_profile
from engine.domain.copying import CopyMode, Membership
from engine.domain.risk_profile import RiskValue, RiskValueError
from engine.domain.sessions import Blackout
from engine.domain.setup import AccountConfig, ConnectionConfig, GroupConfig
from engine.domain.watching import OnDrift
from engine.storage.durable import delete_account_state
from engine.storage.store import SCHEMA_VERSION, Store, StoreError, stored_schema


class UnreadableRow(StoreError, ValueError):
    """A setup row the store holds is not one this engine wrote (a risk key's value that no
    longer parses, a blackout that is none): the message says which and why."""


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
    profiles: dict[str, dict[str, RiskValue]] = field(default_factory=dict)
    blackouts: list[Blackout] = field(default_factory=list)  # sorted


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
    for row in query("SELECT * FROM profiles ORDER BY rowid"):
        rows.profiles[row["name"]] = {}
    for row in query("SELECT * FROM profile_keys ORDER BY profile, name"):
        where = f"profile {row['profile']!r}"
        rows.profiles[row["profile"]][row["name"]] = _value(where, row["name"], row["value"])
    for row in query("SELECT * FROM accounts ORDER BY rowid"):
        rows.accounts[row["id"]] = AccountConfig(
            row["id"], row["connection"], Decimal(row["balance"]), profile=row["profile"]
        )
    for row in query("SELECT * FROM risk_limits ORDER BY account, name"):
        where = f"account {row['account']!r}"
        rows.accounts[row["account"]].limits[row["name"]] = _value(where, row["name"], row["value"])
    rows.blackouts.extend(sorted(_blackout(row) for row in query("SELECT * FROM blackouts")))
    for row in query("SELECT * FROM groups ORDER BY rowid"):
        rows.groups[row["id"]] = GroupConfig(
            row["id"], row["leader"], on_drift=_on_drift(row["id"], row["on_drift"])
        )
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


def _on_drift(group: str, text: str) -> OnDrift:
    try:
        return OnDrift(text)
    except ValueError:
        raise UnreadableRow(
            f"the store's group {group!r}: on_drift is {text!r}, not one of "
            f"{', '.join(repr(m.value) for m in OnDrift)}"
        ) from None


def _value(where: str, name: str, text: str) -> RiskValue:
    """A stored risk key's value (a plain decimal, as before the S9 keys, reads as one)."""
    try:
        return risk_profile.decode(name, text)
    except RiskValueError as error:
        raise UnreadableRow(f"the store's risk keys of {where}: {error}") from None


def _blackout(row: sqlite3.Row) -> Blackout:
    try:
        start, end = datetime.fromisoformat(row["start"]), datetime.fromisoformat(row["end"])
        return Blackout(start, end, row["label"])
    except (TypeError, ValueError) as error:
        raise UnreadableRow(f"the store's blackout {row['key']!r}: {error}") from None


# --- writes: each runs inside the caller's transaction --------------------------------------------


def insert_connection(conn: sqlite3.Connection, c: ConnectionConfig) -> None:
    conn.execute(
        "INSERT INTO connections (id, broker, state, offline, token_expired, reconnects)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (c.id, c.broker, c.state, int(c.offline), int(c.token_expired), c.reconnects),
    )


def insert_account(conn: sqlite3.Connection, a: AccountConfig) -> None:
    conn.execute(
        "INSERT INTO accounts (id, connection, balance, profile) VALUES (?, ?, ?, ?)",
        (a.id, a.connection, str(a.balance), a.profile),
    )
    write_limits(conn, a.id, a.limits)


def write_limits(conn: sqlite3.Connection, account: str, limits: Mapping[str, RiskValue]) -> None:
    """The account's own keys given, set (the others are left as they are)."""
    for name, value in limits.items():
        conn.execute(
            "INSERT INTO risk_limits (account, name, value) VALUES (?, ?, ?)"
            " ON CONFLICT(account, name) DO UPDATE SET value = excluded.value",
            (account, name, risk_profile.encode(name, value)),
        )


def delete_limits(conn: sqlite3.Connection, account: str, names: Iterable[str]) -> None:
    """The account's own keys named, removed: its profile's value, or none, applies."""
    for name in names:
        conn.execute("DELETE FROM risk_limits WHERE account = ? AND name = ?", (account, name))


def set_account_profile(conn: sqlite3.Connection, account: str, profile: str | None) -> None:
    conn.execute("UPDATE accounts SET profile = ? WHERE id = ?", (profile, account))


def write_profile(conn: sqlite3.Connection, profile: str, keys: Mapping[str, RiskValue]) -> None:
    """The profile made if it is new, and the keys given set in it."""
    conn.execute("INSERT INTO profiles (name) VALUES (?) ON CONFLICT(name) DO NOTHING", (profile,))
    for name, value in keys.items():
        conn.execute(
            "INSERT INTO profile_keys (profile, name, value) VALUES (?, ?, ?)"
            " ON CONFLICT(profile, name) DO UPDATE SET value = excluded.value",
            (profile, name, risk_profile.encode(name, value)),
        )


def delete_profile_keys(conn: sqlite3.Connection, profile: str, names: Iterable[str]) -> None:
    for name in names:
        conn.execute("DELETE FROM profile_keys WHERE profile = ? AND name = ?", (profile, name))


def delete_profile(conn: sqlite3.Connection, profile: str) -> None:
    """The profile with its keys (an account still using it makes this fail: the caller checks
    first)."""
    conn.execute("DELETE FROM profile_keys WHERE profile = ?", (profile,))
    conn.execute("DELETE FROM profiles WHERE name = ?", (profile,))


def insert_blackout(conn: sqlite3.Connection, b: Blackout) -> None:
    conn.execute(
        "INSERT INTO blackouts (key, start, end, label) VALUES (?, ?, ?, ?)",
        (b.key(), b.start.isoformat(), b.end.isoformat(), b.label),
    )


def delete_blackout(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM blackouts WHERE key = ?", (key,))


def insert_group(conn: sqlite3.Connection, g: GroupConfig) -> None:
    conn.execute(
        "INSERT INTO groups (id, leader, on_drift) VALUES (?, ?, ?)",
        (g.id, g.leader, g.on_drift.value),
    )
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


def update_on_drift(conn: sqlite3.Connection, group: str, on_drift: OnDrift) -> None:
    """S10.2: what the group does when a follower drifts."""
    conn.execute("UPDATE groups SET on_drift = ? WHERE id = ?", (on_drift.value, group))


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
    "UnreadableRow",
    "delete_blackout",
    "delete_limits",
    "delete_membership",
    "delete_profile",
    "delete_profile_keys",
    "delete_setup",
    "insert_account",
    "insert_blackout",
    "insert_connection",
    "insert_group",
    "insert_membership",
    "load",
    "read_setup",
    "set_account_profile",
    "symbol_map_json",
    "symbol_map_of",
    "update_terms",
    "write_limits",
    "write_profile",
]
