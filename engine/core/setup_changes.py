"""Commands that change the setup while the engine runs: add a connection with its accounts,
delete an account (S4.2), create or delete a copy group, change a follower's terms.

Each is the engine's command of the same name (``Engine.add_connection`` …, journaled there) and
follows the engine's rule for commands: checked against the topology first, written to the store
in one transaction (so a crash leaves all or nothing, S4.3), then applied to the in-memory
topology, and only then told to the actors. Nothing here sends an order (S4.5) or touches an
actor's state: new actors are built from the store like any other.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from actors import addresses, schedule
from actors.messages.account import SendPositions, SetRole
from actors.messages.connection import DetachAccount, StartSession
from actors.messages.group import RemoveMember, SetTerms
from actors.messages.risk import SetMembership
from actors.messages.schedule import Track
from engine.core import topology as topo
from engine.core.topology import (
    AccountConfig,
    CommandRefused,
    ConnectionConfig,
    GroupConfig,
    Topology,
)
from engine.domain.activity import Kind, Level
from engine.domain.copying import Membership, Role
from engine.storage.durable import delete_account_state

if TYPE_CHECKING:
    from engine.core.engine import Engine


@dataclass(frozen=True)
class AccountDeletion:
    """What deleting an account removes (S4.2): the groups it leads, whole, and its own
    membership; the followers of those groups are left without a group."""

    account: str
    connection: str
    groups: tuple[str, ...]
    memberships: tuple[tuple[str, str], ...]  # (group, account) removed from surviving groups
    orphaned_followers: tuple[tuple[str, str], ...]  # (group, follower) of the removed groups


def _require_running(engine: Engine) -> None:
    if not engine.started:
        raise CommandRefused("the engine is not running")


# --- connections ------------------------------------------------------------------------------


def initial_state(broker: str) -> str:
    """A new paper connection is connected at once; a real broker's waits for its OAuth."""
    return "connected" if broker == "paper" else "reauth_required"


def check_add_connection(
    engine: Engine, connection: str, broker: str, accounts: Mapping[str, Decimal]
) -> tuple[ConnectionConfig, list[AccountConfig]]:
    """The rows a new connection and its accounts would be; raises if the rules forbid it."""
    if broker not in engine.brokers:
        known = ", ".join(sorted(engine.brokers)) or "none"
        raise CommandRefused(f"no broker {broker!r} configured (this engine has: {known})")
    state = initial_state(broker)
    config = ConnectionConfig(connection, broker, state, token_expired=state != "connected")
    engine.topology.check_new_connection(config)
    new: list[AccountConfig] = []
    for account, balance in accounts.items():
        if account in engine.topology.accounts:
            raise CommandRefused(f"account {account!r} already exists")
        new.append(AccountConfig(account, connection, Decimal(balance)))
    return config, new


def add_connection(
    engine: Engine, connection: str, broker: str, accounts: Mapping[str, Decimal]
) -> None:
    """A new login with its accounts: actors built from the store, then the session opened."""
    _require_running(engine)
    config, new = check_add_connection(engine, connection, broker, accounts)

    def write(conn: sqlite3.Connection) -> None:
        topo.insert_connection(conn, config)
        for a in new:
            topo.insert_account(conn, a)

    engine.store.write(write, wait=True)
    engine.topology.connections[connection] = config
    for a in new:
        engine.topology.accounts[a.id] = a
    runtime = engine.runtime
    address = addresses.connection(connection)
    runtime.spawn(address, engine.factory(address), connection)
    for a in new:
        # The risk actor first, as at a start: a new account tells it its book at once.
        for actor in (addresses.risk(a.id), addresses.account(a.id)):
            runtime.spawn(actor, engine.factory(actor), connection)
        runtime.tell(schedule.ADDRESS, Track(a.id, on=True))
    runtime.tell(addresses.connection(connection), StartSession(False))
    engine.records.activity(
        Level.INFO,
        Kind.STATE_CHANGE,
        f"connection {connection} added ({broker}) with accounts "
        f"{', '.join(a.id for a in new) or 'none'}",
        connection=connection,
    )


# --- accounts (S4.2) ----------------------------------------------------------------------------


def plan_delete_account(topology: Topology, account: str) -> AccountDeletion:
    config = topology.require_account(account)
    groups = tuple(g.id for g in topology.groups.values() if g.leader == account)
    memberships = tuple(
        (g.id, account)
        for g in topology.groups.values()
        if g.id not in groups and any(m.account == account for m in g.members)
    )
    orphaned = tuple((g, m.account) for g in groups for m in topology.groups[g].members)
    return AccountDeletion(account, config.connection, groups, memberships, orphaned)


