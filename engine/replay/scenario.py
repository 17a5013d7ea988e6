"""Scenario files (SCENARIOS.md): parse and fully validate one into frozen values.

The whole file is checked before anything runs. Any problem raises :class:`ScenarioError`, whose
message names the file, the place (``step 7: trade.qty``, ``[[group]] 2 (g2): followers``) and
what is wrong; its ``errors`` hold every problem the file has, each entry and step checked on its
own (an entry with a problem still declares its id, so what refers to it is not wrong too).
Numbers are parsed exactly, as :class:`~decimal.Decimal`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from brokers.instruments import Contract, ContractTable
from engine.domain.risk_profile import RiskValue
from engine.domain.sessions import Blackout
from engine.domain.watching import ON_DRIFT_CHOICES, OnDrift, WatchSettings
from engine.replay.scenario_fields import (
    Invalid,
    Problems,
    Where,
    as_choice,
    as_duration,
    as_id,
    as_non_negative,
    as_offset_datetime,
    as_positive,
    as_ref,
    as_root_name,
    as_str,
    check_keys,
    table,
    table_list,
)
from engine.replay.scenario_orders import (
    CancelStep,
    Declared,
    ModifyStep,
    OcoStep,
    OrderRef,
    OrderStep,
    WorkingSpec,
)
from engine.replay.scenario_risk import SetRiskStep, parse_blackout, parse_risk
from engine.replay.scenario_steps import (
    CONNECTION_STATES,
    AddFollowerStep,
    CrashStep,
    Expectation,
    FailSnapshotStep,
    FollowerSpec,
    PriceStep,
    RejectNextStep,
    RemoveFollowerStep,
    Step,
    TradeStep,
    parse_follower,
    parse_steps,
)

__all__ = [
    "DEFAULT_START",
    "AccountSpec",
    "AddFollowerStep",
    "CancelStep",
    "ConnectionSpec",
    "CrashStep",
    "Expectation",
    "FailSnapshotStep",
    "FollowerSpec",
    "GroupSpec",
    "InstrumentSpec",
    "ModifyStep",
    "OcoStep",
    "OrderRef",
    "OrderStep",
    "PriceStep",
    "RejectNextStep",
    "RemoveFollowerStep",
    "Scenario",
    "ScenarioError",
    "ScenarioSettings",
    "SetRiskStep",
    "Step",
    "TradeStep",
    "WorkingSpec",
    "collect_paths",
    "load_scenario",
    "parse_scenario",
]

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone(timedelta(hours=-6)))  # a Monday
DEFAULT_BALANCE = Decimal(50000)
BROKERS = ("paper", "tradovate-sim")
TOP_KEYS = (
    "name",
    "description",
    "start",
    "instrument",
    "connection",
    "account",
    "group",
    "blackout",
    "settings",
    "step",
)
SETTINGS_KEYS = (
    "max_copy_age",
    "mirror_grace",
    "drift_grace",
    "drift_check",
    "copy_fill_timeout",
    "stale_prices_after",
)
_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


class ScenarioError(Exception):
    """An invalid scenario file; ``str()`` is ``<file>: <place>: <what is wrong>`` of its first
    problem, ``errors`` every problem it has (this one first), in the file's order."""

    def __init__(
        self, file: str, place: str, problem: str, more: tuple[ScenarioError, ...] = ()
    ) -> None:
        super().__init__(f"{file}: {place}: {problem}")
        self.file = file
        self.place = place
        self.problem = problem
        self.errors: tuple[ScenarioError, ...] = (self, *more)


@dataclass(frozen=True)
class InstrumentSpec:
    root: str
    point_value: Decimal
    tick_size: Decimal


@dataclass(frozen=True)
class ConnectionSpec:
    id: str
    broker: str = "paper"
    state: str = "connected"


