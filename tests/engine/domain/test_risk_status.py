"""S5: the risk status transition table, total and pair by pair against SEMANTICS.md, and the
lock reasons, which only escalate."""

from __future__ import annotations

import itertools

import pytest

from engine.domain.risk_rules import Trigger
from engine.domain.risk_status import (
    TRANSITIONS,
    LockReason,
    RiskEvent,
    RiskStatus,
    escalated,
    reason_for,
)

# What SEMANTICS.md S5 says each (status, event) leads to.
SPEC: dict[tuple[RiskStatus, RiskEvent], RiskStatus] = {
    # S5.3 step 2
    (RiskStatus.OK, RiskEvent.BREACH): RiskStatus.LIQUIDATE_ONLY,
    # S5.7: a flat account becomes LOCKED at once
    (RiskStatus.OK, RiskEvent.LOCK_FLAT): RiskStatus.LOCKED,
    # S5.7: with a position it goes through S5.3 first
    (RiskStatus.OK, RiskEvent.LOCK_OPEN): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.OK, RiskEvent.UNLOCK): RiskStatus.OK,
    # an S6 flatten finishing changes no status
    (RiskStatus.OK, RiskEvent.FLAT_LOCKED): RiskStatus.OK,
    (RiskStatus.OK, RiskEvent.FLAT_CLEARED): RiskStatus.OK,
    (RiskStatus.OK, RiskEvent.RESET): RiskStatus.OK,
    # already liquidating; the reason may escalate
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.BREACH): RiskStatus.LIQUIDATE_ONLY,
    # S5.7: the reason becomes manual, the flatten goes on
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.LOCK_FLAT): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.LOCK_OPEN): RiskStatus.LIQUIDATE_ONLY,
    # S5.7: OK once flat
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.UNLOCK): RiskStatus.LIQUIDATE_ONLY,
    # S5.3 step 6
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.FLAT_LOCKED): RiskStatus.LOCKED,
    # S5.8: the reset cleared the reason; OK once flat
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.FLAT_CLEARED): RiskStatus.OK,
    # S5.8: a reset never interrupts a liquidation
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.RESET): RiskStatus.LIQUIDATE_ONLY,
    # S5.2: evaluated in every status; the reason may escalate
    (RiskStatus.LOCKED, RiskEvent.BREACH): RiskStatus.LOCKED,
    (RiskStatus.LOCKED, RiskEvent.LOCK_FLAT): RiskStatus.LOCKED,
    # S5.5: stays LOCKED while a manual trade is flattened
    (RiskStatus.LOCKED, RiskEvent.LOCK_OPEN): RiskStatus.LOCKED,
    # S5.7
    (RiskStatus.LOCKED, RiskEvent.UNLOCK): RiskStatus.OK,
    # S5.5
    (RiskStatus.LOCKED, RiskEvent.FLAT_LOCKED): RiskStatus.LOCKED,
    (RiskStatus.LOCKED, RiskEvent.FLAT_CLEARED): RiskStatus.LOCKED,
    # S5.8: the reset cleared the lock
    (RiskStatus.LOCKED, RiskEvent.RESET): RiskStatus.OK,
    # ARCHITECTURE (Supervisor): past the restart intensity, no new exposure, no flatten
    (RiskStatus.OK, RiskEvent.HOLD): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.HOLD): RiskStatus.LIQUIDATE_ONLY,
    # already refusing everything
    (RiskStatus.LOCKED, RiskEvent.HOLD): RiskStatus.LOCKED,
    # S9.4: the session close of a flat account locks it at once (as S5.7's lock of a flat
    # account); with a position it goes through S5.3 first
    (RiskStatus.OK, RiskEvent.CLOSE_FLAT): RiskStatus.LOCKED,
    (RiskStatus.OK, RiskEvent.CLOSE_OPEN): RiskStatus.LIQUIDATE_ONLY,
    # S9.4: during a liquidation the close only sets its reason; it ends LOCKED once flat
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.CLOSE_FLAT): RiskStatus.LIQUIDATE_ONLY,
    (RiskStatus.LIQUIDATE_ONLY, RiskEvent.CLOSE_OPEN): RiskStatus.LIQUIDATE_ONLY,
    # already refusing everything
    (RiskStatus.LOCKED, RiskEvent.CLOSE_FLAT): RiskStatus.LOCKED,
    (RiskStatus.LOCKED, RiskEvent.CLOSE_OPEN): RiskStatus.LOCKED,
}


def test_s5_the_transition_table_is_total() -> None:
    pairs = set(itertools.product(RiskStatus, RiskEvent))
    assert set(TRANSITIONS) == pairs
    assert len(pairs) == 30
    assert set(SPEC) == pairs


@pytest.mark.parametrize(("status", "event"), list(SPEC))
def test_s5_transition_pair(status: RiskStatus, event: RiskEvent) -> None:
    assert TRANSITIONS[(status, event)] is SPEC[(status, event)]


def test_s5_2_a_breach_of_daily_triggers_only_is_a_daily_lock() -> None:
    assert reason_for([Trigger.DAILY_LOSS, Trigger.TRAILING]) is LockReason.DAILY
    assert reason_for([Trigger.DAILY_PROFIT, Trigger.WEEKLY_LOSS]) is LockReason.WEEKLY
    assert reason_for([Trigger.WEEKLY_PROFIT]) is LockReason.WEEKLY


def test_s9_3_a_breach_of_the_accounts_max_loss_is_an_account_lock() -> None:
    assert reason_for([Trigger.MAX_LOSS]) is LockReason.ACCOUNT
    assert reason_for([Trigger.DAILY_LOSS, Trigger.MAX_LOSS]) is LockReason.ACCOUNT
    assert reason_for([Trigger.WEEKLY_LOSS, Trigger.MAX_LOSS]) is LockReason.ACCOUNT


@pytest.mark.parametrize("current", list(LockReason))
@pytest.mark.parametrize("reason", list(LockReason))
def test_s5_2_lock_reasons_only_escalate(current: LockReason, reason: LockReason) -> None:
    # S5.2's ranking, S9 included
    order = [
        LockReason.NONE,
        LockReason.SESSION_CLOSE,
        LockReason.DAILY,
        LockReason.WEEKLY,
        LockReason.ACCOUNT,
        LockReason.MANUAL,
    ]
    assert escalated(current, reason) is max(current, reason, key=order.index)
