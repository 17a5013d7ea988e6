"""Commands that change the setup while the engine runs: add or delete a connection with its
accounts (S4.1), delete an account (S4.2), create or delete a copy group, change a follower's
terms.

Each is the engine's command of the same name (``Engine.add_connection`` …, journaled there) and
follows the engine's rule for commands: checked against the topology first, written to the store
in one transaction (so a crash leaves all or nothing, S4.3), then applied to the in-memory
topology, and only then told to the actors. Nothing here sends an order (S4.5) or touches an
actor's state: new actors are built from the store like any other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from actors import addresses, schedule
from actors.group import GroupView
from actors.messages.account import SendPositions, SetRole
from actors.messages.connection import DetachAccount, StartSession
from actors.messages.group import RemoveMember, SetOnDrift, SetTerms
from actors.messages.risk import SetMembership
from actors.messages.schedule import Track
from brokers.instruments import ContractTable
from engine.core.topology import (
    AccountConfig,
    AccountDeletion,
    CommandRefused,
    ConnectionConfig,
    DeletionPlan,
    GroupConfig,
    Topology,
)
from engine.core.tree import ActorTree
from engine.domain.activity import Kind, Level
from engine.domain.copying import CopyMode, Membership, Role
from engine.domain.price_scale import price_scale_problem
from engine.domain.watching import OnDrift
from engine.storage import setup_rows
from engine.storage.records import Records
from engine.storage.store import Store


@dataclass(frozen=True)
class Setup:
    """What a setup change works on, handed over by the engine for each command: the topology
    and the store rows behind it, the actor tree, the activity log, the brokers configured,
    whether the engine runs, how to close a connection's broker session, and the contract
    table (a follower's terms are checked against it)."""

    topology: Topology
    store: Store
    records: Records
    tree: ActorTree
    brokers: Collection[str]
    running: bool
    close_session: Callable[[str], None]
    contracts: ContractTable = field(default_factory=ContractTable)


def check_terms(contracts: ContractTable, member: Membership) -> None:
    """S8.2: a follower copying orders maps only roots of the same price scale."""
    if member.copy is not CopyMode.ORDERS:
        return
    for root in (r for pair in member.symbol_map for r in pair):
        if root not in contracts:
            raise CommandRefused(f"symbol_map: root {root!r} is not in the contract table")
    problem = price_scale_problem(
        member.copy, member.symbol_map, lambda root: contracts.contract(root).tick_size
    )
    if problem is not None:
        raise CommandRefused(f"follower {member.account}: {problem}")


def _require_running(setup: Setup) -> None:
    if not setup.running:
        raise CommandRefused("the engine is not running")


# --- connections ------------------------------------------------------------------------------


def initial_state(broker: str) -> str:
    """A new paper connection is connected at once; a real broker's waits for its OAuth."""
    return "connected" if broker == "paper" else "reauth_required"


def check_add_connection(
    topology: Topology,
    brokers: Collection[str],
    connection: str,
    broker: str,
    accounts: Mapping[str, Decimal],
) -> tuple[ConnectionConfig, list[AccountConfig]]:
    """The rows a new connection and its accounts would be; raises if the rules forbid it."""
    if broker not in brokers:
        known = ", ".join(sorted(brokers)) or "none"
        raise CommandRefused(f"no broker {broker!r} configured (this engine has: {known})")
    state = initial_state(broker)
    config = ConnectionConfig(connection, broker, state, token_expired=state != "connected")
    topology.check_new_connection(config)
    new: list[AccountConfig] = []
    for account, balance in accounts.items():
        if account in topology.accounts:
            raise CommandRefused(f"account {account!r} already exists")
        new.append(AccountConfig(account, connection, Decimal(balance)))
    return config, new


def add_connection(
    setup: Setup, connection: str, broker: str, accounts: Mapping[str, Decimal]
) -> None:
    """A new login with its accounts: actors built from the store, then the session opened."""
    _require_running(setup)
    config, new = check_add_connection(setup.topology, setup.brokers, connection, broker, accounts)

    def write(conn: sqlite3.Connection) -> None:
        setup_rows.insert_connection(conn, config)
        for a in new:
            setup_rows.insert_account(conn, a)

    setup.store.write(write, wait=True)
    setup.topology.connections[connection] = config
    for a in new:
        setup.topology.accounts[a.id] = a
    tree = setup.tree
    tree.spawn(addresses.connection(connection), connection)
    for a in new:
        # The risk actor first, as at a start: a new account tells it its book at once.
        for actor in (addresses.risk(a.id), addresses.account(a.id)):
            tree.spawn(actor, connection)
        tree.tell(schedule.ADDRESS, Track(a.id, on=True))
    tree.tell(addresses.connection(connection), StartSession(False))
    setup.records.activity(
        Level.INFO,
        Kind.STATE_CHANGE,
        f"connection {connection} added ({broker}) with accounts "
        f"{', '.join(a.id for a in new) or 'none'}",
        connection=connection,
    )


def delete_connection(setup: Setup, connection: str) -> DeletionPlan:
    """S4.1: immediate, cascading to the connection's accounts (S4.2), no order sent, records
    kept (S4.4, S4.5)."""
    topology = setup.topology
    plan = topology.plan_delete_connection(connection)

    def write(conn: sqlite3.Connection) -> None:
        setup_rows.delete_setup(
            conn,
            groups=plan.groups,
            memberships=plan.memberships,
            accounts=plan.accounts,
            connection=plan.connection,
        )

    setup.store.write(write, wait=True)
    topology.apply_deletion(plan)
    setup.close_session(connection)
    _take_down(setup.tree, plan.accounts, plan.groups, plan.memberships, plan.orphaned_followers)
    setup.tree.stop(addresses.connection(connection))
    summary = (
        f"connection {connection} deleted with accounts {', '.join(plan.accounts) or 'none'}"
        + (f"; groups removed: {', '.join(plan.groups)}" if plan.groups else "")
        + (
            f"; memberships removed: {', '.join(f'{a} from {g}' for g, a in plan.memberships)}"
            if plan.memberships
            else ""
        )
    )
    setup.records.activity(Level.INFO, Kind.DELETION, summary, connection=connection)
    for account in plan.accounts:
        setup.records.activity(
            Level.INFO, Kind.DELETION, f"account {account} deleted", account=account
        )
    return plan


def _take_down(
    tree: ActorTree,
    accounts: tuple[str, ...],
    groups: tuple[str, ...],
    memberships: tuple[tuple[str, str], ...],
    orphaned: tuple[tuple[str, str], ...],
) -> None:
    """Stop the actors of deleted accounts and groups, take removed members out of the groups
    that stay, and tell the followers of removed groups that they follow none (S4.3)."""
    for account in accounts:
        tree.stop(addresses.account(account))
        tree.stop(addresses.risk(account))
        tree.tell(schedule.ADDRESS, Track(account, on=False))
    for group in groups:
        tree.stop(addresses.group(group))
    for group, account in memberships:
        tree.tell(addresses.group(group), RemoveMember(account))
    for _, follower in orphaned:
        tree.tell(addresses.account(follower), SetRole(Role()))
        tree.tell(addresses.risk(follower), SetMembership(None))


# --- accounts (S4.2) ----------------------------------------------------------------------------


def delete_account(setup: Setup, account: str) -> AccountDeletion:
    """S4.2: immediate; a leader takes its group with it, a follower only its membership. No
    order is sent and the account's records are kept (S4.4, S4.5)."""
    _require_running(setup)
    topology = setup.topology
    plan = topology.plan_delete_account(account)

    def write(conn: sqlite3.Connection) -> None:
        setup_rows.delete_setup(conn, groups=plan.groups, accounts=(account,))

    setup.store.write(write, wait=True)
    for group in plan.groups:
        del topology.groups[group]
    for group, _ in plan.memberships:
        topology.groups[group].members = [
            m for m in topology.groups[group].members if m.account != account
        ]
    del topology.accounts[account]
    setup.tree.tell(addresses.connection(plan.connection), DetachAccount(account))
    _take_down(setup.tree, (account,), plan.groups, plan.memberships, plan.orphaned_followers)
    summary = (
        f"account {account} deleted"
        + (f"; groups removed: {', '.join(plan.groups)}" if plan.groups else "")
        + (
            f"; membership removed from {', '.join(g for g, _ in plan.memberships)}"
            if plan.memberships
            else ""
        )
    )
    setup.records.activity(Level.INFO, Kind.DELETION, summary, account=account)
    return plan


# --- groups -------------------------------------------------------------------------------------


def add_group(
    setup: Setup,
    group: str,
    leader: str,
    members: Sequence[Membership],
    on_drift: OnDrift = OnDrift.ALERT,
) -> None:
    """A new copy group: its actor learns the leader's positions from the leader's account."""
    _require_running(setup)
    members = [m if not m.disable_reason else _enabled(m) for m in members]
    config = GroupConfig(group, leader, list(members), on_drift)
    topology = setup.topology
    topology.check_new_group(config)
    for member in members:
        check_terms(setup.contracts, member)
    # A group id used before may have logged fills a restart would complete: none are these
    # members' (S2.9). Logged before the group is written, so a write the disk refuses leaves
    # nothing half done (a join logged for a group that was not made is harmless).
    setup.records.fanouts.joined(group, [m.account for m in members])
    setup.store.write(lambda conn: setup_rows.insert_group(conn, config), wait=True)
    topology.groups[group] = config
    tree = setup.tree
    tree.spawn(addresses.group(group), topology.accounts[leader].connection)
    tree.tell(addresses.account(leader), SetRole(Role(group, True)))
    for member in members:
        tree.tell(addresses.account(member.account), SetRole(Role(group, False)))
        tree.tell(addresses.risk(member.account), SetMembership(group))
    tree.tell(addresses.account(leader), SendPositions())
    setup.records.activity(
        Level.INFO,
        Kind.STATE_CHANGE,
        f"group {group} created: {leader} → "
        f"{', '.join(m.account for m in members) or 'no followers'}, on_drift {on_drift}",
        account=leader,
    )


def set_on_drift(setup: Setup, group: str, on_drift: OnDrift) -> GroupConfig:
    """S10.2: what the group does when a follower drifts, from its next drift episode on; an
    episode open now is not reduced for it (once per episode, at its opening)."""
    _require_running(setup)
    config = setup.topology.require_group(group)
    if config.on_drift is on_drift:
        return config
    setup.store.write(lambda conn: setup_rows.update_on_drift(conn, group, on_drift), wait=True)
    config.on_drift = on_drift
    setup.tree.tell(addresses.group(group), SetOnDrift(on_drift))
    setup.records.activity(
        Level.INFO,
        Kind.STATE_CHANGE,
        f"group {group}: on_drift {on_drift}",
        account=config.leader,
    )
    return config


def _enabled(member: Membership) -> Membership:
    return replace(member, disable_reason="")


def delete_group(setup: Setup, group: str) -> GroupConfig:
    """The group and its memberships go; its accounts stay, copying nothing. No order sent."""
    _require_running(setup)
    config = setup.topology.require_group(group)
    setup.store.write(lambda conn: setup_rows.delete_setup(conn, groups=(group,)), wait=True)
    del setup.topology.groups[group]
    tree = setup.tree
    tree.stop(addresses.group(group))
    for account in (config.leader, *(m.account for m in config.members)):
        tree.tell(addresses.account(account), SetRole(Role()))
    for member in config.members:
        tree.tell(addresses.risk(member.account), SetMembership(None))
    setup.records.activity(
        Level.INFO, Kind.DELETION, f"group {group} deleted", account=config.leader
    )
    return config


def update_follower(setup: Setup, group: str, member: Membership) -> Membership:
    """New terms (ratio, max_qty, symbol_map, copy mode) for an existing follower; its disable
    reason stays the group actor's own (``SetTerms``), whatever it became since the view read
    here. Applies from the next leader fill or order; nothing is sent now."""
    _require_running(setup)
    config = setup.topology.require_group(group)
    if not any(m.account == member.account for m in config.members):
        raise CommandRefused(f"account {member.account!r} does not follow group {group!r}")
    check_terms(setup.contracts, member)
    setup.store.write(lambda conn: setup_rows.update_terms(conn, group, member), wait=True)
    view: GroupView | None = setup.tree.view(addresses.group(group))
    current = {m.account: m for m in (view.members if view is not None else config.members)}
    reason = current[member.account].disable_reason if member.account in current else ""
    updated = replace(member, disable_reason=reason)
    config.members = [updated if m.account == member.account else m for m in config.members]
    setup.tree.tell(addresses.group(group), SetTerms(updated))
    setup.records.activity(
        Level.INFO,
        Kind.STATE_CHANGE,
        f"follower {member.account} of group {group}: ratio {member.ratio}, max_qty "
        f"{member.max_qty if member.max_qty is not None else 'none'}, symbol_map "
        f"{dict(member.symbol_map) or 'none'}, copy {member.copy}",
        account=member.account,
    )
    return updated


__all__ = [
    "Setup",
    "add_connection",
    "add_group",
    "check_add_connection",
    "check_terms",
    "delete_account",
    "delete_connection",
    "delete_group",
    "initial_state",
    "set_on_drift",
    "update_follower",
]
