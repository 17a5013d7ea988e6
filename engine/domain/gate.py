"""The risk gate's verdict on one order (S5.4, S5.5): how much of it may go, or why none may.

Pure, so the risk actor that guards the account and a preview shown to a person (a sync's,
S6.2) judge an order alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.domain.copy_rule import closing_part
from engine.domain.risk_status import RiskStatus

LIQUIDATE_ONLY_TEXT = "Account is in LIQUIDATE_ONLY mode — only closing trades allowed."
LOCKED_TEXT = "Account is LOCKED — no trades allowed."


@dataclass(frozen=True, slots=True)
class Verdict:
    """``allowed``: the part of the order that may go (signed like it; 0 when none may);
    ``refusal``: the rejection's text when the order is refused outright, else empty."""

    allowed: int
    refusal: str = ""


def gate(status: RiskStatus, projected: int, qty: int, *, liquidating: bool = False) -> Verdict:
    """The order ``qty`` against ``projected`` (P of S2.2) on an account in ``status``;
    ``liquidating``: a flatten is in flight in its symbol, which nothing closes but it (an
    order is clipped against it, never through zero)."""
    if status is RiskStatus.LOCKED:
        return Verdict(0, LOCKED_TEXT)
    closing = closing_part(projected, qty)
    opening = qty - closing
    if liquidating:
        closing = 0
    if status is RiskStatus.LIQUIDATE_ONLY:
        if opening and ((not closing and not liquidating) or closing_part(projected, qty) == 0):
            return Verdict(0, LIQUIDATE_ONLY_TEXT)
        return Verdict(closing)
    return Verdict(closing + opening)


__all__ = ["LIQUIDATE_ONLY_TEXT", "LOCKED_TEXT", "Verdict", "gate"]
