"""What the parts of an AccountActor share: its state and the few steps each part calls.

The actor is one class (``actors/account.py``) built from parts, each a module of one concern:
what the broker confirmed (``actors/account_confirm.py``: snapshots and answers that are
unknown, S3.5) and the broker's order events (``actors/account_orders.py``). Each part
subclasses :class:`AccountParts`, so the type checker knows what it may use, and the actor
cannot be built without the steps the parts call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import timedelta

from actors.book import Book
from actors.late_copies import HeldFill
from actors.leader_orders import LeaderOrders
from actors.messages.account import (
    CopyOffer,
    MirrorGraceEnded,
    MirrorOffer,
    MirrorRestore,
    ReconcileOrder,
    RetryCopy,
)
from actors.mirrors import Mirrors
from actors.missed_copies import MissedCopies
from actors.recent import RecentIds
from actors.resolution import Unresolved
from actors.stale_prices import StalePrices
from actors.unknowns import Unknowns
from engine.domain.connections import ConnectionState
from engine.domain.copying import Role
from engine.host.address import Address
from engine.host.base import ActorContext


class AccountParts(ABC):
    ctx: ActorContext
    id: str
    connection: str
    connection_state: ConnectionState
    role: Role
    risk: Address
    book: Book
    max_copy_age: timedelta
    synced: bool
    confirmed: bool
    returned: bool
    flattening: bool
    pending_reconcile: ReconcileOrder | None
    pending_offers: list[CopyOffer | RetryCopy]
    unfanned: list[HeldFill]
    unresolved: Unresolved
    unknowns: Unknowns
    missed: MissedCopies  # S10.3
    prices: StalePrices  # S10.3
    seen_fills: RecentIds
    corrected_fills: RecentIds
    leader_orders: LeaderOrders
    mirrors: Mirrors
    pending_mirrors: list[MirrorOffer | MirrorRestore | MirrorGraceEnded]

    @abstractmethod
    def _tell_risk(self) -> None: ...

    @abstractmethod
    def _persist(self) -> None: ...

    @abstractmethod
    def _copy(self, offer: CopyOffer) -> None: ...

    @abstractmethod
    def _retry(self, retry: RetryCopy) -> None: ...

    @abstractmethod
    def _reconcile(self, order: ReconcileOrder) -> None: ...


__all__ = ["AccountParts"]
