"""Events and commands as plain msgpack-able values, and back.

Frozen dataclasses become ``["C", name, {field: value}]``, decimals ``["D", "5000.25"]``,
instants ``["T", iso]``, enums ``["E", name, value]``; tuples become lists. Decoding accepts
only the classes registered here, so a journal cannot make the engine build anything else.
Secrets never reach the wire: a token field is written as ``[redacted]``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from brokers import base
from engine.domain.copying import CopyMode, Membership
from engine.domain.sessions import Blackout
from engine.domain.watching import OnDrift

REDACTED = "[redacted]"
SECRET_FIELDS = frozenset({"token"})

CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        base.OrderAccepted,
        base.OrderUpdated,
        base.ModifyRejected,
        base.OrderRejected,
        base.Fill,
        base.OrderDone,
        base.Quote,
        base.Snapshot,
        base.SnapshotFailed,
        base.FillCorrected,
        base.PricesUnavailable,
        base.PricesRestored,
        base.SessionLost,
        base.SessionRestored,
        base.TokenExpired,
        base.TokenIssued,
        base.AccountSnapshot,
        base.PositionInfo,
        base.WorkingOrder,
        base.OrderReport,
        Membership,
        Blackout,
    )
}
ENUMS: dict[str, type[enum.Enum]] = {
    "OrderType": base.OrderType,
    "OrderStatus": base.OrderStatus,
    "TimeInForce": base.TimeInForce,
    "LegRole": base.LegRole,
    "CopyMode": CopyMode,
    "OnDrift": OnDrift,
}


class WireError(ValueError):
    """A value that cannot be encoded, or an encoded value that is not one we accept."""


def encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return ["D", str(value)]
    if isinstance(value, datetime):
        return ["T", value.isoformat()]
    if isinstance(value, enum.Enum):
        return ["E", type(value).__name__, value.value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if name not in CLASSES:
            raise WireError(f"cannot encode {name}")
        fields = {
            f.name: REDACTED if f.name in SECRET_FIELDS else encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
        }
        return ["C", name, fields]
    if isinstance(value, Mapping):
        return {"M": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    raise WireError(f"cannot encode {type(value).__name__}")


def _enum_of(f: dataclasses.Field[Any]) -> type[enum.Enum] | None:
    """The registered enum a field holds (``OrderType``, ``LegRole | None``), if any."""
    return ENUMS.get(str(f.type).removesuffix(" | None"))


def _member(enum_type: type[enum.Enum], value: str) -> enum.Enum:
    try:
        return enum_type(value)
    except ValueError:
        raise WireError(f"not a {enum_type.__name__}: {value!r}") from None


def decode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dict):
        pairs = value.get("M")
        if not isinstance(pairs, list):
            raise WireError("a mapping must be {'M': [[key, value], ...]}")
        return {decode(k): decode(v) for k, v in pairs}
    if not isinstance(value, list):
        raise WireError(f"unexpected {type(value).__name__}")
    if value and value[0] == "D" and len(value) == 2:
        try:
            return Decimal(value[1])
        except (ArithmeticError, TypeError, ValueError):
            raise WireError(f"not a decimal: {value[1]!r}") from None
    if value and value[0] == "T" and len(value) == 2:
        try:
            instant = datetime.fromisoformat(value[1])
        except (TypeError, ValueError):
            raise WireError(f"not an instant: {value[1]!r}") from None
        if instant.tzinfo is None:
            raise WireError(f"an instant without an offset: {value[1]!r}")
        return instant
    if value and value[0] == "E" and len(value) == 3:
        enum_type = ENUMS.get(value[1])
        if enum_type is None:
            raise WireError(f"unknown enum {value[1]!r}")
        return _member(enum_type, value[2])
    if value and value[0] == "C" and len(value) == 3:
        cls = CLASSES.get(value[1])
        if cls is None or not isinstance(value[2], dict):
            raise WireError(f"unknown class {value[1]!r}")
        kwargs = {k: decode(v) for k, v in value[2].items()}
        for f in dataclasses.fields(cls):
            field_value = kwargs.get(f.name)
            enum_type = _enum_of(f)
            if isinstance(field_value, list):
                kwargs[f.name] = tuple(field_value)
            elif isinstance(field_value, str) and enum_type is not None:
                # A string enum is written as its string: back to the field's enum.
                kwargs[f.name] = _member(enum_type, field_value)
        try:
            return cls(**kwargs)
        except ValueError as error:  # a class that checks its values (a blackout's interval)
            raise WireError(f"{value[1]}: {error}") from None
    return [decode(v) for v in value]
