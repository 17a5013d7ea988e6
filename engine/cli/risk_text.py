"""Risk keys on the command line (S5.2, S9): ``KEY=VALUE`` words into the API's JSON, and the
API's values, session closes and blackouts back into words for a person.

A table key takes ``ROOT:VALUE`` pairs separated by commas (``commissions=ES:2.10,MES:0.60``;
``ROOT=VALUE`` works too); ``KEY=off`` turns a key off in the form that key takes (``0`` for a
number, an empty table for a table, ``off`` for ``flatten_at``, ``max_loss_stop`` and
``blackout``). Every value is checked by the engine, which names the key it refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from engine.domain.resets import CHICAGO
from engine.domain.risk_profile import OFF, RISK_KEYS, SHAPES, TABLE_SHAPES, Shape

NUMBER_SHAPES = frozenset({Shape.AMOUNT, Shape.POSITIVE, Shape.CONTRACTS, Shape.PERCENT})
EXAMPLE = "e.g. max_loss=2500 flatten_at=15:10 commissions=ES:2.10,MES:0.60"


class RiskArgumentError(ValueError):
    """A ``KEY=VALUE`` word that cannot be read; the message says which and why."""


def parse_assignments(words: Iterable[str]) -> dict[str, Any]:
    """``["max_loss=2500", "commissions=ES:2.10"]`` as the API's body: each key once."""
    body: dict[str, Any] = {}
    for word in words:
        name, sep, text = word.partition("=")
        name = name.strip()
        if not sep or not name:
            raise RiskArgumentError(f"{word!r}: expected KEY=VALUE, {EXAMPLE}")
        if name in body:
            raise RiskArgumentError(f"{name}: given twice")
        body[name] = _value(name, text.strip())
    return body


def _value(name: str, text: str) -> Any:
    shape = SHAPES.get(name)
    if shape is None:
        raise RiskArgumentError(
            f"{name}: unknown risk key; expected one of: {', '.join(RISK_KEYS)}"
        )
    if shape in TABLE_SHAPES:
        return {} if text.lower() in (OFF, "none", "") else _table(name, text)
    if text.lower() == OFF and shape in NUMBER_SHAPES:
        return "0"
    return text


def _table(name: str, text: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for pair in text.split(","):
        root, sep, value = pair.replace("=", ":").partition(":")
        if not sep or not root.strip() or not value.strip():
            raise RiskArgumentError(
                f"{name}: {pair.strip()!r} is not ROOT:VALUE; expected e.g. {name}=ES:2.10,MES:0.60"
            )
        table[root.strip().upper()] = value.strip()
    return table


def check_names(names: Iterable[str]) -> list[str]:
    """Risk key names (to remove); an unknown one says which are known."""
    out = []
    for name in names:
        if name not in SHAPES:
            raise RiskArgumentError(
                f"{name}: unknown risk key; expected one of: {', '.join(RISK_KEYS)}"
            )
        out.append(name)
    return out


def value_text(value: Any) -> str:
    """An API value for a person: ``2.10``, ``eod_trailing``, ``ES 2.10, MES 0.60``."""
    if isinstance(value, Mapping):
        return ", ".join(f"{root} {v}" for root, v in value.items()) or "none"
    return str(value)


def keys_text(values: Mapping[str, Any]) -> str:
    """Keys as one line: ``max_loss=2500, commissions=ES 2.10, MES 0.60``."""
    return "; ".join(f"{k}={value_text(v)}" for k, v in values.items()) or "none"


def chicago(iso: str, with_day: bool = True) -> str:
    """An ISO instant in Chicago time: ``Tue 01-06 15:10 CT`` (or ``15:10 CT``)."""
    local = datetime.fromisoformat(iso).astimezone(CHICAGO)
    return f"{local:%a %m-%d %H:%M} CT" if with_day else f"{local:%H:%M} CT"


def blackout_text(blackout: Mapping[str, Any]) -> str:
    """A running blackout (``BLACKOUT CPI until 10:00 CT``) or the next one (``blackout FOMC
    Wed 01-07 13:00 CT to 13:30 CT``)."""
    if blackout.get("active"):
        return f"BLACKOUT {blackout['label']} until {chicago(blackout['end'], with_day=False)}"
    start, end = chicago(blackout["start"]), chicago(blackout["end"], with_day=False)
    return f"blackout {blackout['label']} {start} to {end}"


def session_text(account: Mapping[str, Any]) -> str:
    """The blackout running (first) and the next session close and blackout to come."""
    parts = []
    blackout = account.get("blackout")
    if blackout and blackout.get("active"):
        parts.append(blackout_text(blackout))
    if account.get("next_session_close"):
        parts.append(f"close {chicago(account['next_session_close'])}")
    if blackout and not blackout.get("active"):
        parts.append(blackout_text(blackout))
    return "; ".join(parts)


def contracts_text(account: Mapping[str, Any]) -> str:
    """``1.5 / 2``: the contracts in use of the cap (S9.2); without a cap, those in use."""
    in_use = account.get("contracts_in_use") or "0"
    cap = account.get("max_contracts")
    return f"{in_use} / {cap}" if cap is not None else in_use


__all__ = [
    "RiskArgumentError",
    "blackout_text",
    "check_names",
    "chicago",
    "contracts_text",
    "keys_text",
    "parse_assignments",
    "session_text",
    "value_text",
]
