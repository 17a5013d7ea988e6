"""Pydantic's validation errors as the engine shows them: one line per problem, naming the key
(``groups[0].followers[1].ratio``) and the expected form (``expected a value greater than 0``),
with what was given. Used for the configuration file and the control API's 422 answers."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.domain.setup import ID_FORM

# The type of an error whose input may hold a secret (a URL with a password): not quoted.
SECRET_INPUT = "secret_input"
# The type of an error in one key of a table of risk keys (``accounts[0].limits``,
# ``profiles``): its context names the key inside the table (``key``), which the line's key
# path is extended with, and says whose keys they are (``label``: ``account "F1"``).
RISK_VALUE = "risk_value"


def format_errors(error: ValidationError, model: type[BaseModel]) -> list[str]:
    """One line per problem: ``key.path: what was expected (got ...)``."""
    return [f"{key or '(top level)'}: {message}" for key, message in describe_errors(error, model)]


def describe_errors(error: ValidationError, model: type[BaseModel]) -> list[tuple[str, str]]:
    """Each problem as (dotted key, what was expected and what was given)."""
    out = []
    for item in error.errors(include_url=False):
        loc = [p for p in item["loc"] if p not in ("paper", "tradovate", "tradovate-sim")]
        key = _dotted(loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            out.append((key, unknown_key(_model_at(model, loc[:-1]))))
            continue
        message = _expected(kind, str(item["msg"]))
        if kind == RISK_VALUE:
            context = item.get("ctx") or {}
            inner = ".".join(key_name(part) for part in context.get("key", ()))
            key = f"{key}.{inner}" if key and inner else key or inner
            out.append((key, message))
            continue
        if kind == "missing":
            message = "missing; this key is required"
        if kind in {"union_tag_invalid", "union_tag_not_found"}:
            message = 'expected kind = "paper", "tradovate" or "tradovate-sim"'
            key = f"{key}.kind" if key else "kind"
        got = item.get("input")
        hidden = kind in ("missing", SECRET_INPUT) or isinstance(got, dict | list)
        shown = "" if hidden else f" (got {_short(got)})"
        out.append((key, f"{message}{shown}"))
    return out


def _short(value: Any) -> str:
    text = value.isoformat() if isinstance(value, datetime) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_PLAIN = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected a whole number",
    "decimal_parsing": 'expected a decimal number such as "1.5"',
    "decimal_type": 'expected a decimal number such as "1.5"',
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a table",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "model_type": "expected a table",
}


def _expected(kind: str, message: str) -> str:
    if kind in _PLAIN:
        return _PLAIN[kind]
    if kind == "string_pattern_mismatch":
        return f"expected an id of {ID_FORM}"
    message = re.sub(r"^Value error, ", "", message)
    if message.startswith("Input should be "):
        rest = message.removeprefix("Input should be ")
        if rest.startswith(("greater", "less")):
            return f"expected a value {rest}"
        return f"expected {rest}"
    return message


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (``\\r``, ``\\n``, ``\\x00``): a value
    quoted in a message cannot break the message's one line or move the terminal's cursor."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def key_name(part: object) -> str:
    """A key as TOML would write it: bare when it can be, else quoted with its escapes, so a
    key holding a newline or a dot cannot break or blur the one-line message naming it."""
    text = str(part)
    return text if _BARE_KEY.fullmatch(text) else json.dumps(text)


def _dotted(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{key_name(part)}" if out else key_name(part)
    return out


def _model_at(model: type[BaseModel] | None, loc: Sequence[Any]) -> type[BaseModel] | None:
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        model = _inner_model(field.annotation)
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def unknown_key(model: type[BaseModel] | None) -> str:
    if model is None:
        return "unknown key"
    keys = [f.alias or k for k, f in model.model_fields.items() if not f.exclude]
    return f"unknown key; expected one of: {', '.join(keys)}"


__all__ = [
    "ID_FORM",
    "RISK_VALUE",
    "SECRET_INPUT",
    "describe_errors",
    "format_errors",
    "key_name",
    "one_line",
    "unknown_key",
]
