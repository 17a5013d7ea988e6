"""Messages the CopyGroupActor receives (S2, S3): its leader's fills, state and snapshots, its
members' returns, and membership changes from the risk actors and the engine. The group is
also told its leader connection's ``StateChanged`` (``actors.messages.account``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.domain.copying import LeaderFill, Membership
from engine.domain.mirroring import LeaderOrder
from engine.domain.watching import OnDrift

# --- from the accounts of the group ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaderOrdersChanged:
    """The leader's working orders changed (S8.2, S8.5): placed (a bracket's entry with its
    legs), modified, activated or ended. With ``complete``, ``orders`` is every one working
    now, from a snapshot confirmed since its connection last became connected."""

    orders: tuple[LeaderOrder, ...]
    complete: bool = False


@dataclass(frozen=True, slots=True)
class MirrorsWanted:
    """A follower found mirrors at its broker it does not know (its actor was rebuilt): it
    is sent the leader's working orders to match them with (S8.9)."""

    account: str


@dataclass(frozen=True, slots=True)
class LeaderFilled:
    """A fill on the group's leader, to fan out (S2.1)."""

    fill: LeaderFill


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


# --- from risk actors and the engine -----------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class SetOnDrift:
    """The group's ``on_drift`` changed (S10.2): from the next drift episode on."""

    on_drift: OnDrift


# --- from the engine (the user's sync command, S6.2) -------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncMember:
    """Bring a follower to ``t(L)`` of the leader's confirmed position (S6.2). ``expect``: the
    orders the user was shown and confirmed; when the plan differs now, nothing is sent."""

    account: str
    cause: str
    expect: Mapping[str, int] | None = None
