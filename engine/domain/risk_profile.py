"""An account's risk profile: the S5 limits and the S9 prop-firm keys, by name, as the
configuration, the scenario files, the API and the CLI give them; how each is checked, stored
and shown; and :class:`RiskRules`, the typed view the actors read.

A profile is a plain mapping of key to value (:data:`RiskValue`): a number (``Decimal``), a
word (``"eod_trailing"``, ``"15:10"``, ``"block"``, ``"off"``) or a table of numbers by root
(``commissions``, ``contract_weights``). Every key is optional and unset is off; ``0`` turns a
number off, except ``max_loss_stop``, where ``0`` is a value and ``"off"`` removes it (S9.3).
Named profiles (S9.7) are the same mappings; an account's own keys override its profile's,
key by key (:func:`resolve`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from engine.domain.max_contracts import root_of
from engine.domain.risk_rules import LIMIT_NAMES
from engine.domain.sessions import BlackoutMode, parse_flatten_at
from engine.domain.threshold import MaxLossMode

RiskValue = Decimal | str | Mapping[str, Decimal]
ZERO = Decimal(0)
MAX_AMOUNT = Decimal(10**12)
OFF = "off"


class RiskValueError(ValueError):
    """A key's value is not what the key takes; the message says what (not where)."""


class Shape(StrEnum):
    AMOUNT = "amount"  # money, >= 0; 0 is off
    POSITIVE = "positive"  # money, > 0 (start_balance)
    CONTRACTS = "contracts"  # > 0 contracts, fractions allowed (2.5); 0 is off
    PERCENT = "percent"  # 0 < x <= 100; 0 is off
    TABLE = "table"  # {root: amount >= 0}
    WEIGHTS = "weights"  # {root: weight > 0}
    STOP = "stop"  # money >= 0 (0 is a value) or "off"
    MODE = "mode"  # max_loss_mode
    TIME = "time"  # "HH:MM" before 17:00, or "off"
    BLACKOUT = "blackout"  # off | block | flatten


SHAPES: Mapping[str, Shape] = {
    **dict.fromkeys(LIMIT_NAMES, Shape.AMOUNT),
    "commission": Shape.AMOUNT,
    "commissions": Shape.TABLE,
    "max_contracts": Shape.CONTRACTS,
    "contract_weights": Shape.WEIGHTS,
    "max_loss": Shape.AMOUNT,
    "max_loss_mode": Shape.MODE,
    "max_loss_stop": Shape.STOP,
    "start_balance": Shape.POSITIVE,
    "flatten_at": Shape.TIME,
    "blackout": Shape.BLACKOUT,
    "consistency_pct": Shape.PERCENT,
}
RISK_KEYS = tuple(SHAPES)
S9_KEYS = tuple(k for k in RISK_KEYS if k not in LIMIT_NAMES)
TABLE_SHAPES = frozenset({Shape.TABLE, Shape.WEIGHTS})
WORD_SHAPES = frozenset({Shape.MODE, Shape.TIME, Shape.BLACKOUT})

_WHAT: Mapping[Shape, str] = {
    Shape.AMOUNT: "an amount >= 0 (0 turns it off)",
    Shape.POSITIVE: "an amount > 0",
    Shape.CONTRACTS: "a number of contracts >= 0 (0 turns it off; 2.5 allowed)",
    Shape.PERCENT: "a percentage between 0 and 100 (0 turns it off)",
    Shape.TABLE: "a table of amounts >= 0 by root, e.g. { ES = 2.10, MES = 0.60 }",
    Shape.WEIGHTS: "a table of weights > 0 by root, e.g. { MES = 0.1 }",
    Shape.STOP: 'an amount >= 0 (0 is a value: trailing stops at the start balance) or "off"',
    Shape.MODE: "one of: " + ", ".join(m.value for m in MaxLossMode),
    Shape.TIME: 'a time of day "HH:MM" before 17:00 (America/Chicago), or "off"',
    Shape.BLACKOUT: "one of: " + ", ".join(m.value for m in BlackoutMode),
}