@dataclass(frozen=True)
class AccountSpec:
    id: str
    connection: str
    balance: Decimal = DEFAULT_BALANCE
    # The risk keys the file set (S5.2 limits, S9 keys), by name, checked as the engine takes
    # them; a key not given is not in it.
    risk: Mapping[str, RiskValue] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupSpec:
    id: str
    leader: str
    followers: tuple[FollowerSpec, ...] = ()
    on_drift: OnDrift = OnDrift.ALERT  # S10.2


@dataclass(frozen=True)
class ScenarioSettings:
    """The engine timings ``[settings]`` may set, SEMANTICS' defaults where it does not."""

    max_copy_age: timedelta = timedelta(seconds=10)  # S2.9
    mirror_grace: timedelta = timedelta(seconds=2)  # S8.4
    drift_grace: timedelta = timedelta(seconds=5)  # S10.1
    drift_check: timedelta = timedelta(seconds=10)  # S10.1
    copy_fill_timeout: timedelta = timedelta(seconds=5)  # S10.3
    stale_prices_after: timedelta = timedelta(seconds=30)  # S10.3

    def watch(self) -> WatchSettings:
        return WatchSettings(
            self.drift_grace, self.drift_check, self.copy_fill_timeout, self.stale_prices_after
        )


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    file: str
    start: datetime
    instruments: tuple[InstrumentSpec, ...]
    connections: tuple[ConnectionSpec, ...]
    accounts: tuple[AccountSpec, ...]
    groups: tuple[GroupSpec, ...]
    steps: tuple[Step, ...]
    settings: ScenarioSettings = ScenarioSettings()
    blackouts: tuple[Blackout, ...] = ()  # S9.5: the engine-wide intervals of the setup

    def contract_table(self) -> ContractTable:
        """The built-in contracts plus this file's ``[[instrument]]`` entries."""
        return ContractTable(Contract(i.root, i.point_value, i.tick_size) for i in self.instruments)


