"""Messages the RiskActor receives (S5, S6): from its account (orders to gate, the book, the
outcome of each liquidation), from the connection (prices crossed a breach price), and
commands from the engine and the supervisor. It is also told its connection's
``StateChanged`` (``actors.messages.account``), passed on by the account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from brokers.base import OrderRequest
from engine.domain.order_ids import OrderKind
from engine.domain.risk_profile import RiskValue
from engine.domain.sessions import Blackout
from engine.host.urgency import Urgent

# --- from the AccountActor -----------------------------------------------------------------------


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
    # A mirror (S8): the working order, bracket or OCO pair to place, its quantity set to
    # what the gate allows.
    request: OrderRequest | None = None
    # The engine's orders counted in ``projected`` not yet answered by the broker (client order
    # id, quantity): what the gate cut of them is taken back out of ``projected``.
    in_flight: tuple[tuple[str, int], ...] = ()
    # S9.2, given while the account has max contracts (``Book.exposure``): the resting orders in
    # its symbol beside it (buy qty, sell qty) and every other symbol's worst case.
    resting: tuple[int, int] = (0, 0)
    others: tuple[tuple[str, int], ...] | None = None


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
    # The account's last fill price in the symbol: its price until the market has one, so the
    # risk actor and the account price the book alike (S5.1).
    last_fill: Decimal | None = None


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
    # S9.2: P of S2.2 in every symbol, and the working orders not counted in it (resting
    # mirrors, the trader's own) as (buy qty, sell qty): what may still open.
    projection: Mapping[str, int] = field(default_factory=dict)
    resting: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    commissions: Decimal = Decimal(0)  # S9.1: charged since the account was created


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


# --- from the ConnectionActor ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evaluate(Urgent):
    """Prices crossed one of the account's precomputed breach prices: evaluate the triggers
    against the extremes seen since the last look (S5.2). ``urgent`` when a price crossed on
    the side that loses (a breach may be due), not only on the side of a new high."""

    ranges: Mapping[str, tuple[Decimal, Decimal]]
    urgent: bool = False


# --- from the engine, the supervisor and its own timers -----------------------------------------


@dataclass(frozen=True, slots=True)
class Lock:
    pass


@dataclass(frozen=True, slots=True)
class Unlock:
    pass


@dataclass(frozen=True, slots=True)
class Flatten:
    """S6: flatten the account (Cockpit command); changes no risk status."""

    cause: str


@dataclass(frozen=True, slots=True)
class RepublishBands:
    """From the supervisor: the connection was restarted and lost the breach prices."""


@dataclass(frozen=True, slots=True)
class SupervisorHold:
    """Restart intensity exceeded for an actor of this account: LIQUIDATE_ONLY, no flatten."""

    reason: str


@dataclass(frozen=True, slots=True)
class SetLimits:
    """The account's keys changed at run time (S5.2, S9): ``limits`` is the whole of its
    effective keys (its profile's overridden by its own, S9.7); ``changed`` the keys set by
    this change, each re-armed at its new value (S5.7's override, S9.3)."""

    limits: Mapping[str, RiskValue]
    changed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SetBlackouts:
    """The engine-wide blackout intervals changed (S9.5): all of them."""

    blackouts: tuple[Blackout, ...]


@dataclass(frozen=True, slots=True)
class SessionClose:
    """A timer: the account's ``flatten_at`` came (S9.4), at ``at``."""

    at: datetime


@dataclass(frozen=True, slots=True)
class BlackoutEdge:
    """A timer: a blackout interval starts or ends now (S9.5)."""

    at: datetime


@dataclass(frozen=True, slots=True)
class SetMembership:
    group: str | None


@dataclass(frozen=True, slots=True)
class RetryFlatten:
    """Retry the flatten numbered ``flatten`` after its ``failures``-th failure (a timer)."""

    flatten: int
    failures: int