def describe(name: str) -> str:
    """What ``name`` takes, for an error message or a help text."""
    return _WHAT[SHAPES[name]]


def _number(raw: object) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise RiskValueError("not a number")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise RiskValueError(f"not a number: {raw!r}") from None
    if not value.is_finite():
        raise RiskValueError(f"not a finite number: {raw!r}")
    if abs(value) > MAX_AMOUNT:
        raise RiskValueError(f"too large: {raw!r}")
    return value


def _table(raw: object, positive: bool) -> dict[str, Decimal]:
    if not isinstance(raw, Mapping):
        raise RiskValueError("not a table of roots")
    out: dict[str, Decimal] = {}
    for root, value in raw.items():
        if not isinstance(root, str) or not root.isalnum() or not root.isupper():
            raise RiskValueError(f"{root!r} is not a contract root (e.g. ES, MES)")
        number = _number(value)
        if number < 0 or (positive and number == 0):
            raise RiskValueError(f"{root} = {value!r}: expected {'> 0' if positive else '>= 0'}")
        out[root] = number
    return dict(sorted(out.items()))


def parse_value(name: str, raw: object) -> RiskValue:
    """``raw`` (from TOML, JSON or a command line) as key ``name`` takes it; raises
    :class:`RiskValueError` saying what is wrong (an unknown key included)."""
    shape = SHAPES.get(name)
    if shape is None:
        raise RiskValueError(f"unknown risk key {name!r}; expected one of: {', '.join(RISK_KEYS)}")
    try:
        return _parse(shape, raw)
    except RiskValueError as exc:
        raise RiskValueError(f"{name}: {exc}; expected {_WHAT[shape]}") from None


def _parse(shape: Shape, raw: object) -> RiskValue:
    if shape in TABLE_SHAPES:
        return _table(raw, positive=shape is Shape.WEIGHTS)
    if shape in WORD_SHAPES:
        if not isinstance(raw, str):
            raise RiskValueError(f"not a word: {raw!r}")
        word = raw.strip()
        if shape is Shape.MODE:
            return MaxLossMode(word).value if word in set(MaxLossMode) else _bad(raw)
        if shape is Shape.BLACKOUT:
            return BlackoutMode(word).value if word in set(BlackoutMode) else _bad(raw)
        if word == OFF:
            return OFF
        try:
            parse_flatten_at(word)
        except ValueError as exc:
            raise RiskValueError(str(exc)) from None
        return word
    if shape is Shape.STOP and isinstance(raw, str) and raw.strip() == OFF:
        return OFF
    number = _number(raw)
    if number < 0:
        raise RiskValueError(f"negative: {raw!r}")
    if shape is Shape.POSITIVE and number == 0:
        raise RiskValueError("must be more than 0")
    if shape is Shape.PERCENT and number > 100:
        raise RiskValueError(f"more than 100: {raw!r}")
    return number


def _bad(raw: object) -> RiskValue:
    raise RiskValueError(f"unknown value {raw!r}")


def parse_values(raw: Mapping[str, object]) -> dict[str, RiskValue]:
    """Every key of ``raw`` through :func:`parse_value` (the first error is raised)."""
    return {name: parse_value(name, value) for name, value in raw.items()}


# -- storage and display -----------------------------------------------------------------------


def encode(name: str, value: RiskValue) -> str:
    """``value`` as the text stored for key ``name`` (tables as JSON, exact decimals)."""
    if SHAPES[name] in TABLE_SHAPES:
        assert isinstance(value, Mapping)
        return json.dumps({root: str(v) for root, v in sorted(value.items())})
    return str(value)


def decode(name: str, text: str) -> RiskValue:
    """The inverse of :func:`encode`; a stored value that no longer parses raises
    :class:`RiskValueError`."""
    shape = SHAPES.get(name)
    if shape in TABLE_SHAPES:
        try:
            return parse_value(name, json.loads(text))
        except json.JSONDecodeError:
            raise RiskValueError(f"{name}: stored value {text!r} is not a table") from None
    return parse_value(name, text)