def delete_account(engine: Engine, account: str) -> AccountDeletion:
    """S4.2: immediate; a leader takes its group with it, a follower only its membership. No
    order is sent and the account's records are kept (S4.4, S4.5)."""
    _require_running(engine)
    plan = plan_delete_account(engine.topology, account)

    def write(conn: sqlite3.Connection) -> None:
        for group in plan.groups:
            conn.execute("DELETE FROM memberships WHERE group_id = ?", (group,))
            conn.execute("DELETE FROM groups WHERE id = ?", (group,))
        delete_account_state(conn, account)
        conn.execute("DELETE FROM memberships WHERE account = ?", (account,))
        conn.execute("DELETE FROM risk_limits WHERE account = ?", (account,))
        conn.execute("DELETE FROM accounts WHERE id = ?", (account,))

    engine.store.write(write, wait=True)
    topology = engine.topology
    for group in plan.groups:
        del topology.groups[group]
    for group, _ in plan.memberships:
        topology.groups[group].members = [
            m for m in topology.groups[group].members if m.account != account
        ]
    del topology.accounts[account]
    runtime = engine.runtime
    runtime.tell(addresses.connection(plan.connection), DetachAccount(account))
    runtime.stop(addresses.account(account))
    runtime.stop(addresses.risk(account))
    runtime.tell(schedule.ADDRESS, Track(account, on=False))
    for group in plan.groups:
        runtime.stop(addresses.group(group))
    for group, _ in plan.memberships:
        runtime.tell(addresses.group(group), RemoveMember(account))
    for _, follower in plan.orphaned_followers:
        runtime.tell(addresses.account(follower), SetRole(Role()))
        runtime.tell(addresses.risk(follower), SetMembership(None))
    summary = (
        f"account {account} deleted"
        + (f"; groups removed: {', '.join(plan.groups)}" if plan.groups else "")
        + (
            f"; membership removed from {', '.join(g for g, _ in plan.memberships)}"
            if plan.memberships
            else ""
        )
    )
    engine.records.activity(Level.INFO, Kind.DELETION, summary, account=account)
    return plan


# --- groups -------------------------------------------------------------------------------------


def add_group(engine: Engine, group: str, leader: str, members: Sequence[Membership]) -> None:
    """A new copy group: its actor learns the leader's positions from the leader's account."""
    _require_running(engine)
    members = [m if not m.disable_reason else _enabled(m) for m in members]
    config = GroupConfig(group, leader, list(members))
    engine.topology.check_new_group(config)
    engine.store.write(lambda conn: topo.insert_group(conn, config), wait=True)
    # A group id used before may have logged fills a restart would complete: none are these
    # members' (S2.9).
    engine.records.fanouts.joined(group, [m.account for m in members])
    engine.topology.groups[group] = config
    runtime = engine.runtime
    placement = engine.topology.accounts[leader].connection
    runtime.spawn(addresses.group(group), engine.factory(addresses.group(group)), placement)
    runtime.tell(addresses.account(leader), SetRole(Role(group, True)))
    for member in members:
        runtime.tell(addresses.account(member.account), SetRole(Role(group, False)))
        runtime.tell(addresses.risk(member.account), SetMembership(group))
    runtime.tell(addresses.account(leader), SendPositions())
    engine.records.activity(
        Level.INFO,
        Kind.STATE_CHANGE,
        f"group {group} created: {leader} → "
        f"{', '.join(m.account for m in members) or 'no followers'}",
        account=leader,
    )


def _enabled(member: Membership) -> Membership:
    return Membership(member.account, member.ratio, member.max_qty, member.symbol_map)


def delete_group(engine: Engine, group: str) -> GroupConfig:
    """The group and its memberships go; its accounts stay, copying nothing. No order sent."""
    _require_running(engine)
    config = engine.topology.require_group(group)

    def write(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM memberships WHERE group_id = ?", (group,))
        conn.execute("DELETE FROM groups WHERE id = ?", (group,))

    engine.store.write(write, wait=True)
    del engine.topology.groups[group]
    runtime = engine.runtime
    runtime.stop(addresses.group(group))
    for account in (config.leader, *(m.account for m in config.members)):
        runtime.tell(addresses.account(account), SetRole(Role()))
    for member in config.members:
        runtime.tell(addresses.risk(member.account), SetMembership(None))
    engine.records.activity(
        Level.INFO, Kind.DELETION, f"group {group} deleted", account=config.leader
    )
    return config


def update_follower(engine: Engine, group: str, member: Membership) -> Membership:
    """New terms (ratio, max_qty, symbol_map) for an existing follower; its disable reason
    stays the group actor's own (``SetTerms``), whatever it became since the view read here.
    Applies from the next leader fill; nothing is sent now."""
    _require_running(engine)
    config = engine.topology.require_group(group)
    if not any(m.account == member.account for m in config.members):
        raise CommandRefused(f"account {member.account!r} does not follow group {group!r}")
    row = (
        str(member.ratio),
        member.max_qty,
        json.dumps(dict(member.symbol_map), sort_keys=True) if member.symbol_map else "",
        group,
        member.account,
    )

    def write(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE memberships SET ratio = ?, max_qty = ?, symbol_map = ?"
            " WHERE group_id = ? AND account = ?",
            row,
        )

    engine.store.write(write, wait=True)
    view = engine.group_view(group)
    current = {m.account: m for m in (view.members if view is not None else config.members)}
    reason = current[member.account].disable_reason if member.account in current else ""
    updated = Membership(member.account, member.ratio, member.max_qty, member.symbol_map, reason)
    config.members = [updated if m.account == member.account else m for m in config.members]
    engine.runtime.tell(addresses.group(group), SetTerms(updated))
    engine.records.activity(
        Level.INFO,
        Kind.STATE_CHANGE,
        f"follower {member.account} of group {group}: ratio {member.ratio}, max_qty "
        f"{member.max_qty if member.max_qty is not None else 'none'}, symbol_map "
        f"{dict(member.symbol_map) or 'none'}",
        account=member.account,
    )
    return updated


__all__ = [
    "AccountDeletion",
    "add_connection",
    "add_group",
    "check_add_connection",
    "delete_account",
    "delete_group",
    "initial_state",
    "plan_delete_account",
    "update_follower",
]