def collect_paths(paths: list[str]) -> list[Path]:
    """Each PATH is a ``.toml`` file or a folder, which stands for its ``*.toml`` files by name."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found.extend(sorted((p for p in path.glob("*.toml") if p.is_file()), key=_name))
        elif path.is_file():
            if path.suffix != ".toml":
                raise ScenarioError(text, "path", "is not a .toml file or a folder")
            found.append(path)
        else:
            raise ScenarioError(text, "path", "no such file or folder")
    return found


def _name(path: Path) -> str:
    return path.name


def load_scenario(path: str | Path) -> Scenario:
    file = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ScenarioError(file, "file", f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(file, "file", f"is not UTF-8 text: {exc.reason}") from None
    return parse_scenario(text, file)


def parse_scenario(text: str, file: str) -> Scenario:
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except ValueError as exc:  # TOMLDecodeError, or an integer too long to convert
        message = str(exc)
        at = _TOML_AT.search(message)
        place = f"line {at[1]}, column {at[2]}" if at else "file"
        problem = _TOML_AT.sub("", message)
        raise ScenarioError(file, place, f"not valid TOML: {problem}") from None
    except RecursionError:
        raise ScenarioError(file, "file", "not valid TOML: nested too deeply") from None
    try:
        return _scenario(data, file)
    except Invalid as exc:
        first, *rest = (ScenarioError(file, str(e.place), e.problem) for e in exc.every())
        raise ScenarioError(file, first.place, first.problem, tuple(rest)) from None


T = TypeVar("T")


def _scenario(data: dict[str, Any], file: str) -> Scenario:
    problems = Problems()
    top = Where()
    problems.check(check_keys, data, top, TOP_KEYS, ("name",))
    name = problems.check(as_id, data["name"], top.key("name")) if "name" in data else None
    description = problems.check(as_str, data.get("description", ""), top.key("description"))
    start = DEFAULT_START
    if "start" in data:
        start = problems.check(as_offset_datetime, data["start"], top.key("start")) or start
    settings = problems.check(_settings, data.get("settings", {}), Where("[settings]"))
    # An entry with a problem still declares its id (an instrument: its root, with stand-in
    # values the file never runs with), so what refers to it is not reported as well.
    instruments = _read(problems, data, "instrument", _instrument, "root")
    stand_ins = [InstrumentSpec(root, Decimal(1), Decimal(1)) for root in instruments[1]]
    contracts = ContractTable(
        Contract(i.root, i.point_value, i.tick_size) for i in (*instruments[0], *stand_ins)
    )
    connections = _read(problems, data, "connection", _connection)
    connection_ids = frozenset(c.id for c in connections[0]) | frozenset(connections[1])
    accounts = _read(problems, data, "account", partial(_account, connections=connection_ids))
    account_ids = frozenset(a.id for a in accounts[0]) | frozenset(accounts[1])
    declared = Declared(contracts, connection_ids, account_ids, frozenset(), start)
    groups = _read(problems, data, "group", partial(_group, declared=declared))
    declared = replace(declared, groups=frozenset(g.id for g in groups[0]) | set(groups[1]))
    problems.check(_one_group_each, groups[0])
    blackouts = problems.check(_blackouts, data)
    steps = problems.check(_steps, data, top, declared)
    problems.raise_any()
    return Scenario(
        name or "",
        description or "",
        file,
        start,
        instruments[0],
        connections[0],
        accounts[0],
        groups[0],
        steps or (),
        settings or ScenarioSettings(),
        blackouts or (),
    )


def _settings(value: object, where: Where) -> ScenarioSettings:
    tbl = table(value, where)
    check_keys(tbl, where, SETTINGS_KEYS)
    problems = Problems()
    read = {name: problems.check(as_duration, tbl[name], where.key(name)) for name in tbl}
    problems.raise_any()
    return ScenarioSettings(**{name: span for name, span in read.items() if span is not None})


def _steps(data: dict[str, Any], top: Where, declared: Declared) -> tuple[Step, ...]:
    return parse_steps(table_list(data.get("step", []), top.key("step"), "[[step]]"), declared)


def _blackouts(data: dict[str, Any]) -> tuple[Blackout, ...]:
    """Every ``[[blackout]]`` entry, each read on its own. A label may be used again (it names
    a kind of event, and two intervals may be of one kind), but not the same interval: the
    same start, end and label, whatever offsets they are written in."""
    problems = Problems()
    read: list[Blackout] = []
    first: dict[str, int] = {}
    for number, (tbl, where) in enumerate(_entries(data, "blackout", "label"), start=1):
        blackout = problems.check(parse_blackout, tbl, where)
        if blackout is None:
            continue
        if blackout.key() in first:
            problems.add(where, f"is the same interval as [[blackout]] {first[blackout.key()]}")
            continue
        first[blackout.key()] = number
        read.append(blackout)
    problems.raise_any()
    return tuple(read)


def _read(
    problems: Problems,
    data: dict[str, Any],
    kind: str,
    read: Callable[[dict[str, Any], Where], T],
    id_key: str = "id",
) -> tuple[tuple[T, ...], tuple[str, ...]]:
    """Every ``[[kind]]`` entry, each read on its own: the ones read, and the ids of those with
    a problem (still declared); an id declared twice is a problem."""
    entries = problems.check(_entries, data, kind, id_key) or []
    read_ones: list[T] = []
    failed: list[str] = []
    seen: set[str] = set()
    for tbl, where in entries:
        ident = tbl.get(id_key)
        if isinstance(ident, str) and ident:
            if ident in seen:
                problems.add(where.key(id_key), f'{kind} "{ident}" is declared twice')
            seen.add(ident)
        entry = problems.check(read, tbl, where)
        if entry is not None:
            read_ones.append(entry)
        elif isinstance(ident, str) and ident:
            failed.append(ident)
    return tuple(read_ones), tuple(failed)


def _entries(
    data: dict[str, Any], kind: str, id_key: str = "id"
) -> list[tuple[dict[str, Any], Where]]:
    """Each ``[[kind]]`` table with its place, ``[[kind]] N (id)``, the id shown when it is one."""
    found = []
    for number, tbl in enumerate(table_list(data.get(kind, []), Where(kind), f"[[{kind}]]"), 1):
        ident = tbl.get(id_key)
        label = f" ({ident})" if isinstance(ident, str) and ident else ""
        found.append((tbl, Where(f"[[{kind}]] {number}{label}")))
    return found


def _instrument(tbl: dict[str, Any], where: Where) -> InstrumentSpec:
    keys = ("root", "point_value", "tick_size")
    check_keys(tbl, where, keys, keys)
    return InstrumentSpec(
        as_root_name(tbl["root"], where.key("root")),
        as_positive(tbl["point_value"], where.key("point_value")),
        as_positive(tbl["tick_size"], where.key("tick_size")),
    )


def _connection(tbl: dict[str, Any], where: Where) -> ConnectionSpec:
    check_keys(tbl, where, ("id", "broker", "state"), ("id",))
    return ConnectionSpec(
        as_id(tbl["id"], where.key("id")),
        as_choice(tbl.get("broker", "paper"), where.key("broker"), BROKERS),
        as_choice(tbl.get("state", "connected"), where.key("state"), CONNECTION_STATES),
    )


def _account(tbl: dict[str, Any], where: Where, *, connections: frozenset[str]) -> AccountSpec:
    check_keys(tbl, where, ("id", "connection", "balance", "risk"), ("id", "connection"))
    ident = as_id(tbl["id"], where.key("id"))
    connection = as_ref(tbl["connection"], where.key("connection"), connections, "connection")
    balance = DEFAULT_BALANCE
    if "balance" in tbl:
        balance = as_non_negative(tbl["balance"], where.key("balance"))
    risk = parse_risk(tbl.get("risk", {}), where.key("risk"))
    return AccountSpec(ident, connection, balance, risk)


def _group(tbl: dict[str, Any], where: Where, *, declared: Declared) -> GroupSpec:
    check_keys(tbl, where, ("id", "leader", "followers", "on_drift"), ("id", "leader"))
    problems = Problems()
    ident = problems.check(as_id, tbl["id"], where.key("id"))
    leader = problems.check(
        as_ref, tbl["leader"], where.key("leader"), declared.accounts, "account"
    )
    followers_where = where.key("followers")
    example = '[{ account = "F1" }, ...]'
    entries = problems.check(table_list, tbl.get("followers", []), followers_where, example)
    followers = [
        problems.check(parse_follower, entry, followers_where.item(number), declared)
        for number, entry in enumerate(entries or [], start=1)
    ]
    on_drift = problems.check(
        as_choice, tbl.get("on_drift", "alert"), where.key("on_drift"), ON_DRIFT_CHOICES
    )
    problems.raise_any()
    return GroupSpec(
        ident or "",
        leader or "",
        tuple(f for f in followers if f is not None),
        OnDrift(on_drift or "alert"),
    )


def _one_group_each(groups: tuple[GroupSpec, ...]) -> None:
    """SEMANTICS: an account belongs to at most one group, as its leader or as one follower."""
    problems = Problems()
    member_of: dict[str, str] = {}
    for number, group in enumerate(groups, start=1):
        where = Where(f"[[group]] {number} ({group.id})")
        places = [(group.leader, where.key("leader"), "lead")]
        places += [
            (f.account, where.key("followers").item(n).key("account"), "follow")
            for n, f in enumerate(group.followers, start=1)
        ]
        for account, place, role in places:
            if role == "follow" and account == group.leader:
                problems.add(place, f'account "{account}" leads this group and cannot follow it')
            elif account in member_of:
                problems.add(
                    place,
                    f'account "{account}" is already in group "{member_of[account]}"; '
                    "an account belongs to at most one group",
                )
            else:
                member_of[account] = group.id
    problems.raise_any()
