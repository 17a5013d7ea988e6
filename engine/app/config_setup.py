"""The configuration's setup (``[[connections]]``, ``[[accounts]]`` with their risk keys and
profile, ``[[groups]]``, ``[profiles.NAME]`` tables and ``[[blackout]]`` intervals): what seeds an
empty store (``engine/app/seeding.py``) and what ``setup diff`` compares with the store's.

Every risk key (S5.2 limits and S9 keys) is checked by ``risk_profile.parse_value``, the check
the scenario files, the API and the CLI use; an error names the key inside its table and whose
table it is (``accounts[0].limits.max_loss_mode: account "F1": unknown value 'daily'; ...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from brokers.instruments import BUILTIN_CONTRACTS
from engine.app.config_errors import RISK_VALUE, one_line
from engine.domain import risk_profile
from engine.domain.copying import CopyMode, Membership
from engine.domain.price_scale import price_scale_problem
from engine.domain.risk_profile import RiskValueError
from engine.domain.sessions import Blackout
from engine.domain.setup import ID_FORM, ID_PATTERN, is_id
from engine.domain.watching import OnDrift


class Section(BaseModel):
    """A table of the file: unknown keys refused, frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Id = Annotated[str, Field(pattern=ID_PATTERN)]
PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=18)]
NonNegativeDecimal = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=18)]


class ConnectionSeed(Section):
    id: Id
    broker: str | None = None  # default: broker.kind


