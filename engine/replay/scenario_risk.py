"""An account's risk keys and the blackout intervals in a scenario file (SCENARIOS.md: the
``risk`` table of ``[[account]]``, the ``set_risk`` step, ``[[blackout]]`` and the ``blackout``
step; SEMANTICS S5.2 and S9).

Every key SEMANTICS names is taken, each value checked as the engine checks it
(:func:`engine.domain.risk_profile.parse_value`), so a file holds only what the engine accepts;
a problem is reported in the scenario's own style, at its place, with what the key takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.domain.risk_profile import (
    RISK_KEYS,
    SHAPES,
    TABLE_SHAPES,
    RiskValue,
    RiskValueError,
    Shape,
    describe,
    parse_value,
)
from engine.domain.sessions import Blackout
from engine.replay.scenario_fields import (
    Invalid,
    Problems,
    Where,
    as_id,
    as_offset_datetime,
    as_ref,
    check_keys,
    show,
    table,
)
from engine.replay.scenario_orders import Declared

BLACKOUT_KEYS = ("start", "end", "label")
_ENTRY: Mapping[Shape, str] = {
    Shape.TABLE: "an amount >= 0",
    Shape.WEIGHTS: "a weight > 0",
}


@dataclass(frozen=True)
class SetRiskStep:
    """The user changes an account's keys: ``0`` turns a limit off, except ``max_loss_stop``,
    where ``0`` is a value and ``"off"`` removes it (S9.3)."""

    account: str
    limits: tuple[tuple[str, RiskValue], ...]  # sorted by name


def risk_value(name: str, raw: object, where: Where) -> RiskValue:
    """One key's value, as the engine takes it (``name`` is one of :data:`RISK_KEYS`)."""
    shape = SHAPES[name]
    if shape in TABLE_SHAPES:
        _check_entries(name, table(raw, where), where)
    try:
        return parse_value(name, raw)
    except RiskValueError:
        raise Invalid(where, f"must be {describe(name)}, not {show(raw)}") from None


def _check_entries(name: str, tbl: dict[str, Any], where: Where) -> None:
    """Each ``ROOT = value`` of a table key on its own, at its own place."""
    problems = Problems()
    for root, value in tbl.items():
        try:
            parse_value(name, {root: 0 if SHAPES[name] is Shape.TABLE else 1})
        except RiskValueError:
            problems.add(
                where.key(root),
                f"{show(root)} is not an instrument root (upper-case letters and digits, "
                "such as ES or MES)",
            )
            continue
        try:
            parse_value(name, {root: value})
        except RiskValueError:
            problems.add(where.key(root), f"must be {_ENTRY[SHAPES[name]]}, not {show(value)}")
    problems.raise_any()


def parse_risk(raw: object, where: Where) -> dict[str, RiskValue]:
    """An ``[[account]]``'s ``risk`` table: any of :data:`RISK_KEYS`, every one checked."""
    tbl = table(raw, where)
    check_keys(tbl, where, RISK_KEYS)
    return _risk_values(tbl, where)


def _risk_values(tbl: Mapping[str, Any], where: Where) -> dict[str, RiskValue]:
    problems = Problems()
    values = {
        name: problems.check(risk_value, name, value, where.key(name))
        for name, value in tbl.items()
    }
    problems.raise_any()
    return {name: value for name, value in values.items() if value is not None}


def parse_set_risk(raw: object, where: Where, declared: Declared) -> SetRiskStep:
    """``set_risk = { account, <key> = value, ... }``: at least one key."""
    tbl = table(raw, where)
    check_keys(tbl, where, ("account", *RISK_KEYS), ("account",))
    problems = Problems()
    account = problems.check(
        as_ref, tbl["account"], where.key("account"), declared.accounts, "account"
    )
    keys = {name: value for name, value in tbl.items() if name != "account"}
    values = problems.check(_risk_values, keys, where)
    problems.raise_any()
    if not values:
        raise Invalid(where, f"names no limit (any of: {', '.join(RISK_KEYS)})")
    return SetRiskStep(account or "", tuple(sorted(values.items())))


def parse_blackout(raw: object, where: Where) -> Blackout:
    """An engine-wide blackout interval (S9.5): offset datetimes ``start`` (included) and
    ``end`` (excluded, after ``start``) and the ``label`` its refusals name."""
    tbl = table(raw, where)
    check_keys(tbl, where, BLACKOUT_KEYS, BLACKOUT_KEYS)
    problems = Problems()
    start = problems.check(as_offset_datetime, tbl["start"], where.key("start"))
    end = problems.check(as_offset_datetime, tbl["end"], where.key("end"))
    label = problems.check(as_id, tbl["label"], where.key("label"))
    problems.raise_any()
    assert start is not None and end is not None and label is not None
    if end <= start:
        raise Invalid(
            where.key("end"), f"{end.isoformat()} must be after start {start.isoformat()}"
        )
    try:
        return Blackout(start, end, label)
    except ValueError as exc:  # what the checks above let through, should the rules grow
        raise Invalid(where, str(exc)) from None


def parse_blackout_step(raw: object, where: Where, declared: Declared) -> Blackout:
    """The ``blackout`` step: ``{ start, end, label }``, as a ``[[blackout]]`` entry."""
    return parse_blackout(raw, where)


__all__ = [
    "SetRiskStep",
    "parse_blackout",
    "parse_blackout_step",
    "parse_risk",
    "parse_set_risk",
    "risk_value",
]
