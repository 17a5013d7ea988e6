"""What the activity log says (S7.1): a level, a kind, and the entry a listener sees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Kind(StrEnum):
    """Activity kinds (S7.1)."""

    COPY = "copy"
    SKIP = "skip"
    REJECTION = "rejection"
    RECONCILIATION = "reconciliation"
    BREACH = "breach"
    FLATTEN = "flatten"
    FLATTEN_FAILED = "flatten_failed"
    LOCK = "lock"
    UNLOCK = "unlock"
    RESET = "reset"
    STATE_CHANGE = "state_change"
    DELETION = "deletion"
    RESTART = "restart"
    MANUAL_TRADE_FLATTENED = "manual_trade_flattened"
    STALE_PRICES = "stale_prices"
    SESSION_CLOSE = "session_close"  # S9.4
    BLACKOUT = "blackout"  # S9.5
    CONSISTENCY = "consistency"  # S9.6
    MAX_CONTRACTS_EXCEEDED = "max_contracts_exceeded"  # S9.2
    DRIFT = "drift"  # S10.1
    DRIFT_CLEARED = "drift_cleared"  # S10.1
    MISSED_COPY = "missed_copy"  # S10.3


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    time: datetime
    level: Level
    kind: Kind
    message: str
    account: str | None = None
    connection: str | None = None
    # The leader fill it belongs to, ``LEADER:fill id`` (the cause its copies carry, S2.6).
    fill: str | None = None
