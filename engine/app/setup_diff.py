"""The configuration's setup against the store's: each difference, key by key, and the commands
that make the store match the file.

The file's ``[[connections]]``, ``[[accounts]]`` and ``[[groups]]`` seed an empty store; from
then on the store is the truth and the setup changes through commands (the API, the CLI, the
Cockpit). So that an edit of the file is never lost in silence, a start lists every difference
(``engine/live/runner.py``) and ``python -m engine setup diff|apply FILE``
(``engine/cli/setup.py``) shows them and applies them through the API's commands.

What is compared: each connection and its broker; each account, its connection and its limits
(a limit absent or ``"0"`` is off); each group, its leader and its followers with their terms.
An account's ``balance`` is its starting balance, used when the account is made: from then on
its balance is its book's, moved by its trades, and is not compared (decision 0017).

Pure: values in, values out; the callers read the store, the API and the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from engine.app.config import Config, is_secret_key
from engine.core.topology import Topology
from engine.domain.copying import CopyMode
from engine.domain.decimals import plain
from engine.domain.risk_rules import LIMIT_NAMES
from engine.storage.setup_rows import SetupRows

ABSENT = "(absent)"
REDACTED = "[redacted]"
ZERO = Decimal(0)


# --- a setup, as values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Follower:
    account: str
    ratio: Decimal = Decimal(1)
    max_qty: int | None = None
    symbol_map: tuple[tuple[str, str], ...] = ()
    copy: CopyMode = CopyMode.FILLS


@dataclass(frozen=True)
class Account:
    id: str
    connection: str
    limits: Mapping[str, Decimal] = field(default_factory=dict)  # the limits on (not 0)
    balance: Decimal = Decimal(50000)  # the starting balance: used when it is made


@dataclass(frozen=True)
class Group:
    id: str
    leader: str
    followers: tuple[Follower, ...] = ()

    def follower(self, account: str) -> Follower | None:
        return next((f for f in self.followers if f.account == account), None)


@dataclass(frozen=True)
class Connection:
    id: str
    broker: str


@dataclass(frozen=True)
class Setup:
    connections: Mapping[str, Connection] = field(default_factory=dict)
    accounts: Mapping[str, Account] = field(default_factory=dict)
    groups: Mapping[str, Group] = field(default_factory=dict)


def set_limits(limits: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """The limits that are on: ``"0"`` and absent are both off."""
    return {name: value for name, value in limits.items() if value != ZERO}


def setup_of_config(config: Config) -> Setup | None:
    """The setup the file describes; ``None`` when it describes none (no ``[[connections]]``:
    the demo, or a file that leaves the setup to the store)."""
    if not config.connections:
        return None
    return Setup(
        {c.id: Connection(c.id, c.broker or config.broker.kind) for c in config.connections},
        {
            a.id: Account(a.id, a.connection, set_limits(a.limits), a.balance)
            for a in config.accounts
        },
        {
            g.id: Group(
                g.id,
                g.leader,
                tuple(
                    Follower(
                        f.account,
                        f.ratio,
                        f.max_qty,
                        tuple(sorted(f.symbol_map.items())),
                        f.copy_mode,
                    )
                    for f in g.followers
                ),
            )
            for g in config.groups
        },
    )


def setup_of_topology(topology: Topology | SetupRows) -> Setup:
    """The setup the store holds: the engine's topology, loaded from it, or its rows."""
    return Setup(
        {c.id: Connection(c.id, c.broker) for c in topology.connections.values()},
        {
            a.id: Account(a.id, a.connection, set_limits(a.limits), a.balance)
            for a in topology.accounts.values()
        },
        {
            g.id: Group(
                g.id,
                g.leader,
                tuple(
                    Follower(m.account, m.ratio, m.max_qty, tuple(sorted(m.symbol_map)), m.copy)
                    for m in g.members
                ),
            )
            for g in topology.groups.values()
        },
    )


