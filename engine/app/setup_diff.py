"""The configuration's setup against the store's: each difference, key by key, and the commands
that make the store match the file.

The file's ``[[connections]]``, ``[[accounts]]``, ``[[groups]]``, ``[profiles.NAME]`` and
``[[blackout]]`` seed an empty store; from then on the store is the truth and the setup changes
through commands (the API, the CLI, the Cockpit). So that an edit of the file is never lost in
silence, a start lists every difference (``engine/live/runner.py``) and ``python -m engine setup
diff|apply FILE`` (``engine/cli/setup.py``) shows them and applies them through the API's
commands.

What is compared: each connection and its broker; each account, its connection, its own risk
keys and the named profile it uses; each named profile and its keys (S9.7); the blackouts
(S9.5); each group, its leader and its followers with their terms. A key set to what leaving it
out does (``0`` for a number, ``"off"``, an empty table, ``static``) is the same as absent,
unless the account's profile sets that key (then the account's own value overrides it).
An account's ``balance`` is its starting balance, used when the account is made: from then on
its balance is its book's, moved by its trades, and is not compared (decision 0017).

The values compared and the steps are ``engine/app/setup_steps.py``'s. Pure: values in, values
out; the callers read the store, the API and the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.app.config import Config
from engine.app.setup_steps import (
    ORDER,
    REDACTED,
    Account,
    AddBlackout,
    AddConnection,
    AddFollower,
    AddGroup,
    Connection,
    DeleteAccount,
    DeleteConnection,
    DeleteGroup,
    DeleteProfile,
    Difference,
    Follower,
    Group,
    Plan,
    RemoveBlackout,
    RemoveFollower,
    SetAccountProfile,
    SetFollower,
    SetLimits,
    SetOnDrift,
    SetProfile,
    Setup,
    Step,
    blackout_text,
    group_text,
    make_setup,
    max_qty_text,
    set_limits,
    symbol_map_text,
    terms,
    value_text,
)
from engine.core.topology import Topology
from engine.domain.decimals import plain
from engine.domain.risk_profile import RISK_KEYS, RiskValue
from engine.domain.sessions import Blackout
from engine.storage.setup_rows import SetupRows

ABSENT = "(absent)"


def setup_of_config(config: Config) -> Setup | None:
    """The setup the file describes; ``None`` when it describes none (no ``[[connections]]``:
    the demo, or a file that leaves the setup to the store)."""
    if not config.connections:
        return None
    return make_setup(
        {c.id: Connection(c.id, c.broker or config.broker.kind) for c in config.connections},
        [Account(a.id, a.connection, a.limits, a.balance, a.profile) for a in config.accounts],
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
                g.on_drift,
            )
            for g in config.groups
        },
        config.profile_keys,
        config.blackouts,
    )


def setup_of_topology(topology: Topology | SetupRows) -> Setup:
    """The setup the store holds: the engine's topology, loaded from it, or its rows."""
    return make_setup(
        {c.id: Connection(c.id, c.broker) for c in topology.connections.values()},
        [
            Account(a.id, a.connection, a.limits, a.balance, a.profile)
            for a in topology.accounts.values()
        ],
        {
            g.id: Group(
                g.id,
                g.leader,
                tuple(
                    Follower(m.account, m.ratio, m.max_qty, tuple(sorted(m.symbol_map)), m.copy)
                    for m in g.members
                ),
                g.on_drift,
            )
            for g in topology.groups.values()
        },
        topology.profiles,
        topology.blackouts,
    )


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
        differences += _risk_keys(file, account, store, kept_account, steps)

    differences += _profiles(file, store, steps)
    differences += _blackouts(file, store, steps)

    for gid, group in store.groups.items():
        if gid not in file.groups:
            differences.append(Difference.of(f"groups[{gid}]", ABSENT, group_text(group)))
            steps.append(DeleteGroup(gid))
    for gid, group in file.groups.items():
        kept_group = store.groups.get(gid)
        if kept_group is None:
            differences.append(Difference.of(f"groups[{gid}]", group_text(group), ABSENT))
            steps.append(AddGroup(group))
            continue
        if kept_group.leader != group.leader:
            differences.append(
                Difference.of(f"groups[{gid}].leader", group.leader, kept_group.leader)
            )
            steps += [DeleteGroup(gid), AddGroup(group)]  # a group's leader is its identity
            continue
        if kept_group.on_drift is not group.on_drift:
            differences.append(
                Difference.of(
                    f"groups[{gid}].on_drift", group.on_drift.value, kept_group.on_drift.value
                )
            )
            steps.append(SetOnDrift(gid, group.on_drift))
        differences += _followers(group, kept_group, gone_accounts, steps)

    steps.sort(key=lambda s: ORDER.index(type(s)))
    return Plan(tuple(differences), tuple(steps))


