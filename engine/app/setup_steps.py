"""A setup as the configuration file and the store are compared on (``engine/app/setup_diff.py``):
connections, accounts with their own risk keys and profile, groups with their followers' terms,
the named profiles (S9.7) and the blackouts (S9.5), as values; and the steps that change the
store's, each saying in words what it does, in the order they run.

A key set to what leaving it out does (``0`` for a number, ``"off"``, an empty table,
``static``) is held as absent, unless the account's profile sets that key (then the account's own
value overrides it): two setups that do the same are equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from engine.app.config import is_secret_key
from engine.domain.copying import CopyMode
from engine.domain.decimals import plain
from engine.domain.risk_profile import OFF, SHAPES, RiskValue, Shape, shown
from engine.domain.sessions import Blackout, BlackoutMode
from engine.domain.threshold import MaxLossMode
from engine.domain.watching import OnDrift

ZERO = Decimal(0)
REDACTED = "[redacted]"


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
    # Its own risk keys that do something (``own_keys``): S5.2 limits and S9 keys.
    limits: Mapping[str, RiskValue] = field(default_factory=dict)
    balance: Decimal = Decimal(50000)  # the starting balance: used when it is made
    profile: str | None = None  # the named profile it uses (S9.7)


@dataclass(frozen=True)
class Group:
    id: str
    leader: str
    followers: tuple[Follower, ...] = ()
    on_drift: OnDrift = OnDrift.ALERT  # S10.2

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
    profiles: Mapping[str, Mapping[str, RiskValue]] = field(default_factory=dict)
    blackouts: tuple[Blackout, ...] = ()  # by start

    def profile_value(self, account: Account, name: str) -> RiskValue | None:
        """The value the account's profile gives key ``name``, if any."""
        profile = self.profiles.get(account.profile) if account.profile else None
        return None if profile is None else profile.get(name)


def does_nothing(name: str, value: RiskValue) -> bool:
    """Whether key ``name`` set to ``value`` does what leaving it out does: ``0`` for a number
    (not ``max_loss_stop``, where 0 is a value), ``"off"``, an empty table, the default mode."""
    shape = SHAPES[name]
    if isinstance(value, Mapping):
        return not value
    if isinstance(value, str):
        if shape is Shape.MODE:
            return value == MaxLossMode.STATIC.value
        if shape is Shape.BLACKOUT:
            return value == BlackoutMode.OFF.value
        return value == OFF
    return shape is not Shape.STOP and value == ZERO


def own_keys(
    limits: Mapping[str, RiskValue], profile: Mapping[str, RiskValue] | None = None
) -> dict[str, RiskValue]:
    """The keys of ``limits`` that do something: a key set to what leaving it out does is left
    out, unless ``profile`` (the profile the account uses) sets it — the account's value then
    overrides the profile's."""
    profile = profile or {}
    return {
        name: value
        for name, value in limits.items()
        if name in SHAPES and (name in profile or not does_nothing(name, value))
    }


def set_limits(limits: Mapping[str, RiskValue]) -> dict[str, RiskValue]:
    """The keys that do something, of an account without a profile (or of a profile)."""
    return own_keys(limits)


def make_setup(
    connections: Mapping[str, Connection],
    accounts: Iterable[Account],
    groups: Mapping[str, Group],
    profiles: Mapping[str, Mapping[str, RiskValue]],
    blackouts: Iterable[Blackout],
) -> Setup:
    """A setup whose profiles and accounts hold only the keys that do something (``own_keys``),
    so that two setups that do the same compare equal."""
    kept = {name: set_limits(keys) for name, keys in profiles.items()}
    own = {
        a.id: replace(a, limits=own_keys(a.limits, kept.get(a.profile) if a.profile else None))
        for a in accounts
    }
    return Setup(connections, own, groups, kept, tuple(sorted(blackouts)))


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
        return f"create group {self.group.id}: {group_text(self.group)}"


@dataclass(frozen=True)
class AddFollower:
    group: str
    follower: Follower
    deletes = False

    def describe(self) -> str:
        return f"add {self.follower.account} to group {self.group}: {terms(self.follower)}"


@dataclass(frozen=True)
class SetOnDrift:
    """S10.2: what the group does when a follower drifts."""

    group: str
    on_drift: OnDrift
    deletes = False

    def describe(self) -> str:
        return f"group {self.group}: on_drift {self.on_drift}"


@dataclass(frozen=True)
class SetFollower:
    group: str
    follower: Follower
    deletes = False

    def describe(self) -> str:
        return f"follower {self.follower.account} of group {self.group}: {terms(self.follower)}"