# --- what differs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One key whose value in the file is not the store's; ``why_not`` says why ``setup apply``
    cannot make it so ("" when it can)."""

    key: str
    file: str
    store: str
    why_not: str = ""

    @classmethod
    def of(cls, key: str, file: str, store: str, why_not: str = "") -> Difference:
        """With the values of a key named like a secret replaced: a diff is shown and logged."""
        if _secret(key):
            file, store = (REDACTED, REDACTED) if file != store else (file, store)
        return cls(key, file, store, why_not)


def _secret(key: str) -> bool:
    name = re.sub(r"\[[^\]]*\]", "", key).rsplit(".", 1)[-1]
    return is_secret_key(name)


# --- the commands that apply them -----------------------------------------------------------------


@dataclass(frozen=True)
class DeleteGroup:
    group: str
    deletes = True

    def describe(self) -> str:
        return f"delete group {self.group} (its accounts stay and copy nothing)"


@dataclass(frozen=True)
class RemoveFollower:
    group: str
    account: str
    deletes = True

    def describe(self) -> str:
        return f"remove follower {self.account} from group {self.group}"


@dataclass(frozen=True)
class DeleteAccount:
    account: str
    deletes = True

    def describe(self) -> str:
        return f"delete account {self.account}"


@dataclass(frozen=True)
class DeleteConnection:
    connection: str
    deletes = True

    def describe(self) -> str:
        return f"delete connection {self.connection} with its accounts"


@dataclass(frozen=True)
class AddConnection:
    connection: Connection
    accounts: tuple[Account, ...]
    deletes = False

    def describe(self) -> str:
        accounts = ", ".join(a.id for a in self.accounts) or "none"
        return (
            f"add connection {self.connection.id} ({self.connection.broker}) with accounts"
            f" {accounts}"
        )


@dataclass(frozen=True)
class AddGroup:
    group: Group
    deletes = False

    def describe(self) -> str:
        return f"create group {self.group.id}: {_group_text(self.group)}"


@dataclass(frozen=True)
class AddFollower:
    group: str
    follower: Follower
    deletes = False

    def describe(self) -> str:
        return f"add {self.follower.account} to group {self.group}: {_terms(self.follower)}"


@dataclass(frozen=True)
class SetFollower:
    group: str
    follower: Follower
    deletes = False

    def describe(self) -> str:
        return f"follower {self.follower.account} of group {self.group}: {_terms(self.follower)}"


@dataclass(frozen=True)
class SetLimits:
    account: str
    limits: Mapping[str, Decimal]  # "0" switches one off
    deletes = False

    def describe(self) -> str:
        text = ", ".join(f"{k}={plain(v)}" for k, v in self.limits.items())
        return f"limits of {self.account}: {text} (at once)"


Step = (
    DeleteGroup
    | RemoveFollower
    | DeleteAccount
    | DeleteConnection
    | AddConnection
    | AddGroup
    | AddFollower
    | SetFollower
    | SetLimits
)
# The order the steps run in: what goes first (a follower leaves one group before it joins
# another), then what is made, outermost first, then what changes.
ORDER: tuple[type, ...] = (
    DeleteGroup,
    RemoveFollower,
    DeleteAccount,
    DeleteConnection,
    AddConnection,
    AddGroup,
    AddFollower,
    SetFollower,
    SetLimits,
)


@dataclass(frozen=True)
class Plan:
    differences: tuple[Difference, ...]
    steps: tuple[Step, ...]

    @property
    def deletions(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.deletes)


# --- comparing ------------------------------------------------------------------------------------

ACCOUNT_WITH_CONNECTION = (
    "an account is added only with its connection (a login's broker session holds its"
    " accounts): add it with the API or the Cockpit as a new connection, or keep the file as"
    " the store has it"
)
NO_MOVE = (
    "an account stays on the connection it was added with: delete it (python -m engine accounts"
    " delete {account}) and apply again"
)
BROKER_FIXED = (
    "a connection's broker is fixed when it is added: delete the connection (python -m engine"
    " connections delete {connection}) and apply again"
)


def compare(file: Setup, store: Setup) -> Plan:
    """Every difference between the file's setup and the store's, and the steps that make the
    store the file's, in the order they run."""
    differences: list[Difference] = []
    steps: list[Step] = []
    gone_connections = [c for c in store.connections if c not in file.connections]
    new_connections = [c for c in file.connections if c not in store.connections]

    for cid in gone_connections:
        differences.append(
            Difference.of(f"connections[{cid}]", ABSENT, _connection_text(store, cid))
        )
        steps.append(DeleteConnection(cid))
    for cid in new_connections:
        differences.append(
            Difference.of(f"connections[{cid}]", _connection_text(file, cid), ABSENT)
        )
        accounts = tuple(a for a in file.accounts.values() if a.connection == cid)
        steps.append(AddConnection(file.connections[cid], accounts))
    for cid, connection in file.connections.items():
        kept = store.connections.get(cid)
        if kept is not None and kept.broker != connection.broker:
            differences.append(
                Difference.of(
                    f"connections[{cid}].broker",
                    connection.broker,
                    kept.broker,
                    BROKER_FIXED.format(connection=cid),
                )
            )

    gone_accounts = {a for a in store.accounts if a not in file.accounts}
    for aid in store.accounts:
        if aid in gone_accounts:
            account = store.accounts[aid]
            differences.append(Difference.of(f"accounts[{aid}]", ABSENT, _account_text(account)))
            if account.connection not in gone_connections:
                steps.append(DeleteAccount(aid))
    for aid, account in file.accounts.items():
        kept_account = store.accounts.get(aid)
        if kept_account is None:
            why = "" if account.connection in new_connections else ACCOUNT_WITH_CONNECTION
            differences.append(
                Difference.of(f"accounts[{aid}]", _account_text(account), ABSENT, why)
            )
            continue
        if kept_account.connection != account.connection:
            differences.append(
                Difference.of(
                    f"accounts[{aid}].connection",
                    account.connection,
                    kept_account.connection,
                    NO_MOVE.format(account=aid),
                )
            )
        limits: dict[str, Decimal] = {}
        for name in LIMIT_NAMES:
            want, have = account.limits.get(name), kept_account.limits.get(name)
            if want != have:
                differences.append(
                    Difference.of(f"accounts[{aid}].limits.{name}", _limit(want), _limit(have))
                )
                limits[name] = want if want is not None else ZERO
        if limits:
            steps.append(SetLimits(aid, limits))

    for gid, group in store.groups.items():
        if gid not in file.groups:
            differences.append(Difference.of(f"groups[{gid}]", ABSENT, _group_text(group)))
            steps.append(DeleteGroup(gid))
    for gid, group in file.groups.items():
        kept_group = store.groups.get(gid)
        if kept_group is None:
            differences.append(Difference.of(f"groups[{gid}]", _group_text(group), ABSENT))
            steps.append(AddGroup(group))
            continue
        if kept_group.leader != group.leader:
            differences.append(
                Difference.of(f"groups[{gid}].leader", group.leader, kept_group.leader)
            )
            steps += [DeleteGroup(gid), AddGroup(group)]  # a group's leader is its identity
            continue
        differences += _followers(group, kept_group, gone_accounts, steps)

    steps.sort(key=lambda s: ORDER.index(type(s)))
    return Plan(tuple(differences), tuple(steps))


