"""The risk gate's verdict on one order (S5.4, S5.5), as the risk actor and a sync's preview
both judge it."""

from __future__ import annotations

import pytest

from engine.domain.gate import LIQUIDATE_ONLY_TEXT, LOCKED_TEXT, Verdict, gate
from engine.domain.risk_status import RiskStatus

OK, LIQ, LOCKED = RiskStatus.OK, RiskStatus.LIQUIDATE_ONLY, RiskStatus.LOCKED


@pytest.mark.parametrize(
    ("status", "projected", "qty", "liquidating", "verdict"),
    [
        (OK, 0, 3, False, Verdict(3)),  # S5.4: OK lets every order go
        (OK, 2, -5, False, Verdict(-5)),
        (OK, 2, -5, True, Verdict(-3)),  # against a flatten in flight: never through zero
        (LOCKED, 2, -2, False, Verdict(0, LOCKED_TEXT)),  # S5.5: nothing, not even closing
        (LIQ, 2, -2, False, Verdict(-2)),  # closing passes
        (LIQ, 2, -5, False, Verdict(-2)),  # through zero: clipped to the closing part
        (LIQ, 2, 1, False, Verdict(0, LIQUIDATE_ONLY_TEXT)),  # adding is refused
        (LIQ, 0, -1, False, Verdict(0, LIQUIDATE_ONLY_TEXT)),  # opening is refused
        (LIQ, 2, -2, True, Verdict(0)),  # the flatten closes it: clipped to nothing
    ],
)
def test_the_gate(
    status: RiskStatus, projected: int, qty: int, liquidating: bool, verdict: Verdict
) -> None:
    assert gate(status, projected, qty, liquidating=liquidating) == verdict
