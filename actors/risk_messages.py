"""Messages between an account and its risk actor (S5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.order_ids import OrderKind

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
class AccountChanged:
    """The account's positions changed (fill, sync, liquidation accepted or done)."""

    positions: Mapping[str, int]
    liquidating: frozenset[str]


@dataclass(frozen=True, slots=True)
class LiquidationOutcome:
    client_order_id: str
    symbol: str
    outcome: str  # "filled" | "done" | "rejected" | "not_sent"
    reason: str


# --- received by AccountActor -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The gate's answer: ``qty`` as allowed (0: not sent)."""

    client_order_id: str
    qty: int
