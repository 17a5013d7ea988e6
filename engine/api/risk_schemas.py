"""The control API's bodies for an account's risk profile (S5.2, S9): its own keys and the
named profile it uses (S9.7), the named profiles, the engine-wide blackouts (S9.5).

Every key a profile takes (``risk_profile.RISK_KEYS``) is a field of :class:`RiskKeys`; its value
is checked by ``risk_profile.parse_value``, the same check as the configuration's, and a wrong
one is a 422 naming the key and saying what it takes. In a change, ``null`` removes a key: the
account's own key gives way to its profile's, a profile's key to nothing (off). Numbers travel
as decimal strings in answers (``"2.10"``), words as words, tables as objects of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, Field

from engine.api.errors import ApiError
from engine.api.schema_base import Id, Request, Response
from engine.domain.decimals import plain
from engine.domain.risk_profile import (
    RISK_KEYS,
    SHAPES,
    RiskValue,
    RiskValueError,
    Shape,
    describe,
    parse_value,
)
from engine.domain.sessions import BlackoutMode
from engine.domain.threshold import MaxLossMode

# A value in an answer: a decimal string, a word, or a table of decimal strings by root.
RiskJson = str | dict[str, str]
NUMBER_IN: dict[str, Any] = {"type": ["string", "number"]}


def _input_schema(shape: Shape) -> dict[str, Any]:
    """What a key's value looks like in a request, ``null`` (remove it) included."""
    if shape in (Shape.TABLE, Shape.WEIGHTS):
        return {"type": ["object", "null"], "additionalProperties": NUMBER_IN}
    if shape is Shape.MODE:
        return {"enum": [*(m.value for m in MaxLossMode), None]}
    if shape is Shape.BLACKOUT:
        return {"enum": [*(m.value for m in BlackoutMode), None]}
    if shape is Shape.TIME:
        return {"type": ["string", "null"], "examples": ["15:10", "off"]}
    return {"type": ["string", "number", "null"]}


def _key(name: str) -> Any:
    return Field(
        None,
        description=f"{describe(name)}; null removes the key",
        json_schema_extra=_input_schema(SHAPES[name]),
    )


class RiskKeys(Request):
    """Keys of a risk profile (S5.2, S9): only those given change; ``null`` removes one."""

    daily_loss_limit: Any = _key("daily_loss_limit")
    daily_profit_target: Any = _key("daily_profit_target")
    trailing_drawdown: Any = _key("trailing_drawdown")
    weekly_loss_limit: Any = _key("weekly_loss_limit")
    weekly_profit_target: Any = _key("weekly_profit_target")
    commission: Any = _key("commission")
    commissions: Any = _key("commissions")
    max_contracts: Any = _key("max_contracts")
    contract_weights: Any = _key("contract_weights")
    max_loss: Any = _key("max_loss")
    max_loss_mode: Any = _key("max_loss_mode")
    max_loss_stop: Any = _key("max_loss_stop")
    start_balance: Any = _key("start_balance")
    flatten_at: Any = _key("flatten_at")
    blackout: Any = _key("blackout")
    consistency_pct: Any = _key("consistency_pct")

    def changes(self, where: str = "") -> tuple[dict[str, RiskValue], tuple[str, ...]]:
        """The keys to set, each checked by ``parse_value``, and the keys to remove (given as
        ``null``); a wrong value is a 422 naming the key (under ``where``)."""
        values: dict[str, RiskValue] = {}
        removed: list[str] = []
        for name in RISK_KEYS:
            if name not in self.model_fields_set:
                continue
            raw = getattr(self, name)
            if raw is None:
                removed.append(name)
                continue
            try:
                values[name] = parse_value(name, raw)
            except RiskValueError as error:
                raise bad_value(name, error, where) from None
        return values, tuple(removed)


assert tuple(RiskKeys.model_fields) == RISK_KEYS  # a key added to the registry is a field here


def bad_value(name: str, error: RiskValueError, where: str = "") -> ApiError:
    """A 422 for key ``name``: the field's path and what is wrong with its value."""
    field = f"{where}.{name}" if where else name
    what = str(error).removeprefix(f"{name}: ")
    return ApiError(422, "invalid", f"{field}: {what}", field, [{"field": field, "message": what}])


class LimitsChange(RiskKeys):
    """An account's own keys to set (``"0"`` turns a number off; setting a limit re-arms it,
    S5.7) or remove (``null``: its profile's value applies again), and the profile it uses."""

    profile: Id | None = Field(
        None,
        description="the named profile whose keys the account's own override (S9.7);"
        " null: no profile",
    )


class ProfileChange(RiskKeys):
    """A named profile's keys to set, or remove (``null``); a new name creates the profile."""


class NewBlackout(Request):
    """An interval in which opening orders are refused for accounts with ``blackout`` set:
    start included, end excluded, both with a UTC offset (S9.5)."""

    start: AwareDatetime
    end: AwareDatetime
    label: str = Field(min_length=1, max_length=64, description="shown in the refusal, e.g. CPI")


class BlackoutOut(Response):
    key: str = Field(description="the blackout's id: DELETE /api/blackouts?key=...")
    start: str
    end: str
    label: str
    active: bool = Field(description="whether it runs now")


class AccountBlackout(Response):
    """The blackout running now, or else the next one to come (S9.5)."""

    start: str
    end: str
    label: str
    active: bool


class Limits(Response):
    account: str
    profile: str | None = Field(description="the named profile the account uses (S9.7)")
    limits: dict[str, RiskJson] = Field(description="the account's own keys")
    effective: dict[str, RiskJson] = Field(
        description="every key in force: the profile's, overridden key by key by the account's"
    )
    triggers_off: list[str]


class ProfileOut(Response):
    name: str
    limits: dict[str, RiskJson]
    accounts: list[str] = Field(description="the accounts that use it")


def value_json(value: RiskValue) -> RiskJson:
    """A key's value in an answer: exact decimal strings, words, tables of them."""
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, str):
        return value
    return {root: plain(v) for root, v in value.items()}


def values_json(values: Mapping[str, RiskValue]) -> dict[str, RiskJson]:
    """Every key of ``values``, in the registry's order."""
    return {name: value_json(values[name]) for name in RISK_KEYS if name in values}


__all__ = [
    "AccountBlackout",
    "BlackoutOut",
    "Limits",
    "LimitsChange",
    "NewBlackout",
    "ProfileChange",
    "ProfileOut",
    "RiskJson",
    "RiskKeys",
    "bad_value",
    "value_json",
    "values_json",
]
