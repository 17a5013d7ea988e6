"""The durable state each actor is rebuilt from after a restart (S7.2): an account's figures
and positions, and its risk actor's status, lock reason, high-water mark, switched-off
triggers, flatten in flight and the S9 rules' own state."""

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
    commissions: Decimal = Decimal(0)  # S9.1: every commission charged to the account
    drift: Mapping[str, int] = field(default_factory=dict)  # S10.1: open episodes, symbol -> qty


@dataclass(frozen=True, slots=True)
class FlattenRecord:
    number: int
    cause: str
    purpose: str
    failures: int
    sends: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class PropState:
    """The durable part of the S9 rules an account's risk actor keeps."""

    start_balance: Decimal | None = None  # S9.3: set when max_loss is first set
    peak: Decimal | None = None  # S9.3: the trailing threshold's peak
    session_closed: str = ""  # S9.4: the Chicago date of the last session close applied
    blackouts_begun: tuple[str, ...] = ()  # S9.5: intervals whose start was applied
    days: tuple[tuple[str, Decimal], ...] = ()  # S9.6: closed trading days' net P&L
    consistency_warned: str = ""  # S9.6: the trading day of the last consistency warning
    reductions: int = 0  # S9.2: how many max-contracts reductions were sent (their cause ids)


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
    prop: PropState = PropState()
