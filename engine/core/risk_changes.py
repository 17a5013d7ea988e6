"""Commands that change the risk keys while the engine runs: an account's own keys, the named
profiles (S9.7) and which one an account uses, and the engine-wide blackouts (S9.5).

Each is the engine's command of the same name (``Engine.set_risk`` …, journaled there) and
follows the engine's rule for commands: checked first (every value through
``risk_profile.parse_value``), written to the store (waited for), applied to the in-memory
topology, and only then told to the actors. An account whose effective keys changed (its
profile's overridden by its own) gets them whole at its risk actor (``SetLimits``, with the keys
this change set, which re-arm) and as rules at its account actor (``SetRules``: the
commissions its book charges, S9.1); a blackout change sends every risk actor the whole list
(``SetBlackouts``). Nothing here sends an order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping

from actors import addresses
from actors.messages.account import SetRules
from actors.messages.risk import SetBlackouts, SetLimits
from engine.core.setup_changes import Setup
from engine.core.topology import CommandRefused, Topology
from engine.domain import risk_profile
from engine.domain.risk_profile import RISK_KEYS, RiskRules, RiskValue, RiskValueError
from engine.domain.sessions import Blackout
from engine.domain.setup import ID_FORM, is_id
from engine.storage import setup_rows


def checked(values: Mapping[str, object], where: str) -> dict[str, RiskValue]:
    """Every key of ``values`` as ``risk_profile.parse_value`` takes it; the first one that is
    not refuses the command, saying where (``account 'F1'``) and what."""
    if not isinstance(values, Mapping):
        raise CommandRefused(f"{where}: expected a table of risk keys, got {values!r}")
    out: dict[str, RiskValue] = {}
    for name, raw in values.items():
        try:
            out[str(name)] = risk_profile.parse_value(str(name), raw)
        except RiskValueError as error:
            raise CommandRefused(f"{where}: {error}") from None
    return out


def checked_names(names: Iterable[str], where: str) -> tuple[str, ...]:
    """``names`` as risk keys (each once, in the order given); an unknown one refuses."""
    if isinstance(names, str):
        names = (names,)
    out: list[str] = []
    for name in names:
        if name not in RISK_KEYS:
            raise CommandRefused(
                f"{where}: unknown risk key {name!r}; expected one of: {', '.join(RISK_KEYS)}"
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def _check_profile_name(name: object) -> str:
    if not is_id(name):
        raise CommandRefused(f"profile name {name!r}: expected {ID_FORM}")
    assert isinstance(name, str)
    return name


def _tell_keys(setup: Setup, account: str, changed: Iterable[str]) -> None:
    """The account's effective keys, whole, to its risk actor (``changed`` re-arm) and as rules
    to its account actor."""
    if not setup.running:
        return  # the actors are built from the store at the start
    effective = setup.topology.effective(account)
    setup.tree.tell(addresses.risk(account), SetLimits(effective, tuple(changed)))
    setup.tree.tell(addresses.account(account), SetRules(RiskRules.of(effective)))


# --- an account's own keys ---------------------------------------------------------------------


def set_risk(setup: Setup, account: str, values: Mapping[str, object]) -> None:
    """The account's own keys given are set (``0`` turns a number off, S5.2); the others stay."""
    config = setup.topology.require_account(account)
    keys = checked(values, f"account {account!r}")
    setup.store.write(lambda conn: setup_rows.write_limits(conn, account, keys), wait=True)
    config.limits.update(keys)
    _tell_keys(setup, account, keys)


def unset_risk(setup: Setup, account: str, names: Iterable[str]) -> tuple[str, ...]:
    """The account's own keys named are removed: its profile's value, or none, applies. Returns
    the keys removed (a key it did not set is left out)."""
    config = setup.topology.require_account(account)
    removed = tuple(n for n in checked_names(names, f"account {account!r}") if n in config.limits)
    if not removed:
        return removed
    setup.store.write(lambda conn: setup_rows.delete_limits(conn, account, removed), wait=True)
    for name in removed:
        del config.limits[name]
    _tell_keys(setup, account, removed)
    return removed


def set_account_profile(setup: Setup, account: str, profile: str | None) -> None:
    """The account uses ``profile`` (``None``: none) from now on; the keys whose effective value
    this changes are told."""
    topology = setup.topology
    config = topology.require_account(account)
    if profile is not None:
        topology.require_profile(profile)
    before = topology.effective(account)
    setup.store.write(
        lambda conn: setup_rows.set_account_profile(conn, account, profile), wait=True
    )
    config.profile = profile
    after = topology.effective(account)
    changed = [k for k in RISK_KEYS if before.get(k) != after.get(k)]
    if changed:
        _tell_keys(setup, account, changed)


