"""A decimal written for a person: as entered, in plain digits (``1e3`` entered is ``1000``,
``1000.50`` stays ``1000.50``), exact — ``str`` would give ``1E+3``, and no float is on the way."""

from __future__ import annotations

from decimal import Decimal


def plain(value: Decimal) -> str:
    return f"{value:f}"


__all__ = ["plain"]
