"""The values a follower's mirrors are made of (S8) and what the parts of
:class:`~actors.mirrors.Mirrors` share: placing, modifying and cancelling are
``actors/mirrors.py``; the fills (S8.4) ``actors/mirror_fills.py``; keeping them within the
position (S8.3, S2.10) ``actors/mirror_positions.py``, and those found at the broker and not
known yet ``actors/mirror_found.py``; starting to copy again (S8.6, S8.7)
``actors/mirror_restore.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from actors.book import Book
from actors.messages.account import (
    CopyOffer,
    MirrorGraceEnded,
    MirrorRestore,
    MirrorTerms,
)
from brokers.base import WorkingOrder
from engine.domain.copying import Role
from engine.domain.mirroring import LeaderOrder, Resting
from engine.host.base import ActorContext


class MirrorHost(Protocol):
    """What of its account actor the mirrors use."""

    ctx: ActorContext
    id: str
    connection: str
    role: Role
    book: Book
    flattening: bool
    max_copy_age: timedelta

    def copy_at_market(self, offer: CopyOffer) -> None: ...

    def send_owed(self, cause: str, symbol: str, qty: int, fill_time: datetime) -> None: ...

    def send_reconcile(self, cause: str, symbol: str, qty: int) -> None: ...


@dataclass(slots=True)
class Mirror:
    """The follower's mirror of one leader order."""

    leader: LeaderOrder
    group: str
    symbol: str  # the follower's
    version: int
    client_order_id: str
    qty: int = 0  # signed total placed
    filled: int = 0  # signed quantity filled
    opening: bool = False  # placed as an opening order (an entry mirror, S2.10)
    pair: str | None = None  # the OCO pair it belongs to (sized once, S8.3)
    # Placed through the position (S8.3's split): the part of ``qty`` placed as closing it.
    closing: int = 0
    # A bracket leg at the broker: an exit of its entry's fill, sized by that fill (not by
    # S8.3's rescaling) and never an opening order. A leader's leg mirrored on its own (its
    # entry was not mirrored here) is an order like any other.
    leg: bool = False
    working: bool = True  # placed and not ended (or on its way)
    active: bool = True  # False for a bracket leg until its entry fills at the broker
    # S8.4: mirror fills no leader fill matched yet, and a share left to the mirror.
    unmatched: int = 0
    owed: int = 0
    owed_cause: str = ""
    owed_since: datetime | None = None
    grace: int = 0  # the timer that counts (a newer share restarts it)
    market_after_cancel: bool = False
    # A cancel or a modification decided while the mirror was on its way to the broker (no
    # broker id yet): sent once the broker accepts it.
    cancel_pending: bool = False
    modify_pending: tuple[int, str] | None = None

    @property
    def remaining(self) -> int:
        return self.qty - self.filled if self.working else 0

    @property
    def resting(self) -> Resting:
        """What S8.3 judges of it beside the others: a mirror split through the position
        closes with what is left of its closing part (its fills go into the position first)."""
        closing = max(0, self.closing - abs(self.filled)) if self.opening else None
        return Resting(self.remaining, self.opening, self.pair, closing)


class MirrorParts(ABC):
    """What the parts of :class:`~actors.mirrors.Mirrors` share: the mirrors, their terms, and
    the steps each part calls of another."""

    host: MirrorHost
    grace: timedelta
    by_leader: dict[str, Mirror]
    by_order: dict[str, str]  # mirror client order id -> leader order id
    versions: dict[str, int]  # mirror id prefix -> highest version the broker knows
    terms: MirrorTerms | None
    leader_now: dict[str, int]  # the leader's position after its last fill offered
    decided: set[str]
    # The mirrors the broker listed in its last snapshot, by client order id: how each is
    # linked there (a bracket leg, an OCO pair), for mirrors found after a restart (S8.9).
    listed: dict[str, WorkingOrder]
    # Mirrors found at the broker whose cancel was sent before they were known here (S8.3).
    dropped: set[str]

    @abstractmethod
    def _skip(self, text: str) -> None: ...

    @abstractmethod
    def _cancel(self, mirror: Mirror) -> None: ...

    @abstractmethod
    def _modify(self, mirror: Mirror, total: int, why: str) -> None: ...

    @abstractmethod
    def _place(
        self,
        order: LeaderOrder,
        offered: Iterable[LeaderOrder],
        terms: MirrorTerms,
        *,
        reduce_only: bool,
        cause: str = "",
    ) -> set[str]: ...

    @abstractmethod
    def _settle(self, mirror: Mirror) -> None: ...

    @abstractmethod
    def position_changed(self, symbol: str, *, placing: bool = False) -> None: ...

    @abstractmethod
    def _closable(self, symbol: str) -> int: ...

    @abstractmethod
    def _pairs(self, symbol: str, wanted: Callable[[Mirror], bool]) -> list[list[Mirror]]: ...

    @abstractmethod
    def hold_found(self, symbol: str | None = None) -> None: ...

    @abstractmethod
    def grace_ended(self, message: MirrorGraceEnded) -> None: ...

    @abstractmethod
    def restore(self, restore: MirrorRestore) -> None: ...
