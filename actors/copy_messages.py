"""Messages of the copy path (S2, S3): leader account → group → follower accounts.

They live in one module because the group and the account actors each receive some of them and
send the others; keeping them apart from both actor modules avoids an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

# --- received by CopyGroupActor ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaderFilled:
    """A fill on the group's leader took its net position in ``symbol`` from ``before`` to
    ``after`` (S2.1)."""

    leader: str
    fill_id: str
    symbol: str
    before: int
    after: int
    fill_time: datetime


@dataclass(frozen=True, slots=True)
class MemberSynced:
    """An account of the group learned its broker positions after its connection returned
    (S3.1). For the leader, ``positions`` is ``L_now``."""

    account: str
    leader: bool
    positions: Mapping[str, int]
    cause: str
    reconcile: bool = True  # False at a first start: learn L_now, send nothing
    start: bool = False  # every connection returns at once: the leader's sync reconciles all
    # A follower ran, at this snapshot, a reconciliation toward the leader that had waited for
    # its positions: its return is reconciled already (S3.3: one record).
    reconciled: bool = False


@dataclass(frozen=True, slots=True)
class LeaderUnknown:
    """S3.5: the snapshot the group's leader waits for was unknown (``since`` names the first
    attempt of that wait); followers waiting to be reconciled toward it are told why."""

    leader: str
    connection: str
    since: str
    reason: str
    reconcile: bool  # the answer waited for reconciles every follower (a return, a start)


@dataclass(frozen=True, slots=True)
class LeaderCorrected:
    """The broker withdrew or corrected a fill of the leader: its positions are unknown until
    a fresh snapshot, and then every follower is reconciled toward them."""

    leader: str
    fill_id: str


# --- received by AccountActor -------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class ReconcileOrder:
    """Reconcile flatten-only toward the leader's current net positions (S3)."""

    group: str
    cause: str
    leader_positions: Mapping[str, int]
    ratio: Decimal
    max_qty: int | None
    symbol_map: tuple[tuple[str, str], ...]


# --- received by CopyGroupActor from risk actors and the engine -----------------------------------


@dataclass(frozen=True, slots=True)
class DisableMember:
    """S5.3 step 3: the follower's account is locked or liquidating; say why on its membership."""

    account: str
    reason: str


@dataclass(frozen=True, slots=True)
class EnableMember:
    """The lock that disabled the membership was released (unlock or reset)."""

    account: str


@dataclass(frozen=True, slots=True)
class Membership:
    """A follower's terms in a group."""

    account: str
    ratio: Decimal
    max_qty: int | None = None
    symbol_map: tuple[tuple[str, str], ...] = ()
    disable_reason: str = ""


@dataclass(frozen=True, slots=True)
class AddMember:
    membership: Membership


@dataclass(frozen=True, slots=True)
class SetTerms:
    """A follower's new ratio, max_qty and symbol_map; its disable reason stays the group's
    own (``membership.disable_reason`` is ignored)."""

    membership: Membership


@dataclass(frozen=True, slots=True)
class RemoveMember:
    account: str
