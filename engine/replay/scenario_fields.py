"""Checked reading of the values a scenario file holds.

Every reader takes a TOML value and the :class:`Where` it came from, returns the value in the type
the scenario model wants, or raises :class:`Invalid` naming the place and what is wrong. The
loader turns :class:`Invalid` into a ``ScenarioError`` carrying the file name. A part that reads
several independent things (a file's entries, a step's keys) gathers their problems in
:class:`Problems`, so the file's author sees every one at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

from brokers.instruments import ContractTable, SymbolError, split_symbol

P = ParamSpec("P")
T = TypeVar("T")
_DURATION = re.compile(r"([0-9]+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class Invalid(Exception):
    """A scenario value is wrong; ``place`` says where, ``problem`` says what; ``more``: the
    further problems found beside it, in the file's order."""

    def __init__(self, place: Where, problem: str, more: Sequence[Invalid] = ()) -> None:
        super().__init__(f"{place}: {problem}")
        self.place = place
        self.problem = problem
        self.more = tuple(more)

    def every(self) -> tuple[Invalid, ...]:
        return (self, *self.more)


class Problems:
    """The problems of the independent parts read so far; :meth:`raise_any` raises them as one
    :class:`Invalid`, the first with the rest as its ``more``."""

    def __init__(self) -> None:
        self.found: list[Invalid] = []

    def check(self, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """``read(...)``, or ``None`` when it found a problem (kept)."""
        try:
            return read(*args, **kwargs)
        except Invalid as exc:
            self.found.extend(exc.every())
            return None

    def add(self, place: Where, problem: str) -> None:
        self.found.append(Invalid(place, problem))

    def raise_any(self) -> None:
        if self.found:
            first, *rest = self.found
            raise Invalid(first.place, first.problem, rest)


@dataclass(frozen=True)
class Where:
    """A place in a scenario file: an entry (``step 7``, ``[[group]] 2 (g2)``) and a key path."""

    entry: str = ""
    path: str = ""

    def key(self, name: str) -> Where:
        return Where(self.entry, f"{self.path}.{name}" if self.path else name)

    def item(self, number: int) -> Where:
        """The ``number``-th (1-based) element of the list at this place."""
        return Where(self.entry, f"{self.path}[{number}]")

    def __str__(self) -> str:
        return ": ".join(part for part in (self.entry, self.path) if part)


def show(value: object) -> str:
    """A TOML-like rendering of a value for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def table(value: object, where: Where) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(where, f"must be a table, not {show(value)}")
    return value


def table_list(value: object, where: Where, example: str) -> list[dict[str, Any]]:
    """An array of tables; ``example`` shows how the file writes one (``[[step]]``)."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise Invalid(where, f"must be an array of tables ({example})")
    return value


def check_keys(
    tbl: Mapping[str, object],
    where: Where,
    allowed: Iterable[str],
    required: Iterable[str] = (),
) -> None:
    """Reject every unknown key; then, if there was none (a typo is the likeliest cause of a
    missing key), every required key missing."""
    allowed = tuple(allowed)
    problems = Problems()
    for name in tbl:
        if name not in allowed:
            expected = ", ".join(allowed)
            problems.add(where.key(name), f"unknown key '{name}' (expected one of: {expected})")
    if not problems.found:
        for name in required:
            if name not in tbl:
                problems.add(where.key(name), "required key is missing")
    problems.raise_any()


def as_str(value: object, where: Where) -> str:
    if not isinstance(value, str):
        raise Invalid(where, f"must be a string, not {show(value)}")
    return value


def as_id(value: object, where: Where) -> str:
    text = as_str(value, where)
    if not text:
        raise Invalid(where, "must not be empty")
    return text


def as_ref(value: object, where: Where, declared: Collection[str], kind: str) -> str:
    """An id that must name a declared ``kind`` (``connection``, ``account``, ``group``)."""
    ident = as_id(value, where)
    if ident not in declared:
        raise Invalid(where, f"{show(ident)} is not a declared {kind}")
    return ident


def as_choice(value: object, where: Where, choices: Collection[str]) -> str:
    text = as_str(value, where)
    if text not in choices:
        options = ", ".join(show(choice) for choice in choices)
        raise Invalid(where, f"must be one of {options}, not {show(text)}")
    return text


def as_bool(value: object, where: Where) -> bool:
    if not isinstance(value, bool):
        raise Invalid(where, f"must be true or false, not {show(value)}")
    return value


def as_true(value: object, where: Where) -> bool:
    if value is not True:
        raise Invalid(where, f"must be true, not {show(value)}")
    return True


def as_int(value: object, where: Where) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(where, f"must be an integer, not {show(value)}")
    return value


def as_positive_int(value: object, where: Where) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise Invalid(where, f"must be a positive integer, not {show(value)}")
    return value


def as_count(value: object, where: Where) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(where, f"must be a non-negative integer, not {show(value)}")
    return value


def as_number(value: object, where: Where) -> Decimal:
    """A finite number, written as an integer or a decimal; booleans are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise Invalid(where, f"must be a number, not {show(value)}")
    number = Decimal(value)
    if not number.is_finite():
        raise Invalid(where, f"must be a finite number, not {show(value)}")
    return number


def as_positive(value: object, where: Where) -> Decimal:
    number = as_number(value, where)
    if number <= 0:
        raise Invalid(where, f"must be positive, not {show(value)}")
    return number


def as_non_negative(value: object, where: Where) -> Decimal:
    number = as_number(value, where)
    if number < 0:
        raise Invalid(where, f"must not be negative, not {show(value)}")
    return number


def as_offset_datetime(value: object, where: Where) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Invalid(
            where,
            f"must be an offset datetime such as 2026-01-05T09:00:00-06:00, not {show(value)}",
        )
    return value


def as_duration(value: object, where: Where) -> timedelta:
    """A positive span of time: a whole number and its unit, ``"90s"``, ``"45m"``, ``"2h"``,
    ``"3d"``."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None or not match[1].strip("0"):
        raise Invalid(
            where,
            "must be a positive whole number followed by s, m, h or d "
            f'("90s", "45m", "2h", "3d"), not {show(value)}',
        )
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except (OverflowError, ValueError):
        raise Invalid(where, f"{show(value)} is too long") from None


def as_symbol(value: object, where: Where, contracts: ContractTable) -> str:
    text = as_str(value, where)
    try:
        contracts.parse(text)
    except SymbolError as exc:
        raise Invalid(where, str(exc)) from None
    return text


def as_root_name(value: object, where: Where) -> str:
    """A well-formed instrument root (``ES``, ``M2K``), whether or not the table has it."""
    text = as_id(value, where)
    try:
        split_symbol(f"{text}Z6")
    except SymbolError:
        raise Invalid(
            where,
            f"{show(text)} is not an instrument root (upper-case letters and digits, "
            "starting with a letter)",
        ) from None
    return text


def as_root(value: object, where: Where, contracts: ContractTable) -> str:
    text = as_str(value, where)
    if text not in contracts:
        raise Invalid(where, f"root {show(text)} is not in the contract table")
    return text
