"""Connections, accounts, groups and memberships: the configuration the actor tree is built from.

Holds the rules that keep it whole (an account in at most one group, no group without its
leader, no membership pointing at a missing account: S4.3) and the store rows behind it. A
change is checked here first, written to the store in one transaction, and only then told to
the actors.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from decimal import Decimal

from engine.domain.copying import Membership
from engine.storage.durable import delete_account_state
from engine.storage.store import Store


class CommandRefused(Exception):
    """A command the rules forbid; the message is the reason, shown to the user as is."""


class UnknownId(CommandRefused):
    """A command names a connection, account or group that does not exist."""


@dataclass
class ConnectionConfig:
    id: str
    broker: str = "paper"
    state: str = "connected"
    offline: bool = False
    token_expired: bool = False
    reconnects: int = 0


@dataclass
class AccountConfig:
    id: str
    connection: str
    balance: Decimal = Decimal(50000)
    limits: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class GroupConfig:
    id: str
    leader: str
    members: list[Membership] = field(default_factory=list)


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting a connection removes (S4.1, S4.2)."""

    connection: str
    accounts: tuple[str, ...]
    groups: tuple[str, ...]  # led by a deleted account: removed whole
    memberships: tuple[tuple[str, str], ...]  # (group, follower) removed from surviving groups
    orphaned_followers: tuple[tuple[str, str], ...]  # (group, follower) of the removed groups


class Topology:
    def __init__(self) -> None:
        self.connections: dict[str, ConnectionConfig] = {}
        self.accounts: dict[str, AccountConfig] = {}
        self.groups: dict[str, GroupConfig] = {}

    # -- queries ---------------------------------------------------------------------------------

    def accounts_of(self, connection: str) -> list[str]:
        return [a.id for a in self.accounts.values() if a.connection == connection]

    def group_of(self, account: str) -> tuple[str, bool] | None:
        """The group the account belongs to and whether it leads it."""
        for group in self.groups.values():
            if group.leader == account:
                return group.id, True
            if any(m.account == account for m in group.members):
                return group.id, False
        return None

    def membership(self, account: str) -> tuple[str, Membership] | None:
        for group in self.groups.values():
            for member in group.members:
                if member.account == account:
                    return group.id, member
        return None

    def require_connection(self, connection: str) -> ConnectionConfig:
        if connection not in self.connections:
            raise UnknownId(f"unknown connection {connection!r}")
        return self.connections[connection]

    def require_account(self, account: str) -> AccountConfig:
        if account not in self.accounts:
            raise UnknownId(f"unknown account {account!r}")
        return self.accounts[account]

    def require_group(self, group: str) -> GroupConfig:
        if group not in self.groups:
            raise UnknownId(f"unknown group {group!r}")
        return self.groups[group]

    # -- checks ----------------------------------------------------------------------------------

    def check_new_connection(self, connection: ConnectionConfig) -> None:
        if connection.id in self.connections:
            raise CommandRefused(f"connection {connection.id!r} already exists")

    def check_new_account(self, account: AccountConfig) -> None:
        if account.id in self.accounts:
            raise CommandRefused(f"account {account.id!r} already exists")
        self.require_connection(account.connection)

    def check_new_group(self, group: GroupConfig) -> None:
        if group.id in self.groups:
            raise CommandRefused(f"group {group.id!r} already exists")
        self.require_account(group.leader)
        self._check_free(group.leader)
        seen = {group.leader}
        for member in group.members:
            self.require_account(member.account)
            if member.account in seen:
                raise CommandRefused(f"account {member.account!r} is in group {group.id!r} twice")
            self._check_free(member.account)
            seen.add(member.account)

    def check_add_follower(self, group_id: str, member: Membership) -> None:
        group = self.require_group(group_id)
        self.require_account(member.account)
        if member.account == group.leader:
            raise CommandRefused(
                f"account {member.account!r} leads group {group_id!r} and cannot follow it"
            )
        self._check_free(member.account)

    def _check_free(self, account: str) -> None:
        current = self.group_of(account)
        if current is not None:
            group, leads = current
            role = "leads" if leads else "already follows"
            raise CommandRefused(
                f"account {account!r} {role} group {group!r};"
                " an account belongs to at most one group"
            )

    def plan_delete_connection(self, connection: str) -> DeletionPlan:
        self.require_connection(connection)
        doomed = set(self.accounts_of(connection))
        groups = tuple(g.id for g in self.groups.values() if g.leader in doomed)
        memberships = tuple(
            (g.id, m.account)
            for g in self.groups.values()
            if g.id not in groups
            for m in g.members
            if m.account in doomed
        )
        orphaned = tuple(
            (g, m.account)
            for g in groups
            for m in self.groups[g].members
            if m.account not in doomed
        )
        return DeletionPlan(connection, tuple(sorted(doomed)), groups, memberships, orphaned)

    # -- changes (memory) ------------------------------------------------------------------------

    def apply_deletion(self, plan: DeletionPlan) -> None:
        for group in plan.groups:
            del self.groups[group]
        for group, account in plan.memberships:
            self.groups[group].members = [
                m for m in self.groups[group].members if m.account != account
            ]
        for account in plan.accounts:
            del self.accounts[account]
        del self.connections[plan.connection]


