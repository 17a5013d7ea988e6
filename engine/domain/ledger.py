"""The order ledger's values (S2.6): an order about to be sent, and one whose outcome is
unknown at a start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.domain.order_ids import OrderKind, label

NOT_SENT = "not_sent"  # the ledger's status of an order held back (decision 0014)
_UNLOGGED = frozenset({label(OrderKind.LIQUIDATE)})


def sent_unlogged(kind: str) -> bool:
    """Whether an order of ``kind`` (its ledger label) still goes out when its intent cannot be
    made durable — a full disk, say (decision 0014). Only a liquidation: it closes whatever
    the broker shows open in its contract, so sent again it closes nothing more, and a risk
    breach must flatten whatever the disk does. Copies and reconciliations are held back."""
    return kind in _UNLOGGED


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One order the engine is about to send: durable before it reaches the broker (S2.6)."""

    client_order_id: str
    account: str
    connection: str
    symbol: str
    qty: int
    order_type: str
    kind: str
    cause: str


@dataclass(frozen=True, slots=True)
class UnresolvedOrder:
    """An order the engine sent and never heard back about (ledger status ``sent`` or
    ``unknown`` at a start): its outcome is asked of the broker, never guessed (S2.6).
    ``sent_at``: when its intent was written; ``missed``: a ``missed_copy`` entry named it
    already (S10.3: an order still unanswered after the start is judged once)."""

    client_order_id: str
    kind: OrderKind
    cause: str
    attempt: int
    sent_at: datetime | None = None
    missed: bool = False