def risk_keys(raw: Mapping[str, Any], label: str, inside: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every key of a table of risk keys (S5.2, S9) as ``risk_profile.parse_value`` takes it;
    the first that is not raises an error naming the key and whose keys they are (``label``)."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            out[name] = risk_profile.parse_value(name, value)
        except RiskValueError as error:
            what = str(error).removeprefix(f"{name}: ")
            raise PydanticCustomError(
                RISK_VALUE,
                "{message}",
                {"message": f"{label}: {what}", "key": (*inside, name)},
            ) from None
    return out


class AccountSeed(Section):
    id: Id
    connection: Id
    balance: NonNegativeDecimal = Decimal(50000)
    # Its own risk keys: every S5.2 limit and S9 key (risk_profile.RISK_KEYS), overriding its
    # profile's key by key (S9.7).
    limits: dict[str, Any] = Field(default_factory=dict)
    profile: Id | None = None  # the name of a [profiles.NAME] table

    @field_validator("limits")
    @classmethod
    def _risk_keys(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        account = info.data.get("id")
        return risk_keys(value, f'account "{account}"' if account else "account")


MAX_LABEL = 64


class BlackoutSeed(Section):
    """An engine-wide blackout interval (S9.5): start included, end excluded."""

    start: datetime
    end: datetime
    label: str  # shown in the refusal of an opening order (S9.5)

    @field_validator("start", "end")
    @classmethod
    def _offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise PydanticCustomError(
                "offset",
                "expected a date and time with its UTC offset, e.g. 2026-11-25T07:29:00-06:00",
            )
        return value

    @field_validator("label")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if not value.strip() or len(value) > MAX_LABEL or value != one_line(value):
            raise PydanticCustomError(
                "label", f'expected a label of 1-{MAX_LABEL} characters on one line, e.g. "CPI"'
            )
        return value

    @model_validator(mode="after")
    def _order(self) -> BlackoutSeed:
        if self.end <= self.start:
            raise PydanticCustomError(
                "interval",
                "end {end} must be after start {start}",
                {"end": self.end.isoformat(), "start": self.start.isoformat()},
            )
        return self

    def blackout(self) -> Blackout:
        return Blackout(self.start, self.end, self.label)


class FollowerSeed(Section):
    account: Id
    ratio: PositiveDecimal = Decimal(1)
    max_qty: int | None = Field(default=None, ge=1, le=100_000)
    symbol_map: dict[str, str] = Field(default_factory=dict)
    # S8.1: the key is ``copy`` (``copy_mode`` here: pydantic models have a ``copy`` method).
    copy_mode: CopyMode = Field(default=CopyMode.FILLS, alias="copy")

    @field_validator("symbol_map")
    @classmethod
    def _roots(cls, value: dict[str, str]) -> dict[str, str]:
        return check_symbol_map(value)

    @model_validator(mode="after")
    def _price_scale(self) -> FollowerSeed:
        problem = price_scale_problem(
            self.copy_mode,
            self.symbol_map.items(),
            lambda root: BUILTIN_CONTRACTS[root].tick_size,
        )
        if problem is not None:
            raise PydanticCustomError("price_scale", "{problem}", {"problem": problem})
        return self

    def membership(self) -> Membership:
        """The follower's terms as the engine keeps them."""
        return Membership(
            self.account,
            self.ratio,
            self.max_qty,
            tuple(sorted(self.symbol_map.items())),
            copy=self.copy_mode,
        )


class GroupSeed(Section):
    id: Id
    leader: Id
    followers: list[FollowerSeed] = Field(default_factory=list)
    on_drift: OnDrift = OnDrift.ALERT  # S10.2: "alert" or "reduce"


def check_profiles(value: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``[profiles.NAME]`` tables: each name an id, each key as :func:`risk_keys` takes it."""
    out: dict[str, dict[str, Any]] = {}
    for name, keys in value.items():
        if not is_id(name):
            raise PydanticCustomError(
                RISK_VALUE,
                "{message}",
                {"message": f"expected a profile name of {ID_FORM}", "key": (name,)},
            )
        out[name] = risk_keys(keys, f'profile "{name}"', (name,))
    return out


def check_symbol_map(value: Mapping[str, str]) -> dict[str, str]:
    """Roots on both sides must be in the contract table (``ES = "MES"``)."""
    for source, target in value.items():
        for root in (source, target):
            if root not in BUILTIN_CONTRACTS:
                raise PydanticCustomError(
                    "root",
                    "unknown instrument root '{root}'; expected one of: {roots}",
                    {"root": root, "roots": ", ".join(sorted(BUILTIN_CONTRACTS))},
                )
    return dict(value)


def setup_problems(
    connections: Sequence[ConnectionSeed],
    accounts: Sequence[AccountSeed],
    groups: Sequence[GroupSeed],
    profiles: Mapping[str, Any],
    blackouts: Sequence[BlackoutSeed],
    broker: str,
) -> list[str]:
    """What is wrong across the setup's keys (pydantic checks each key by itself): ids used
    twice, references to what the file does not define, an account in two groups."""
    problems: list[str] = []
    connection_ids = [c.id for c in connections]
    account_ids: set[str] = set()
    for i, c in enumerate(connections):
        if connection_ids.index(c.id) != i:
            problems.append(f"connections[{i}].id: {c.id!r} is used twice")
        if c.broker is not None and c.broker != broker:
            problems.append(
                f"connections[{i}].broker: expected {broker!r} (the configured"
                f" broker.kind), got {c.broker!r}"
            )
    for i, a in enumerate(accounts):
        if a.connection not in connection_ids:
            problems.append(
                f"accounts[{i}].connection: expected the id of a [[connections]] entry,"
                f" got {a.connection!r}"
            )
        if a.id in account_ids:
            problems.append(f"accounts[{i}].id: {a.id!r} is used twice")
        account_ids.add(a.id)
        if a.profile is not None and a.profile not in profiles:
            defined = ", ".join(profiles) or "none is defined"
            problems.append(
                f'accounts[{i}].profile: account "{a.id}": expected the name of a'
                f" [profiles.NAME] table, got {a.profile!r} (profiles: {defined})"
            )
    seen: dict[str, int] = {}
    for i, b in enumerate(blackouts):
        key = b.blackout().key()
        if key in seen:
            problems.append(f"blackout[{i}]: the same interval and label as blackout[{seen[key]}]")
        seen.setdefault(key, i)
    in_group: set[str] = set()
    group_ids: set[str] = set()
    for i, g in enumerate(groups):
        if g.id in group_ids:
            problems.append(f"groups[{i}].id: {g.id!r} is used twice")
        group_ids.add(g.id)
        members = [("leader", g.leader)] + [
            (f"followers[{j}].account", f.account) for j, f in enumerate(g.followers)
        ]
        for key, account in members:
            if account not in account_ids:
                problems.append(
                    f"groups[{i}].{key}: expected the id of an [[accounts]] entry, got {account!r}"
                )
            elif account in in_group:
                problems.append(
                    f"groups[{i}].{key}: account {account!r} is already in a group;"
                    " an account belongs to at most one group"
                )
            in_group.add(account)
    return problems


__all__ = [
    "MAX_LABEL",
    "AccountSeed",
    "BlackoutSeed",
    "ConnectionSeed",
    "FollowerSeed",
    "GroupSeed",
    "Id",
    "NonNegativeDecimal",
    "PositiveDecimal",
    "Section",
    "check_profiles",
    "check_symbol_map",
    "risk_keys",
    "setup_problems",
]