def _followers(
    file: Group, store: Group, gone_accounts: set[str], steps: list[Step]
) -> Iterable[Difference]:
    gid = file.id
    for kept in store.followers:
        if file.follower(kept.account) is None:
            yield Difference.of(f"groups[{gid}].followers[{kept.account}]", ABSENT, _terms(kept))
            if kept.account not in gone_accounts:  # else its deletion takes the membership
                steps.append(RemoveFollower(gid, kept.account))
    for follower in file.followers:
        key = f"groups[{gid}].followers[{follower.account}]"
        found = store.follower(follower.account)
        if found is None:
            yield Difference.of(key, _terms(follower), ABSENT)
            steps.append(AddFollower(gid, follower))
            continue
        changed = False
        for name, want, have in (
            ("ratio", plain(follower.ratio), plain(found.ratio)),
            ("max_qty", _max_qty(follower.max_qty), _max_qty(found.max_qty)),
            ("symbol_map", _symbol_map(follower.symbol_map), _symbol_map(found.symbol_map)),
            ("copy", follower.copy.value, found.copy.value),
        ):
            same = follower.ratio == found.ratio if name == "ratio" else want == have
            if not same:
                changed = True
                yield Difference.of(f"{key}.{name}", want, have)
        if changed:
            steps.append(SetFollower(gid, follower))


# --- values in words ------------------------------------------------------------------------------


def _limit(value: Decimal | None) -> str:
    return "off" if value is None else plain(value)


def _max_qty(value: int | None) -> str:
    return "none" if value is None else str(value)


def _symbol_map(pairs: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{a}={b}" for a, b in pairs) or "none"


def _terms(follower: Follower) -> str:
    return (
        f"ratio {plain(follower.ratio)}, max_qty {_max_qty(follower.max_qty)}, symbol_map"
        f" {_symbol_map(follower.symbol_map)}, copy {follower.copy}"
    )


def _connection_text(setup: Setup, cid: str) -> str:
    accounts = [a.id for a in setup.accounts.values() if a.connection == cid]
    return f"broker {setup.connections[cid].broker}, accounts {', '.join(accounts) or 'none'}"


def _account_text(account: Account) -> str:
    limits = ", ".join(f"{k}={plain(v)}" for k, v in account.limits.items()) or "none"
    return f"on {account.connection}, limits {limits}"


def _group_text(group: Group) -> str:
    followers = "; ".join(f"{f.account} ({_terms(f)})" for f in group.followers) or "none"
    return f"leader {group.leader}, followers {followers}"


__all__ = [
    "ABSENT",
    "REDACTED",
    "Account",
    "AddConnection",
    "AddFollower",
    "AddGroup",
    "Connection",
    "DeleteAccount",
    "DeleteConnection",
    "DeleteGroup",
    "Difference",
    "Follower",
    "Group",
    "Plan",
    "RemoveFollower",
    "SetFollower",
    "SetLimits",
    "Setup",
    "Step",
    "compare",
    "set_limits",
    "setup_of_config",
    "setup_of_topology",
]
