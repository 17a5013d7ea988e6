"""One FIFO queue, one thread: every run of the same inputs delivers the same messages in the
same order. The replay harness uses it by default and the property tests always.

The actors that handled messages publish their views (``engine/host/views.py``) when a view is
read, not after every drain: the thread that delivers is the one that reads, so a view read
between two steps is the actor's state then, as if published when the queue emptied, and a
replay that reads only at its ``expect`` steps makes each view once, not once per step."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from engine.host.address import Address
from engine.host.base import ActorContext, Behaviour, Factory, Runtime, Services


class DeterministicRuntime(Runtime):
    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self._actors: dict[Address, Behaviour] = {}
        self._queue: deque[tuple[Address, object]] = deque()
        self._deferred: list[Callable[[], None]] = []
        self._draining = False
        self._touched: dict[Address, Behaviour] = {}

    def spawn(self, address: Address, factory: Factory, placement: str) -> None:
        if address in self._actors:
            raise ValueError(f"actor {address} already exists")
        behaviour = factory(ActorContext(self, address))
        self.views.own(address, behaviour)
        self._actors[address] = behaviour

    def restart(self, address: Address, factory: Factory) -> None:
        if address in self._actors:
            behaviour = factory(ActorContext(self, address))
            self.views.own(address, behaviour)
            self._actors[address] = behaviour

    def stop(self, address: Address) -> None:
        self._actors.pop(address, None)
        self.views.drop(address)

    def exists(self, address: Address) -> bool:
        return address in self._actors

    def tell(self, to: Address, message: object) -> None:
        # Queued only: a command that tells several actors is queued whole before any of it
        # runs, as it would be on the threads runtime; ``wait_idle`` delivers.
        self._queue.append((to, message))

    def defer(self, callback: Callable[[], None]) -> None:
        self._deferred.append(callback)

    def inspect(self, address: Address, reader: Callable[[Any], Any]) -> Any:
        actor = self._actors.get(address)
        return None if actor is None else reader(actor)

    def wait_idle(self, timeout: float = 30.0) -> None:
        self._drain()

    def next_message(self) -> tuple[Address, object] | None:
        """The message ``step`` would deliver next (tests stop a run at a chosen point)."""
        return self._queue[0] if self._queue else None

    def step(self) -> bool:
        """Deliver one message (and the work it deferred); ``False`` when none is queued."""
        if not self._queue:
            return False
        to, message = self._queue.popleft()
        self._deliver(to, message)
        self._run_deferred()
        return True

    def lose(self) -> tuple[Address, object] | None:
        """Take the next message out undelivered (tests: an answer that never arrived)."""
        return self._queue.popleft() if self._queue else None

    def mailbox_depths(self) -> dict[str, int]:
        return {"main": len(self._queue)}  # one FIFO, delivered by the caller's thread

    def shutdown(self) -> None:
        self._queue.clear()
        self._actors.clear()
        self._touched.clear()
        self.views.clear()

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while True:
                while self._queue:
                    to, message = self._queue.popleft()
                    self._deliver(to, message)
                if not self._deferred:
                    break
                # Deferred work runs once the queue is empty, as each thread of the threads
                # runtime runs it: a fan-out's orders leave as one batch per login.
                self._run_deferred()
        finally:
            self._draining = False

    def view(self, address: Address) -> Any:
        """The actor's view now: those of the actors that handled messages since the last read
        are made first (not while a drain runs: a handler reading a view gets the last one
        published)."""
        if self._touched and not self._draining:
            self._publish()
        return self.views.get(address)

    def _publish(self) -> None:
        if self._touched:
            touched, self._touched = self._touched, {}
            self.views.publish(touched.items())

    def _deliver(self, to: Address, message: object) -> None:
        actor = self._actors.get(to)
        if actor is None:
            self.dead_letters += 1
            return
        self._touched[to] = actor
        try:
            actor.receive(message)
        except Exception as error:
            self._failed(to, error)

    def _run_deferred(self) -> None:
        while self._deferred:
            callbacks, self._deferred = self._deferred, []
            for callback in callbacks:
                callback()