# --- named profiles (S9.7) ---------------------------------------------------------------------


def set_profile(setup: Setup, profile: str, values: Mapping[str, object]) -> None:
    """The profile made if it is new, and the keys given set in it. Every account using it that
    does not override a key given is told its new keys."""
    name = _check_profile_name(profile)
    keys = checked(values, f"profile {name!r}")
    setup.store.write(lambda conn: setup_rows.write_profile(conn, name, keys), wait=True)
    topology = setup.topology
    topology.profiles.setdefault(name, {}).update(keys)
    _tell_users(setup, topology, name, keys)


def unset_profile_keys(setup: Setup, profile: str, names: Iterable[str]) -> tuple[str, ...]:
    """The profile's keys named are removed; returns those it had."""
    topology = setup.topology
    keys = topology.require_profile(profile)
    named = checked_names(names, f"profile {profile!r}")
    removed = tuple(n for n in named if n in keys)
    if not removed:
        return removed
    setup.store.write(
        lambda conn: setup_rows.delete_profile_keys(conn, profile, removed), wait=True
    )
    for name in removed:
        del keys[name]
    _tell_users(setup, topology, profile, removed)
    return removed


def _tell_users(setup: Setup, topology: Topology, profile: str, names: Iterable[str]) -> None:
    names = tuple(names)
    for account in topology.users_of(profile):
        own = topology.accounts[account].limits
        changed = [n for n in names if n not in own]  # an own key overrides the profile's
        if changed:
            _tell_keys(setup, account, changed)


def delete_profile(setup: Setup, profile: str) -> None:
    """The profile goes; refused while an account uses it."""
    topology = setup.topology
    topology.require_profile(profile)
    users = topology.users_of(profile)
    if users:
        raise CommandRefused(
            f"profile {profile!r} is used by {', '.join(users)}: give"
            f" {'them' if len(users) > 1 else 'it'} another profile, or none, first"
        )
    setup.store.write(lambda conn: setup_rows.delete_profile(conn, profile), wait=True)
    del topology.profiles[profile]


# --- blackouts (S9.5) --------------------------------------------------------------------------


def add_blackout(setup: Setup, blackout: Blackout) -> None:
    topology = setup.topology
    topology.check_new_blackout(blackout)
    setup.store.write(lambda conn: setup_rows.insert_blackout(conn, blackout), wait=True)
    topology.blackouts = sorted([*topology.blackouts, blackout])
    _tell_blackouts(setup)


def remove_blackout(setup: Setup, key: str) -> Blackout:
    """The blackout whose ``Blackout.key()`` is ``key`` goes; returns it."""
    topology = setup.topology
    gone = topology.blackout(key)
    setup.store.write(lambda conn: setup_rows.delete_blackout(conn, key), wait=True)
    topology.blackouts = [b for b in topology.blackouts if b.key() != key]
    _tell_blackouts(setup)
    return gone


def _tell_blackouts(setup: Setup) -> None:
    if not setup.running:
        return
    every = tuple(sorted(setup.topology.blackouts))
    for account in setup.topology.accounts:
        setup.tree.tell(addresses.risk(account), SetBlackouts(every))


# --- the initial setup -------------------------------------------------------------------------


def check_seed(
    staged: Topology, profiles: Mapping[str, Mapping[str, object]], blackouts: Iterable[Blackout]
) -> tuple[dict[str, dict[str, RiskValue]], list[Blackout]]:
    """The profiles and blackouts of an initial setup, checked and put in ``staged`` (before its
    accounts, which may name a profile)."""
    for name, values in profiles.items():
        staged.profiles[_check_profile_name(name)] = checked(values, f"profile {name!r}")
    for blackout in blackouts:
        staged.check_new_blackout(blackout)
        staged.blackouts = sorted([*staged.blackouts, blackout])
    return staged.profiles, staged.blackouts


def write_seed(
    conn: sqlite3.Connection,
    profiles: Mapping[str, Mapping[str, RiskValue]],
    blackouts: Iterable[Blackout],
) -> None:
    for name, keys in profiles.items():
        setup_rows.write_profile(conn, name, keys)
    for blackout in blackouts:
        setup_rows.insert_blackout(conn, blackout)


__all__ = [
    "add_blackout",
    "check_seed",
    "checked",
    "checked_names",
    "delete_profile",
    "remove_blackout",
    "set_account_profile",
    "set_profile",
    "set_risk",
    "unset_profile_keys",
    "unset_risk",
    "write_seed",
]
