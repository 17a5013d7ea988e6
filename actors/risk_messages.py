"""Messages between an account and its risk actor (S5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from engine.domain.order_ids import OrderKind

# --- received by RiskActor ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderIntent:
    client_order_id: str
    kind: OrderKind
    cause: str
    symbol: str
    qty: int  # signed
    position: int  # filled position in the symbol
    projected: int  # position once the engine's other working orders fill (S2.2's P)
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class GateOrder:
    """Pass ``intent`` through the risk gate (S5.4, S5.5) and on to the broker."""

    intent: OrderIntent


@dataclass(frozen=True, slots=True)
class Holding:
    """One open position as the risk actor needs it to price P&L (S5.1)."""

    qty: int
    reference: Decimal  # average entry price, or the last daily-reset mark
    point_value: Decimal


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """The account's book changed (fill, sync, reset): everything S5.1's figures need."""

    positions: Mapping[str, Holding]
    realized_daily: Decimal
    realized_weekly: Decimal
    balance: Decimal
    liquidations: Mapping[str, str] = field(default_factory=dict)  # symbol -> working coid
    confirmed: bool = True  # positions and working orders confirmed by the broker
    working: int = 0  # orders other than liquidations still working: they could still fill


@dataclass(frozen=True, slots=True)
class Evaluate:
    """Prices crossed one of the account's precomputed breach prices: evaluate the triggers
    against the extremes seen since the last look (S5.2)."""

    ranges: Mapping[str, tuple[Decimal, Decimal]]


@dataclass(frozen=True, slots=True)
class ResetApplied:
    """The account has applied a reset to its figures; the risk actor applies it to locks."""

    kind: str  # engine.domain.resets.ResetKind
    figures: AccountChanged


@dataclass(frozen=True, slots=True)
class LiquidationOutcome:
    client_order_id: str
    symbol: str
    outcome: str  # "filled" | "done" | "rejected" | "not_sent"
    reason: str


# --- received by AccountActor -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlattenActive:
    """Whether a flatten is in flight for the account (S3.2: reconciliation then sends
    nothing)."""

    active: bool


@dataclass(frozen=True, slots=True)
class ApplyReset:
    """A scheduled reset (S5.8) is due: mark to market and roll the P&L figures."""

    kind: str  # engine.domain.resets.ResetKind
    at: datetime


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The gate's answer: ``qty`` as allowed (0: not sent)."""

    client_order_id: str
    qty: int
