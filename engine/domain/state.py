"""The durable state each actor is rebuilt from after a restart (S7.2): an account's figures
and positions, and its risk actor's status, lock reason, high-water mark, switched-off
triggers and flatten in flight."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class AccountState:
    balance: Decimal
    realized_daily: Decimal
    realized_weekly: Decimal
    positions: Mapping[str, tuple[int, Decimal]] = field(default_factory=dict)  # qty, reference


@dataclass(frozen=True, slots=True)
class FlattenRecord:
    number: int
    cause: str
    purpose: str
    failures: int
    sends: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class RiskState:
    status: str
    lock_reason: str
    high_water: Decimal
    triggers_off: tuple[str, ...] = ()
    lock_triggers: tuple[str, ...] = ()
    flatten: FlattenRecord | None = None
    flattens: int = 0  # how many flattens this account has run (for their cause ids)
    supervisor_hold: bool = False
    version: int = 0  # one more at every save: the newer of the store and the status log wins