def _followers(
    file: Group, store: Group, gone_accounts: set[str], steps: list[Step]
) -> Iterable[Difference]:
    gid = file.id
    for kept in store.followers:
        if file.follower(kept.account) is None:
            yield Difference.of(f"groups[{gid}].followers[{kept.account}]", ABSENT, terms(kept))
            if kept.account not in gone_accounts:  # else its deletion takes the membership
                steps.append(RemoveFollower(gid, kept.account))
    for follower in file.followers:
        key = f"groups[{gid}].followers[{follower.account}]"
        found = store.follower(follower.account)
        if found is None:
            yield Difference.of(key, terms(follower), ABSENT)
            steps.append(AddFollower(gid, follower))
            continue
        changed = False
        for name, want, have in (
            ("ratio", plain(follower.ratio), plain(found.ratio)),
            ("max_qty", max_qty_text(follower.max_qty), max_qty_text(found.max_qty)),
            ("symbol_map", symbol_map_text(follower.symbol_map), symbol_map_text(found.symbol_map)),
            ("copy", follower.copy.value, found.copy.value),
        ):
            same = follower.ratio == found.ratio if name == "ratio" else want == have
            if not same:
                changed = True
                yield Difference.of(f"{key}.{name}", want, have)
        if changed:
            steps.append(SetFollower(gid, follower))


def _risk_keys(
    file: Setup, account: Account, store: Setup, kept: Account, steps: list[Step]
) -> Iterable[Difference]:
    """An account's profile and own keys (S9.7), one difference each."""
    aid = account.id
    if account.profile != kept.profile:
        yield Difference.of(
            f"accounts[{aid}].profile", account.profile or "none", kept.profile or "none"
        )
        steps.append(SetAccountProfile(aid, account.profile))
    limits: dict[str, RiskValue] = {}
    removed: list[str] = []
    for name in RISK_KEYS:
        want, have = account.limits.get(name), kept.limits.get(name)
        if want == have:
            continue
        yield Difference.of(
            f"accounts[{aid}].limits.{name}", _own(file, account, name), _own(store, kept, name)
        )
        if want is None:
            removed.append(name)
        else:
            limits[name] = want
    if limits or removed:
        steps.append(SetLimits(aid, limits, tuple(removed)))


def _profiles(file: Setup, store: Setup, steps: list[Step]) -> Iterable[Difference]:
    for name, keys in store.profiles.items():
        if name not in file.profiles:
            yield Difference.of(f"profiles[{name}]", ABSENT, _keys_text(keys))
            steps.append(DeleteProfile(name))
    for name, keys in file.profiles.items():
        kept = store.profiles.get(name)
        if kept is None:
            yield Difference.of(f"profiles[{name}]", _keys_text(keys), ABSENT)
            steps.append(SetProfile(name, keys, new=True))
            continue
        changed: dict[str, RiskValue] = {}
        removed: list[str] = []
        for key in RISK_KEYS:
            want, have = keys.get(key), kept.get(key)
            if want != have:
                yield Difference.of(f"profiles[{name}].{key}", _value(want), _value(have))
                if want is None:
                    removed.append(key)
                else:
                    changed[key] = want
        if changed or removed:
            steps.append(SetProfile(name, changed, tuple(removed)))


def _blackouts(file: Setup, store: Setup, steps: list[Step]) -> Iterable[Difference]:
    wanted = {b.key(): b for b in file.blackouts}
    kept = {b.key(): b for b in store.blackouts}
    for key, blackout in kept.items():
        if key not in wanted:
            yield Difference.of(_blackout_key(blackout), ABSENT, blackout_text(blackout))
            steps.append(RemoveBlackout(blackout))
    for key, blackout in wanted.items():
        if key not in kept:
            yield Difference.of(_blackout_key(blackout), blackout_text(blackout), ABSENT)
            steps.append(AddBlackout(blackout))


# --- values in words ------------------------------------------------------------------------------


def _value(value: RiskValue | None) -> str:
    return "off" if value is None else value_text(value)


def _own(setup: Setup, account: Account, name: str) -> str:
    """An account's own key in words; absent, what applies instead (its profile's, or off)."""
    value = account.limits.get(name)
    if value is not None:
        return value_text(value)
    inherited = setup.profile_value(account, name)
    if inherited is None:
        return "off"
    return f"{value_text(inherited)} (profile {account.profile})"


def _keys_text(keys: Mapping[str, RiskValue]) -> str:
    return ", ".join(f"{k}={value_text(v)}" for k, v in keys.items()) or "no keys"


def _blackout_key(blackout: Blackout) -> str:
    return f"blackout[{blackout.label} {blackout.start.isoformat()}]"


def _connection_text(setup: Setup, cid: str) -> str:
    accounts = [a.id for a in setup.accounts.values() if a.connection == cid]
    return f"broker {setup.connections[cid].broker}, accounts {', '.join(accounts) or 'none'}"


def _account_text(account: Account) -> str:
    limits = ", ".join(f"{k}={value_text(v)}" for k, v in account.limits.items()) or "none"
    profile = f", profile {account.profile}" if account.profile else ""
    return f"on {account.connection}, limits {limits}{profile}"


__all__ = [
    "ABSENT",
    "REDACTED",
    "Account",
    "AddBlackout",
    "AddConnection",
    "AddFollower",
    "AddGroup",
    "Connection",
    "DeleteAccount",
    "DeleteConnection",
    "DeleteGroup",
    "DeleteProfile",
    "Difference",
    "Follower",
    "Group",
    "Plan",
    "RemoveBlackout",
    "RemoveFollower",
    "SetAccountProfile",
    "SetFollower",
    "SetLimits",
    "SetOnDrift",
    "SetProfile",
    "Setup",
    "Step",
    "blackout_text",
    "compare",
    "make_setup",
    "set_limits",
    "setup_of_config",
    "setup_of_topology",
    "value_text",
]