def plain(value: RiskValue) -> float | str | dict[str, float]:
    """``value`` for JSON: numbers as numbers, words as words, tables as objects."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str):
        return value
    return {root: float(v) for root, v in value.items()}


def shown(value: RiskValue) -> str:
    """``value`` for a person: ``2``, ``2.5``, ``eod_trailing``, ``ES 2.10, MES 0.60``."""
    if isinstance(value, Decimal):
        return number_text(value)
    if isinstance(value, str):
        return value
    return ", ".join(f"{root} {number_text(v)}" for root, v in value.items()) or "none"


def number_text(value: Decimal) -> str:
    """A number as written in a profile: integral values without decimals (``2``, ``2.5``)."""
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def resolve(
    profile: Mapping[str, RiskValue] | None, own: Mapping[str, RiskValue]
) -> dict[str, RiskValue]:
    """S9.7: an account's effective keys: its profile's, overridden key by key by its own."""
    return {**(profile or {}), **own}


# -- the typed view ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RiskRules:
    """What an account's keys mean, each ``None`` (or empty) when off."""

    limits: Mapping[str, Decimal] = field(default_factory=dict)  # the five S5 ones, set
    commission: Decimal = ZERO
    commissions: Mapping[str, Decimal] = field(default_factory=dict)
    max_contracts: Decimal | None = None
    contract_weights: Mapping[str, Decimal] = field(default_factory=dict)
    max_loss: Decimal | None = None
    max_loss_mode: MaxLossMode = MaxLossMode.STATIC
    max_loss_stop: Decimal | None = None
    start_balance: Decimal | None = None
    flatten_at: time | None = None
    blackout: BlackoutMode = BlackoutMode.OFF
    consistency_pct: Decimal | None = None

    @classmethod
    def of(cls, values: Mapping[str, RiskValue]) -> RiskRules:
        """The rules ``values`` (already checked by :func:`parse_value`) set."""

        def number(name: str) -> Decimal | None:
            value = values.get(name)
            return value if isinstance(value, Decimal) and value > 0 else None

        def table(name: str) -> Mapping[str, Decimal]:
            value = values.get(name)
            return dict(value) if isinstance(value, Mapping) else {}

        stop = values.get("max_loss_stop")
        when = values.get("flatten_at")
        return cls(
            limits={n: v for n in LIMIT_NAMES if isinstance(v := values.get(n), Decimal) and v > 0},
            commission=number("commission") or ZERO,
            commissions=table("commissions"),
            max_contracts=number("max_contracts"),
            contract_weights=table("contract_weights"),
            max_loss=number("max_loss"),
            max_loss_mode=MaxLossMode(str(values.get("max_loss_mode", MaxLossMode.STATIC))),
            max_loss_stop=stop if isinstance(stop, Decimal) else None,
            start_balance=number("start_balance"),
            flatten_at=parse_flatten_at(when) if isinstance(when, str) and when != OFF else None,
            blackout=BlackoutMode(str(values.get("blackout", BlackoutMode.OFF))),
            consistency_pct=number("consistency_pct"),
        )

    def commission_for(self, symbol: str) -> Decimal:
        """S9.1: the commission per contract per side in ``symbol`` (its root's own value wins)."""
        if not self.commissions:
            return self.commission
        return self.commissions.get(root_of(symbol), self.commission)

    @property
    def charges(self) -> bool:
        return bool(self.commission or self.commissions)


__all__ = [
    "RISK_KEYS",
    "S9_KEYS",
    "SHAPES",
    "RiskRules",
    "RiskValue",
    "RiskValueError",
    "Shape",
    "decode",
    "describe",
    "encode",
    "number_text",
    "parse_value",
    "parse_values",
    "plain",
    "resolve",
    "shown",
]
