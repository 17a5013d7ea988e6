"""The live runtime: actors hosted on pykka threads.

Every actor keeps its own stable address and FIFO order, but actors are *placed* on a pykka
``ThreadingActor`` per placement key — the connection they belong to. A connection, its accounts,
their risk actors and the groups they lead share one thread, so a message between them costs no
thread hop; a message to another placement is batched per destination and crosses threads once
per batch. A fan-out to 20 followers on one login is one hop, not forty (see
docs/decisions/0001-actor-placement.md).

After each batch — its queue empty, its deferred work done, its messages to other threads sent —
a thread publishes the view of every actor that handled a message in it (``engine/host/views.py``),
before the batch counts as done: once ``wait_idle`` returns, every view is current.

Within a thread an urgent message (a tick that may breach, a liquidation) goes ahead of the queue,
never ahead of an earlier message to its own actor (``engine/host/urgency.py``, decision 0030).

``shutdown`` drops what is still queued instead of handling it, and waits a bounded time for the
threads (daemon threads: one stuck in a broker call does not keep the process alive).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pykka
import structlog

from engine.host.address import Address
from engine.host.base import ActorContext, Behaviour, Factory, Runtime, Services
from engine.host.urgency import Urgent, is_urgent

log = structlog.get_logger("engine.host")
_local = threading.local()
SHUTDOWN_WAIT = 1.0  # seconds the threads get, all together, to finish at a shutdown


class _Inspect:
    __slots__ = ("address", "reader")

    def __init__(self, address: Address, reader: Callable[[Any], Any]) -> None:
        self.address = address
        self.reader = reader


class _Host:
    """The behaviours of one placement and their FIFO, driven by one pykka thread.

    Messages are handled in the order they came (``queue``), but an urgent one
    (``engine/host/urgency.py``) goes first, with every earlier message to its actor taken out
    of the queue ahead of it (``urgent``): no message ever overtakes another to the same
    actor. Messages from other threads land in ``incoming``, taken when the queue is empty —
    or at once, between two messages, when one of them is urgent (``hurried``): a tick at a
    breach price never waits for the thread to run out of work, and the rest keeps the order it
    had."""

    def __init__(self, runtime: ThreadsRuntime, key: str) -> None:
        self.runtime = runtime
        self.key = key
        self.actors: dict[Address, Behaviour] = {}
        self.queue: deque[tuple[Address, object]] = deque()
        self.urgent: deque[tuple[Address, object]] = deque()
        # Batches told from other threads (deque appends and pops are atomic).
        self.incoming: deque[list[tuple[Address, object]]] = deque()
        self.hurried = False
        self.outbox: dict[str, list[tuple[Address, object]]] = {}
        self.deferred: list[Callable[[], None]] = []

    def put(self, to: Address, message: object) -> None:
        if isinstance(message, Urgent) and message.urgent:  # is_urgent, inline: every message
            self._hurry(to, message)
        else:
            self.queue.append((to, message))

    def _hurry(self, to: Address, message: object) -> None:
        """``message`` goes ahead of the queue, after every earlier message to ``to`` (rare:
        a breach, its tick, its liquidation — a pass over the queue is cheap beside them)."""
        queue = self.queue
        if any(item[0] == to for item in queue):
            self.urgent.extend(item for item in queue if item[0] == to)
            self.queue = deque(item for item in queue if item[0] != to)
        self.urgent.append((to, message))

    def _take_incoming(self) -> None:
        incoming, put = self.incoming, self.put
        while incoming:
            for to, message in incoming.popleft():
                put(to, message)

    def drain(self) -> None:
        runtime = self.runtime
        handled = 0
        touched: dict[Address, Behaviour] = {}
        while True:
            if self.hurried:
                self.hurried = False  # before taking: one set meanwhile is seen next time
                self._take_incoming()
            urgent = self.urgent
            if urgent:
                to, message = urgent.popleft()
                ended = not urgent
            elif self.queue:
                to, message = self.queue.popleft()
                ended = False
            else:
                # The queue is empty: what was handled is published and done, as at the end
                # of a batch, before the next batch from outside is taken.
                self._publish(touched, handled)
                handled, touched = 0, {}
                if not self.incoming:
                    break
                self._take_incoming()
                continue
            handled += 1
            if runtime.halted:
                runtime.dropped += 1
                continue
            actor = self.actors.get(to)
            if actor is None:
                runtime.dead_letters += 1
            else:
                touched[to] = actor
                try:
                    actor.receive(message)
                except Exception as error:
                    runtime._failed(to, error)
            if ended and self.urgent:
                ended = False  # the urgent run goes on with what this message made urgent
            if ended or not (self.queue or self.urgent):
                # Deferred work (a login's orders in one batch) runs when the queue is empty,
                # and when an urgent run ends: a liquidation never waits for the rest.
                self._run_deferred()
            if self.outbox:
                # Cross-placement messages leave as soon as the message that caused them is
                # handled (one batch per destination), so a leader's fan-out never waits for
                # the rest of its own thread's queue.
                self._flush_outbox()

    def _publish(self, touched: dict[Address, Behaviour], handled: int) -> None:
        """The views of the actors that handled messages, then those messages count as done:
        once ``wait_idle`` returns, every view is current."""
        if touched:
            self.runtime.views.publish(touched.items())
        self.runtime._done(handled, self.key)

    def _run_deferred(self) -> None:
        if self.runtime.halted:
            self.deferred.clear()
            return
        while self.deferred:
            callbacks, self.deferred = self.deferred, []
            for callback in callbacks:
                callback()

    def _flush_outbox(self) -> None:
        if not self.outbox:
            return
        outbox, self.outbox = self.outbox, {}
        for key, batch in outbox.items():
            self.runtime._send(key, batch)


_WAKE = object()  # told to a host's pykka thread after a batch lands in its ``incoming``


class _HostActor(pykka.ThreadingActor):
    """The pykka thread of one placement."""

    use_daemon_thread = True  # a thread stuck in a broker call must not keep the process up

    def __init__(self, host: _Host) -> None:
        super().__init__()
        self.host = host

    def on_start(self) -> None:
        _local.host = self.host

    def on_receive(self, message: Any) -> Any:
        host = self.host
        if isinstance(message, _Inspect):
            actor = host.actors.get(message.address)
            return None if actor is None else message.reader(actor)
        host.drain()  # a wake-up: what it announced may be taken already
        return None

    def on_failure(
        self, exception_type: Any, exception_value: BaseException | None, traceback: Any
    ) -> None:
        # Behaviour failures are caught per message in drain; reaching here means the host
        # loop itself broke, which the supervisor must hear of.
        if exception_value is not None:
            self.host.runtime._failed(("host", self.host.key), exception_value)


class ThreadsRuntime(Runtime):
    def __init__(self, services: Services, threads: int = 0) -> None:
        super().__init__(services)
        self.threads = threads  # 0: one thread per placement; else placements share this many
        self._thread_of: dict[str, str] = {}
        self._hosts: dict[str, pykka.ActorRef[_HostActor]] = {}
        self._host_objs: dict[str, _Host] = {}
        self._placement: dict[Address, str] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._depth: dict[str, int] = {}  # per thread key: told and not yet handled
        self.halted = False  # shutting down: queued messages are dropped, not handled
        self.dropped = 0

    # -- placement ---------------------------------------------------------------------------

    def _host(self, key: str) -> _Host:
        host = self._host_objs.get(key)
        if host is None:
            host = _Host(self, key)
            self._hosts[key] = _HostActor.start(host)
            self._host_objs[key] = host
        return host

    def _thread_key(self, placement: str) -> str:
        """Placements are dealt to a fixed number of threads in the order they first appear:
        a placement's actors always share one thread and one FIFO."""
        if not self.threads:
            return placement
        key = self._thread_of.get(placement)
        if key is None:
            key = f"thread-{len(self._thread_of) % self.threads}"
            self._thread_of[placement] = key
        return key

    def spawn(self, address: Address, factory: Factory, placement: str) -> None:
        if address in self._placement:
            raise ValueError(f"actor {address} already exists")
        placement = self._thread_key(placement)
        host = self._host(placement)
        behaviour = factory(ActorContext(self, address))
        self.views.own(address, behaviour)
        host.actors[address] = behaviour
        self._placement[address] = placement

    def restart(self, address: Address, factory: Factory) -> None:
        key = self._placement.get(address)
        if key is not None:
            behaviour = factory(ActorContext(self, address))
            self.views.own(address, behaviour)
            self._host_objs[key].actors[address] = behaviour

    def stop(self, address: Address) -> None:
        key = self._placement.pop(address, None)
        if key is not None:
            self._host_objs[key].actors.pop(address, None)
        self.views.drop(address)

    def exists(self, address: Address) -> bool:
        return address in self._placement

    # -- messaging ---------------------------------------------------------------------------

    def tell(self, to: Address, message: object) -> None:
        key = self._placement.get(to)
        if key is None:
            self.dead_letters += 1
            return
        with self._lock:
            self._in_flight += 1
            self._depth[key] = self._depth.get(key, 0) + 1
        current: _Host | None = getattr(_local, "host", None)
        if current is None:
            collecting: dict[str, list[tuple[Address, object]]] | None = getattr(
                _local, "outside", None
            )
            if collecting is None:
                self._send(key, [(to, message)])
            else:
                collecting.setdefault(key, []).append((to, message))
        elif current.key == key:
            current.put(to, message)
        else:
            current.outbox.setdefault(key, []).append((to, message))

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Outside tells made in the context are sent when it ends, one batch per thread: a
        command's messages to actors of one thread are all queued before the first of them is
        handled (a group's flatten reaches every follower before the leader's liquidation can
        fill and fan out)."""
        inside = getattr(_local, "host", None) is not None
        if inside or getattr(_local, "outside", None) is not None:
            yield  # an actor's tells batch already; a batch within a batch is the outer one
            return
        _local.outside = {}
        try:
            yield
        finally:
            collected: dict[str, list[tuple[Address, object]]] = _local.outside
            _local.outside = None
            for key, batch in collected.items():
                self._send(key, batch)

    def _send(self, key: str, batch: list[tuple[Address, object]]) -> None:
        ref, host = self._hosts.get(key), self._host_objs.get(key)
        if ref is None or host is None:
            self._done(len(batch), key)
            return
        host.incoming.append(batch)
        if any(is_urgent(m) for _, m in batch):
            host.hurried = True
        try:
            ref.tell(_WAKE)
        except pykka.ActorDeadError:
            if host.incoming:  # not taken: the thread is gone
                lost = sum(len(b) for b in host.incoming)
                host.incoming.clear()
                self.dead_letters += lost
                self._done(lost, key)

    def _done(self, count: int, key: str) -> None:
        if not count:
            return
        with self._lock:
            self._in_flight -= count
            self._depth[key] -= count
            if self._in_flight == 0:
                self._idle.notify_all()

    def defer(self, callback: Callable[[], None]) -> None:
        current: _Host | None = getattr(_local, "host", None)
        if current is None:
            callback()
        else:
            current.deferred.append(callback)

    def inspect(self, address: Address, reader: Callable[[Any], Any]) -> Any:
        key = self._placement.get(address)
        if key is None:
            return None
        return self._hosts[key].ask(_Inspect(address, reader), timeout=30)

    def wait_idle(self, timeout: float = 30.0) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout):
                raise TimeoutError(
                    f"actors still busy after {timeout} s ({self._in_flight} queued)"
                )

    def mailbox_depths(self) -> dict[str, int]:
        """Per thread (``thread-N``, or the placement when each has its own): messages told to
        its actors and not yet handled, wherever they wait (pykka inbox, FIFO, an outbox)."""
        with self._lock:
            return {key: self._depth.get(key, 0) for key in self._host_objs}

    def shutdown(self) -> None:
        self.halted = True
        refs = list(self._hosts.items())
        for _, ref in refs:
            ref.stop(block=False)
        deadline = time.monotonic() + SHUTDOWN_WAIT
        busy = [
            key
            for key, ref in refs
            if not ref.actor_stopped.wait(max(0.0, deadline - time.monotonic()))
        ]
        if self.dropped:
            log.info("messages dropped at the stop", messages=self.dropped)
        if busy:
            log.warning("actor threads still busy at the stop", threads=busy)
        self._hosts.clear()
        self._host_objs.clear()
        self._placement.clear()
        self.views.clear()
