"""An account's risk status (S5): the ``OK → LIQUIDATE_ONLY → LOCKED`` transition table, the
events that drive it, and the lock reasons, which only ever escalate (S5.2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from engine.domain.risk_rules import DAILY_TRIGGERS, Trigger


class RiskStatus(StrEnum):
    OK = "OK"
    LIQUIDATE_ONLY = "LIQUIDATE_ONLY"
    LOCKED = "LOCKED"


class LockReason(StrEnum):
    NONE = ""
    SESSION_CLOSE = "session_close"  # S9.4
    DAILY = "risk_breach_daily"
    WEEKLY = "risk_breach_weekly"
    ACCOUNT = "risk_breach_account"  # S9.3: no reset clears it
    MANUAL = "manual"


# S5.2's ranking: a reason is only ever replaced by a higher one.
REASON_RANK = {
    LockReason.NONE: 0,
    LockReason.SESSION_CLOSE: 1,
    LockReason.DAILY: 2,
    LockReason.WEEKLY: 3,
    LockReason.ACCOUNT: 4,
    LockReason.MANUAL: 5,
}


class RiskEvent(StrEnum):
    BREACH = "breach"  # a trigger fired (S5.2)
    LOCK_FLAT = "lock_flat"  # manual lock of a flat account (S5.7)
    LOCK_OPEN = "lock_open"  # manual lock of an account with a position (S5.7)
    UNLOCK = "unlock"  # manual unlock (S5.7)
    FLAT_LOCKED = "flat_locked"  # the flatten finished and a lock reason stands (S5.3 step 6)
    FLAT_CLEARED = "flat_cleared"  # the flatten finished, the reason was cleared meanwhile
    RESET = "reset"  # a reset cleared the lock reason (S5.8)
    HOLD = "hold"  # the supervisor gave up restarting an actor of the account: no new exposure
    CLOSE_FLAT = "close_flat"  # the session closed on a flat account (S9.4)
    CLOSE_OPEN = "close_open"  # the session closed on an account with a position (S9.4)


# Every (status, event) pair has a defined next status; tests walk the whole table.
TRANSITIONS: Mapping[tuple[RiskStatus, RiskEvent], RiskStatus] = {
    (RiskStatus.OK, RiskEvent.BREACH): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.OK, RiskEvent.LOCK_FLAT): RiskStatus.LOCKED,
    (RiskStatus.OK, RiskEvent.LOCK_OPEN): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.OK, RiskEvent.UNLOCK): RiskStatus.OK,
    (RiskStatus.OK, RiskEvent.FLAT_LOCKED): RiskStatus.OK,
    (RiskStatus.OK, RiskEvent.FLAT_CLEARED): RiskStatus.OK,
    (RiskStatus.OK, RiskEvent.RESET): RiskStatus.OK,
    (RiskStatus.OK, RiskEvent.HOLD): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.OK, RiskEvent.CLOSE_FLAT): RiskStatus.LOCKED,
    (RiskStatus.OK, RiskEvent.CLOSE_OPEN): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.BREACH): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.LOCK_FLAT): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.LOCK_OPEN): RiskStatus.LIQUIDATE_ONLY,
    # OK once flat (FLAT_CLEARED)
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.UNLOCK): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.FLAT_LOCKED): RiskStatus.LOCKED,
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.FLAT_CLEARED): RiskStatus.OK,
    # a reset never interrupts a liquidation
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.RESET): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.HOLD): RiskStatus.LIQUIDATE_ONLY,
    # a session close during a liquidation: it ends LOCKED through FLAT_LOCKED
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.CLOSE_FLAT): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.CLOSE_OPEN): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.LOCKED, RiskEvent.BREACH): RiskStatus.LOCKED,
    (RiskStatus.LOCKED, RiskEvent.LOCK_FLAT): RiskStatus.LOCKED,
    (RiskStatus.LOCKED, RiskEvent.LOCK_OPEN): RiskStatus.LOCKED,
    (RiskStatus.LOCKED, RiskEvent.UNLOCK): RiskStatus.OK,
    (RiskStatus.LOCKED, RiskEvent.FLAT_LOCKED): RiskStatus.LOCKED,
    (RiskStatus.LOCKED, RiskEvent.FLAT_CLEARED): RiskStatus.LOCKED,
    (RiskStatus.LOCKED, RiskEvent.RESET): RiskStatus.OK,
    (RiskStatus.LOCKED, RiskEvent.HOLD): RiskStatus.LOCKED,
    (RiskStatus.LOCKED, RiskEvent.CLOSE_FLAT): RiskStatus.LOCKED,
    (RiskStatus.LOCKED, RiskEvent.CLOSE_OPEN): RiskStatus.LOCKED,
}


def reason_for(triggers: Iterable[Trigger]) -> LockReason:
    """The lock reason a breach of ``triggers`` gives: the account's max loss (S9.3) above all,
    else daily when every one is a daily one, else weekly."""
    fired = set(triggers)
    if Trigger.MAX_LOSS in fired:
        return LockReason.ACCOUNT
    return LockReason.DAILY if fired <= DAILY_TRIGGERS else LockReason.WEEKLY


def escalated(current: LockReason, reason: LockReason) -> LockReason:
    """Lock reasons only escalate (S5.2): the higher ranked of the two."""
    return reason if REASON_RANK[reason] > REASON_RANK[current] else current
