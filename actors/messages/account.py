"""Messages the AccountActor receives: from its connection (state, snapshots, orders not
sent), its group (copy offers, reconciliations, the leader's state), its risk actor (gate
decisions, the flatten in flight), the reset schedule, the supervisor and the engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from engine.domain.connections import ConnectionState
from engine.domain.copying import Role
from engine.domain.drift import DriftTerms
from engine.domain.mirroring import LeaderOrder
from engine.domain.order_ids import OrderKind
from engine.domain.risk_profile import RiskRules
from engine.domain.watching import OnDrift

# --- from the ConnectionActor ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The login's connection changed state (S1.4). The account passes it on to its risk actor
    and, for a leader, to its group."""

    connection: str
    state: ConnectionState


@dataclass(frozen=True, slots=True)
class OrderNotSent:
    client_order_id: str
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class Synced:
    """The broker's positions and working orders for one account, after a (re)connect."""

    snapshot: object  # brokers.base.AccountSnapshot
    cause: str
    reconcile: bool
    start: bool = False  # the engine's start, when every connection returns at once


@dataclass(frozen=True, slots=True)
class SnapshotUnknown:
    """S3.5: the broker's answer to the snapshot an account waits for was unknown (an error,
    a time-out, a refused or partial answer); nothing is decided from it, and it is asked for
    again in ``retry_in``. ``since`` names the first attempt of this wait (one warning each)."""

    connection: str
    since: str
    reason: str
    failures: int
    retry_in: timedelta
    reconcile: bool  # the answer waited for reconciles the account (S3.1)
    start: bool = False


# --- from the CopyGroupActor -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AwaitingLeader:
    """S3.5: this follower waits to be reconciled toward a leader whose snapshot failed."""

    group: str
    leader: str
    connection: str
    since: str
    reason: str


@dataclass(frozen=True, slots=True)
class LeaderUnconfirmed:
    """The leader's positions are no longer confirmed (its connection changed state, or a fill
    of it was corrected): a reconciliation toward them that waits for this follower's own
    snapshot is dropped; the leader's next confirmed answer reconciles it again."""

    group: str


@dataclass(frozen=True, slots=True)
class CopyOffer:
    """One leader fill offered to one follower, with that membership's terms (S2.2, S2.3)."""

    group: str
    cause: str  # the leader fill, for the client order id (S2.6)
    fill_id: str
    leader_symbol: str
    symbol: str  # mapped (S2.3)
    before: int
    after: int
    ratio: Decimal
    max_qty: int | None
    fill_time: datetime
    # Offered again at a start because a crash cut the fan-out short (S2.9): decided once
    # the follower's broker position is confirmed, never before.
    completion: bool = False
    # Orders mode (S8.4): the follower mirrors the leader's working orders, and this fill of
    # the leader's order ``order_id`` is matched against its mirror's fills.
    mirrored: bool = False
    order_id: str | None = None
    order_done: bool = False  # the leader's order has nothing left working


@dataclass(frozen=True, slots=True)
class MirrorTerms:
    """A follower's terms in orders mode, with the leader's positions when they were sent
    (the target an unmatched mirror fill is settled toward, S8.4)."""

    group: str
    ratio: Decimal
    max_qty: int | None
    symbol_map: tuple[tuple[str, str], ...]
    leader_positions: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class MirrorOffer:
    """Leader orders that were placed, changed or ended, to mirror (S8.2, S8.5): a bracket's
    entry comes with its legs, an OCO pair's orders together."""

    terms: MirrorTerms
    orders: tuple[LeaderOrder, ...]


@dataclass(frozen=True, slots=True)
class MirrorRestore:
    """The follower starts copying again (S8.6, S8.7) — its connection returned, its membership
    was re-enabled or it joined: ``orders`` is every leader order working now. Mirrors of
    orders gone are cancelled, changed ones modified, and closing ones placed (never opening)."""

    terms: MirrorTerms
    orders: tuple[LeaderOrder, ...]
    cause: str


@dataclass(frozen=True, slots=True)
class MirrorGraceEnded:
    """``mirror_grace`` after a leader fill left a share ``owed`` to a working mirror (S8.4)."""

    leader_order: str
    seq: int


@dataclass(frozen=True, slots=True)
class ReconcileOrder:
    """Reconcile flatten-only toward the leader's current net positions (S3)."""

    group: str
    cause: str
    leader_positions: Mapping[str, int]
    ratio: Decimal
    max_qty: int | None
    symbol_map: tuple[tuple[str, str], ...]
    # Orders mode: the leader's working orders, mirrored after the reconciliation (S8.7).
    mirror: MirrorRestore | None = None


@dataclass(frozen=True, slots=True)
class SyncOrder:
    """From the group: the user's sync (S6.2) toward the leader's net positions, None when its
    broker has not confirmed them (S3.5)."""

    group: str
    cause: str
    leader_positions: Mapping[str, int] | None
    ratio: Decimal
    max_qty: int | None
    symbol_map: tuple[tuple[str, str], ...]
    expect: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class DriftWatch:
    """S10.1: what the follower's drift watch needs of its group: its terms, whether the
    membership is enabled, the group's ``on_drift``, and the leader's positions while its
    broker confirmed them (``None`` while they are unknown, S3.5). Sent when any of them
    changes; between these the follower keeps the leader's positions from each copy offer."""

    group: str
    leader: str
    terms: DriftTerms
    enabled: bool
    on_drift: OnDrift
    leader_positions: Mapping[str, int] | None


# --- from the RiskActor and the reset schedule -------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlattenActive:
    """Whether a flatten is in flight for the account (S3.2: reconciliation then sends
    nothing)."""

    active: bool


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The gate's answer: ``qty`` as allowed (0: not sent)."""

    client_order_id: str
    qty: int


@dataclass(frozen=True, slots=True)
class ApplyReset:
    """A scheduled reset (S5.8) is due: mark to market and roll the P&L figures."""

    kind: str  # engine.domain.resets.ResetKind
    at: datetime


# --- from itself, the supervisor and the engine ------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryCopy:
    """S2.8: re-send a rejected closing copy (same cause, next attempt); a rejected drift
    reduction is retried the same way, as its own kind (S10.2)."""

    cause: str
    symbol: str
    qty: int
    attempt: int
    kind: OrderKind = OrderKind.COPY


@dataclass(frozen=True, slots=True)
class DriftDue:
    """S10.1: the drift watch's one timer — a drift's grace ends, or the periodic check."""

    at: datetime


@dataclass(frozen=True, slots=True)
class SendBook:
    """From a restarted risk actor: tell me your book again."""


@dataclass(frozen=True, slots=True)
class SendPositions:
    """From a restarted group: tell me the leader's positions again (no reconciliation)."""


@dataclass(frozen=True, slots=True)
class SetRules:
    """The account's risk keys changed: the book charges their commissions (S9.1)."""

    rules: RiskRules


@dataclass(frozen=True, slots=True)
class ReduceExcess:
    """From the risk actor (S9.2): a fill took the account above ``max_contracts``; reduce
    ``symbol`` by the fewest contracts that bring the account within it, sized on the book as
    it is when this arrives (the reductions asked for earlier fills already in it)."""

    symbol: str
    cause: str


@dataclass(frozen=True, slots=True)
class SetRole:
    role: Role
