"""Connections, accounts, groups and memberships, the named risk profiles and the blackouts:
the configuration the actor tree is built from.

Holds the rules that keep it whole (an account in at most one group, no group without its
leader, no membership pointing at a missing account: S4.3; no account using a missing profile)
and what a deletion cascades to. A change is checked here first, written to the store in one
transaction (``engine.storage.setup_rows``), and only then told to the actors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.domain import risk_profile
from engine.domain.copying import Membership
from engine.domain.risk_profile import RiskValue
from engine.domain.sessions import Blackout
from engine.domain.setup import AccountConfig, ConnectionConfig, GroupConfig
from engine.storage import setup_rows
from engine.storage.store import Store


class CommandRefused(Exception):
    """A command the rules forbid; the message is the reason, shown to the user as is."""


class UnknownId(CommandRefused):
    """A command names a connection, account or group that does not exist."""


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting a connection removes (S4.1, S4.2)."""

    connection: str
    accounts: tuple[str, ...]
    groups: tuple[str, ...]  # led by a deleted account: removed whole
    memberships: tuple[tuple[str, str], ...]  # (group, follower) removed from surviving groups
    orphaned_followers: tuple[tuple[str, str], ...]  # (group, follower) of the removed groups


@dataclass(frozen=True)
class AccountDeletion:
    """What deleting an account removes (S4.2): the groups it leads, whole, and its own
    membership; the followers of those groups are left without a group."""

    account: str
    connection: str
    groups: tuple[str, ...]
    memberships: tuple[tuple[str, str], ...]  # (group, account) removed from surviving groups
    orphaned_followers: tuple[tuple[str, str], ...]  # (group, follower) of the removed groups


class Topology:
    def __init__(self) -> None:
        self.connections: dict[str, ConnectionConfig] = {}
        self.accounts: dict[str, AccountConfig] = {}
        self.groups: dict[str, GroupConfig] = {}
        self.profiles: dict[str, dict[str, RiskValue]] = {}  # S9.7: name -> its keys
        self.blackouts: list[Blackout] = []  # S9.5: engine-wide, sorted

    def snapshot(self) -> Topology:
        """A copy to read on another thread while commands change this one: each table is
        copied at once, then each entry (limits, profiles' keys and members too)."""
        copy = Topology()
        copy.connections = {k: replace(c) for k, c in dict(self.connections).items()}
        copy.accounts = {
            k: replace(a, limits=dict(a.limits)) for k, a in dict(self.accounts).items()
        }
        copy.groups = {k: replace(g, members=list(g.members)) for k, g in dict(self.groups).items()}
        copy.profiles = {k: dict(keys) for k, keys in dict(self.profiles).items()}
        copy.blackouts = list(self.blackouts)
        return copy

    # -- queries ---------------------------------------------------------------------------------

    def effective(self, account: str) -> dict[str, RiskValue]:
        """S9.7: the account's risk keys in effect: its profile's, overridden key by key by its
        own."""
        config = self.require_account(account)
        profile = self.profiles.get(config.profile) if config.profile is not None else None
        return risk_profile.resolve(profile, config.limits)

    def users_of(self, profile: str) -> list[str]:
        """The accounts using ``profile``, in the order they were made."""
        return [a.id for a in self.accounts.values() if a.profile == profile]

    def require_profile(self, profile: str) -> dict[str, RiskValue]:
        if profile not in self.profiles:
            raise UnknownId(f"unknown profile {profile!r}")
        return self.profiles[profile]

    def blackout(self, key: str) -> Blackout:
        """The blackout whose ``key()`` is ``key``."""
        for b in self.blackouts:
            if b.key() == key:
                return b
        raise UnknownId(f"unknown blackout {key!r}")

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
        if account.profile is not None and account.profile not in self.profiles:
            raise CommandRefused(
                f"account {account.id!r}: unknown profile {account.profile!r}"
                f" (profiles: {', '.join(self.profiles) or 'none'})"
            )

    def check_new_blackout(self, blackout: Blackout) -> None:
        if not isinstance(blackout, Blackout):
            raise CommandRefused(f"not a blackout: {blackout!r}")
        if any(b.key() == blackout.key() for b in self.blackouts):
            raise CommandRefused(f"blackout {blackout.key()!r} already exists")

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

    def plan_delete_account(self, account: str) -> AccountDeletion:
        config = self.require_account(account)
        groups = tuple(g.id for g in self.groups.values() if g.leader == account)
        memberships = tuple(
            (g.id, account)
            for g in self.groups.values()
            if g.id not in groups and any(m.account == account for m in g.members)
        )
        orphaned = tuple((g, m.account) for g in groups for m in self.groups[g].members)
        return AccountDeletion(account, config.connection, groups, memberships, orphaned)

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
    """The topology as the store holds it now."""
    rows = setup_rows.load(store)
    topology = Topology()
    topology.connections, topology.accounts, topology.groups = (
        rows.connections,
        rows.accounts,
        rows.groups,
    )
    topology.profiles, topology.blackouts = rows.profiles, rows.blackouts
    return topology


__all__ = [
    "AccountConfig",
    "AccountDeletion",
    "CommandRefused",
    "ConnectionConfig",
    "DeletionPlan",
    "GroupConfig",
    "Topology",
    "UnknownId",
    "load",
]