@dataclass(frozen=True)
class SetLimits:
    """An account's own keys: those in ``limits`` set, those in ``removed`` removed (its
    profile's value, or none, applies)."""

    account: str
    limits: Mapping[str, RiskValue]
    removed: tuple[str, ...] = ()
    deletes = False

    def describe(self) -> str:
        parts = [f"{k}={value_text(v)}" for k, v in self.limits.items()]
        parts += [f"{k} removed" for k in self.removed]
        return f"limits of {self.account}: {', '.join(parts)} (at once)"


@dataclass(frozen=True)
class SetAccountProfile:
    account: str
    profile: str | None
    deletes = False

    def describe(self) -> str:
        return f"profile of {self.account}: {self.profile or 'none'} (at once)"


@dataclass(frozen=True)
class SetProfile:
    """A named profile made, or its keys set (``keys``) and removed (``removed``)."""

    profile: str
    keys: Mapping[str, RiskValue]
    removed: tuple[str, ...] = ()
    new: bool = False
    deletes = False

    def describe(self) -> str:
        parts = [f"{k}={value_text(v)}" for k, v in self.keys.items()]
        parts += [f"{k} removed" for k in self.removed]
        if self.new:
            return f"create profile {self.profile}: {', '.join(parts) or 'no keys'}"
        return f"profile {self.profile}: {', '.join(parts)} (at once, for its accounts)"


@dataclass(frozen=True)
class DeleteProfile:
    profile: str
    deletes = True

    def describe(self) -> str:
        return f"delete profile {self.profile}"


@dataclass(frozen=True)
class AddBlackout:
    blackout: Blackout
    deletes = False

    def describe(self) -> str:
        return f"add blackout {blackout_text(self.blackout)}"


@dataclass(frozen=True)
class RemoveBlackout:
    blackout: Blackout
    deletes = True

    def describe(self) -> str:
        return f"remove blackout {blackout_text(self.blackout)}"


Step = (
    DeleteGroup
    | RemoveFollower
    | DeleteAccount
    | DeleteConnection
    | RemoveBlackout
    | SetProfile
    | AddConnection
    | AddGroup
    | AddFollower
    | SetFollower
    | SetOnDrift
    | SetAccountProfile
    | SetLimits
    | AddBlackout
    | DeleteProfile
)
# The order the steps run in: what goes first (a follower leaves one group before it joins
# another), then what is made, outermost first (a profile before the accounts that use it),
# then what changes; a profile is deleted last, once no account uses it.
ORDER: tuple[type, ...] = (
    DeleteGroup,
    RemoveFollower,
    DeleteAccount,
    DeleteConnection,
    RemoveBlackout,
    SetProfile,
    AddConnection,
    AddGroup,
    AddFollower,
    SetFollower,
    SetOnDrift,
    SetAccountProfile,
    SetLimits,
    AddBlackout,
    DeleteProfile,
)


@dataclass(frozen=True)
class Plan:
    differences: tuple[Difference, ...]
    steps: tuple[Step, ...]

    @property
    def deletions(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.deletes)


# --- values in words ------------------------------------------------------------------------------


def value_text(value: RiskValue) -> str:
    """A risk key's value as written in a profile: ``2``, ``2.5``, ``15:10``, ``{ES 2.1}``."""
    return f"{{{shown(value)}}}" if isinstance(value, Mapping) else shown(value)


def blackout_text(blackout: Blackout) -> str:
    return f"{blackout.label}: {blackout.start.isoformat()} to {blackout.end.isoformat()}"


def max_qty_text(value: int | None) -> str:
    return "none" if value is None else str(value)


def symbol_map_text(pairs: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{a}={b}" for a, b in pairs) or "none"


def terms(follower: Follower) -> str:
    return (
        f"ratio {plain(follower.ratio)}, max_qty {max_qty_text(follower.max_qty)}, symbol_map"
        f" {symbol_map_text(follower.symbol_map)}, copy {follower.copy}"
    )


def group_text(group: Group) -> str:
    followers = "; ".join(f"{f.account} ({terms(f)})" for f in group.followers) or "none"
    return f"leader {group.leader}, followers {followers}, on_drift {group.on_drift}"


__all__ = [
    "ORDER",
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
    "does_nothing",
    "group_text",
    "make_setup",
    "max_qty_text",
    "own_keys",
    "set_limits",
    "symbol_map_text",
    "terms",
    "value_text",
]
