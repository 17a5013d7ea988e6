"""Messages the ConnectionActor receives (S1): orders to place, session commands, the breach
prices to watch, snapshot requests and their timers. Broker events come as
``brokers.base`` events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from brokers.base import ModifyRequest, OrderRequest
from engine.host.urgency import Urgent


@dataclass(frozen=True, slots=True)
class Placement:
    """An order that passed its account's risk gate, with what the ledger needs to know."""

    request: OrderRequest
    kind: str
    cause: str


@dataclass(frozen=True, slots=True)
class PlaceOrders(Urgent):
    """``urgent``: a flatten's liquidations (decision 0030)."""

    orders: tuple[Placement, ...]
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class CancelWorking(Urgent):
    """``urgent``: a flatten's cancel of every working order (decision 0030)."""

    account: str
    symbol: str | None = None
    broker_order_ids: tuple[str, ...] = ()
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class TakeOffline:
    pass


@dataclass(frozen=True, slots=True)
class Reconnect:
    pass


@dataclass(frozen=True, slots=True)
class StartSession:
    """Sent once after the tree is built: open the session and learn the broker's positions.
    ``reconcile`` says whether this start counts as the connection returning (S3.1)."""

    reconcile: bool


@dataclass(frozen=True, slots=True)
class SetBands:
    """From a risk actor: the prices at which ``account`` must be evaluated again (S5.2), and
    the side of each position held (+1 long, -1 short): a price beyond the band on the side
    that loses may breach, and is evaluated first (decision 0030). ``None``: no alarm (the
    account is breaching already); a symbol left out: either side may breach."""

    account: str
    bands: Mapping[str, tuple[Decimal | None, Decimal | None]]
    sides: Mapping[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResyncAccount:
    """From the supervisor: a restarted account (or, for every account of the login, a
    restarted connection) needs the broker's positions and orders."""

    account: str


@dataclass(frozen=True, slots=True)
class RefreshAccount:
    """From an account whose fill the broker withdrew: a fresh snapshot, and reconcile it."""

    account: str


@dataclass(frozen=True, slots=True)
class RetrySnapshot:
    """A timer (S3.5, S5.6): ask again for the snapshot whose attempt ``after`` was unknown."""

    after: str


@dataclass(frozen=True, slots=True)
class SnapshotTimedOut:
    """A timer (S3.5): the attempt ``request`` got no answer in time — unknown, as an error."""

    request: str


@dataclass(frozen=True, slots=True)
class AttachAccount:
    account: str


@dataclass(frozen=True, slots=True)
class DetachAccount:
    account: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The connection is deleted or the engine stops: close the session, send nothing more."""


@dataclass(frozen=True, slots=True)
class DurabilityRestored:
    """The engine can make its state durable again after it could not (decision 0014): orders
    were held back meanwhile, so reconcile as after a return (S3.1)."""


@dataclass(frozen=True, slots=True)
class EventsPending:
    """The session's inbox has events: take them, in order."""


@dataclass(frozen=True, slots=True)
class ModifyOrder:
    """Change a working order at the broker (a mirror following its leader order, S8.5)."""

    request: ModifyRequest