# --- store rows ---------------------------------------------------------------------------


def load(store: Store) -> Topology:
    topology = Topology()
    for row in store.query("SELECT * FROM connections ORDER BY rowid"):
        topology.connections[row["id"]] = ConnectionConfig(
            row["id"],
            row["broker"],
            row["state"],
            bool(row["offline"]),
            bool(row["token_expired"]),
            row["reconnects"],
        )
    for row in store.query("SELECT * FROM accounts ORDER BY rowid"):
        topology.accounts[row["id"]] = AccountConfig(
            row["id"], row["connection"], Decimal(row["balance"])
        )
    for row in store.query("SELECT * FROM risk_limits ORDER BY account, name"):
        topology.accounts[row["account"]].limits[row["name"]] = Decimal(row["value"])
    for row in store.query("SELECT * FROM groups ORDER BY rowid"):
        topology.groups[row["id"]] = GroupConfig(row["id"], row["leader"])
    for row in store.query("SELECT * FROM memberships ORDER BY group_id, position"):
        topology.groups[row["group_id"]].members.append(
            Membership(
                account=row["account"],
                ratio=Decimal(row["ratio"]),
                max_qty=row["max_qty"],
                symbol_map=tuple(sorted(json.loads(row["symbol_map"]).items()))
                if row["symbol_map"]
                else (),
                disable_reason=row["disable_reason"],
            )
        )
    return topology


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


def write_limits(conn: sqlite3.Connection, account: str, limits: dict[str, Decimal]) -> None:
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
    position = conn.execute(
        "SELECT coalesce(max(position), 0) + 1 FROM memberships WHERE group_id = ?", (group,)
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO memberships (group_id, account, position, ratio, max_qty, symbol_map,"
        " disable_reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            group,
            m.account,
            position,
            str(m.ratio),
            m.max_qty,
            json.dumps(dict(m.symbol_map), sort_keys=True) if m.symbol_map else "",
            m.disable_reason,
        ),
    )


def delete_membership(conn: sqlite3.Connection, group: str, account: str) -> None:
    conn.execute("DELETE FROM memberships WHERE group_id = ? AND account = ?", (group, account))


def delete_cascade(conn: sqlite3.Connection, plan: DeletionPlan) -> None:
    """S4: one transaction, so a crash mid-delete leaves all or nothing (S4.3)."""
    for group in plan.groups:
        conn.execute("DELETE FROM memberships WHERE group_id = ?", (group,))
        conn.execute("DELETE FROM groups WHERE id = ?", (group,))
    for group, account in plan.memberships:
        delete_membership(conn, group, account)
    for account in plan.accounts:
        delete_account_state(conn, account)
        conn.execute("DELETE FROM memberships WHERE account = ?", (account,))
        conn.execute("DELETE FROM risk_limits WHERE account = ?", (account,))
        conn.execute("DELETE FROM accounts WHERE id = ?", (account,))
    conn.execute("DELETE FROM connections WHERE id = ?", (plan.connection,))
