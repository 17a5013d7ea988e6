"""What an actor behaviour sees of the runtime that hosts it.

A behaviour is a plain class: private state plus :meth:`Behaviour.receive`. It knows nothing of
threads. It talks to other actors only with :meth:`ActorContext.tell` (fire and forget), asks
the clock for "now", and schedules messages to itself or others on the engine clock. Addresses are
stable ids (``("account", "F1")``), so a restarted actor keeps its address and its mailbox.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from brokers.clock import Clock
from engine.host.address import Address
from engine.host.market import Market
from engine.host.storage import Storage
from engine.host.views import Views

log = structlog.get_logger("engine.host")


class Behaviour(Protocol):
    def receive(self, message: object) -> None: ...


Factory = Callable[["ActorContext"], Behaviour]
FailureHook = Callable[[Address, BaseException], None]


class TimerQueue:
    """Messages due at an instant of the engine clock, fired in (time, order scheduled) order."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, Address, object]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def schedule(self, when: datetime, to: Address, message: object) -> None:
        with self._lock:
            heapq.heappush(self._heap, (when, next(self._seq), to, message))

    def next_due(self) -> datetime | None:
        with self._lock:
            return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime) -> list[tuple[Address, object]]:
        out: list[tuple[Address, object]] = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                _, _, to, message = heapq.heappop(self._heap)
                out.append((to, message))
        return out


@dataclass
class Services:
    """Everything outside the actors that a behaviour may use.

    ``stopping`` is set once, first thing, when the engine begins to stop: from then on no
    order is placed (every placement looks at it, the last time after its intent is written),
    whatever the actors still have queued."""

    clock: Clock
    storage: Storage
    timers: TimerQueue = field(default_factory=TimerQueue)
    market: Market | None = None
    stopping: threading.Event = field(default_factory=threading.Event)


class ActorContext:
    """The handle a behaviour holds: its address, tell, time and timers, and the storage door
    it saves and reads through."""

    __slots__ = ("address", "runtime", "services")

    def __init__(self, runtime: Runtime, address: Address) -> None:
        self.runtime = runtime
        self.address = address
        self.services = runtime.services

    @property
    def clock(self) -> Clock:
        return self.services.clock

    @property
    def storage(self) -> Storage:
        return self.services.storage

    @property
    def market(self) -> Market:
        market = self.services.market
        assert market is not None, "the engine wires a market before spawning actors"
        return market

    def now(self) -> datetime:
        return self.services.clock.now()

    @property
    def stopping(self) -> bool:
        """The engine is stopping: place nothing more."""
        return self.services.stopping.is_set()

    def tell(self, to: Address, message: object) -> None:
        self.runtime.tell(to, message)

    def schedule(self, delay: timedelta, to: Address, message: object) -> None:
        self.services.timers.schedule(self.now() + delay, to, message)

    def defer(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this actor's current batch of messages is handled."""
        self.runtime.defer(callback)


class Runtime(ABC):
    """Hosts behaviours at stable addresses and delivers told messages in FIFO order."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.failure_hook: FailureHook | None = None
        self.dead_letters = 0
        # Each actor's last published view (``engine/host/views.py``): reads that never wait.
        self.views = Views()

    @abstractmethod
    def spawn(self, address: Address, factory: Factory, placement: str) -> None:
        """Start an actor at ``address``, hosted with the others of ``placement``."""

    @abstractmethod
    def restart(self, address: Address, factory: Factory) -> None:
        """Replace the behaviour at ``address`` in place: same address, same mailbox."""

    @abstractmethod
    def stop(self, address: Address) -> None:
        """Remove an actor; messages told to it afterwards are dead letters."""

    @abstractmethod
    def exists(self, address: Address) -> bool: ...

    @abstractmethod
    def tell(self, to: Address, message: object) -> None: ...

    @abstractmethod
    def defer(self, callback: Callable[[], None]) -> None: ...

    def batch(self) -> AbstractContextManager[None]:
        """Tells made from outside the actors inside this context reach them together, when it
        ends: a command that tells several actors is queued whole before any of its
        consequences runs (decision 0005). The deterministic runtime queues every tell anyway."""
        return nullcontext()

    @abstractmethod
    def inspect(self, address: Address, reader: Callable[[Any], Any]) -> Any:
        """Run ``reader`` on the behaviour at ``address`` between its messages; for callers
        outside the actors that need the state exactly between two messages (tests), never from
        inside a handler. It waits behind every message queued for the actor: readers that must
        answer at once (the API) read :attr:`views`."""

    def view(self, address: Address) -> Any:
        """The last view the actor at ``address`` published; ``None`` if there is no actor."""
        return self.views.get(address)

    @abstractmethod
    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until no message is queued or being handled anywhere."""

    @abstractmethod
    def mailbox_depths(self) -> dict[str, int]:
        """Messages queued or being handled, per thread that delivers them."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop every actor. Messages still queued are dropped, not handled (the engine is
        stopping: what they carried is the broker's to tell again at the next start)."""

    def fire_due_timers(self) -> int:
        """Tell every timer message due at the clock's now; returns how many fired."""
        due = self.services.timers.pop_due(self.services.clock.now())
        for to, message in due:
            self.tell(to, message)
        return len(due)

    def _failed(self, address: Address, error: BaseException) -> None:
        log.error("actor failed", actor=f"{address[0]}:{address[1]}", error=repr(error))
        if self.failure_hook is not None:
            self.failure_hook(address, error)
