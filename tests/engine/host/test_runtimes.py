"""Both runtimes host the same behaviours with the same guarantees: FIFO per sender, dead
letters for stopped actors, failures reported without killing the actor, restart in place,
``wait_idle`` that sees chains of tells, ``defer`` after the batch, and timers on the engine
clock (ARCHITECTURE: "two runtimes for the same actors")."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from brokers.clock import VirtualClock
from engine.host import DeterministicRuntime, Runtime, Services, ThreadsRuntime, make_runtime
from engine.host.address import Address
from engine.host.base import ActorContext
from engine.storage.records import Records
from engine.storage.store import Store

START = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)
RUNTIMES = ["deterministic", "threads"]


class Log:
    """What the behaviours saw, shared between them (appends are atomic under the GIL)."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    def add(self, *entry: Any) -> None:
        with self._lock:
            self.entries.append(entry)

    def of(self, who: Address) -> list[Any]:
        return [e[1] for e in self.entries if e[0] == who]


class Probe:
    """A behaviour driven by its messages: each tuple names an action."""

    def __init__(self, ctx: ActorContext, log: Log, name: str = "v1") -> None:
        self.ctx = ctx
        self.log = log
        self.name = name
        self.count = 0

    def receive(self, message: object) -> None:
        self.count += 1
        match message:
            case ("send", tuple() as to, int(n)):
                for i in range(n):
                    self.ctx.tell(to, ("seq", self.ctx.address, i))
            case ("chain", int(n), tuple() as other):
                self.log.add(self.ctx.address, ("chain", n))
                if n > 0:
                    self.ctx.tell(other, ("chain", n - 1, self.ctx.address))
            case "boom":
                self.log.add(self.ctx.address, "boom")
                raise RuntimeError("behaviour failed")
            case ("defer", tag):
                self.log.add(self.ctx.address, ("handled", tag))
                self.ctx.defer(lambda: self.log.add(self.ctx.address, ("deferred", tag)))
                self.ctx.tell(self.ctx.address, ("later", tag))
                self.log.add(self.ctx.address, ("handler-end", tag))
            case ("schedule", int(seconds), what):
                self.ctx.schedule(timedelta(seconds=seconds), self.ctx.address, ("timer", what))
            case _:
                self.log.add(self.ctx.address, (self.name, message))


def probe(log: Log, name: str = "v1") -> Callable[[ActorContext], Probe]:
    return lambda ctx: Probe(ctx, log, name)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    clock = VirtualClock(START)
    store = Store(tmp_path / "s.sqlite")
    records = Records(store, clock)
    yield Services(clock=clock, storage=records)
    store.close()
    records.close()


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, services: Services) -> Iterator[Runtime]:
    rt = make_runtime(request.param, services)
    yield rt
    rt.shutdown()


A: Address = ("probe", "A")
B: Address = ("probe", "B")
C: Address = ("probe", "C")


def test_make_runtime_builds_both_and_refuses_others(services: Services) -> None:
    assert isinstance(make_runtime("deterministic", services), DeterministicRuntime)
    threads = make_runtime("threads", services)
    assert isinstance(threads, ThreadsRuntime)
    threads.shutdown()
    with pytest.raises(ValueError, match="unknown runtime 'actors'"):
        make_runtime("actors", services)


def test_spawn_twice_at_one_address_is_refused(runtime: Runtime) -> None:
    log = Log()
    runtime.spawn(A, probe(log), "p1")
    with pytest.raises(ValueError, match="already exists"):
        runtime.spawn(A, probe(log), "p2")
    assert runtime.exists(A)
    assert not runtime.exists(B)


def test_fifo_from_outside(runtime: Runtime) -> None:
    log = Log()
    runtime.spawn(A, probe(log), "p1")
    for i in range(300):
        runtime.tell(A, i)
    runtime.wait_idle()
    assert log.of(A) == [("v1", i) for i in range(300)]


def test_fifo_per_sender_across_placements(runtime: Runtime) -> None:
    log = Log()
    runtime.spawn(A, probe(log), "p1")
    runtime.spawn(B, probe(log), "p2")
    runtime.spawn(C, probe(log), "p3")  # the receiver, on its own placement
    runtime.tell(A, ("send", C, 200))
    runtime.tell(B, ("send", C, 200))
    runtime.tell(C, ("send", C, 50))  # and to itself
    runtime.wait_idle()
    received = [m[1] for m in log.of(C)]
    assert len(received) == 450
    for sender, count in [(A, 200), (B, 200), (C, 50)]:
        assert [m[2] for m in received if m[1] == sender] == list(range(count))


def test_fifo_per_sender_on_one_placement(runtime: Runtime) -> None:
    log = Log()
    runtime.spawn(A, probe(log), "p1")
    runtime.spawn(C, probe(log), "p1")
    runtime.tell(A, ("send", C, 100))
    runtime.wait_idle()
    assert [m[1][2] for m in log.of(C)] == list(range(100))


def test_messages_to_a_stopped_actor_are_dead_letters(runtime: Runtime) -> None:
    log = Log()
    runtime.spawn(A, probe(log), "p1")
    runtime.spawn(B, probe(log), "p1")
    runtime.tell(A, "before")
    runtime.wait_idle()
    runtime.stop(A)
    assert not runtime.exists(A)
    for _ in range(3):
        runtime.tell(A, "after")
    runtime.tell(("probe", "never-spawned"), "x")
    runtime.tell(B, "alive")
    runtime.wait_idle()
    assert runtime.dead_letters == 4
    assert log.of(A) == [("v1", "before")]
    assert log.of(B) == [("v1", "alive")]
    runtime.stop(A)  # stopping twice is harmless


def test_a_behaviour_that_raises_is_reported_and_keeps_receiving(runtime: Runtime) -> None:
    log = Log()
    failures: list[tuple[Address, BaseException]] = []
    runtime.failure_hook = lambda address, error: failures.append((address, error))
    runtime.spawn(A, probe(log), "p1")
    runtime.tell(A, "first")
    runtime.tell(A, "boom")
    runtime.tell(A, "second")
    runtime.wait_idle()
    runtime.tell(A, "third")
    runtime.wait_idle()
    assert log.of(A) == [("v1", "first"), "boom", ("v1", "second"), ("v1", "third")]
    assert len(failures) == 1
    address, error = failures[0]
    assert address == A
    assert isinstance(error, RuntimeError)
    assert runtime.inspect(A, lambda p: p.count) == 4  # same behaviour, state kept


def test_a_failure_without_a_hook_is_only_logged(runtime: Runtime) -> None:
    log = Log()
    runtime.spawn(A, probe(log), "p1")
    runtime.tell(A, "boom")
    runtime.tell(A, "ok")
    runtime.wait_idle()
    assert log.of(A) == ["boom", ("v1", "ok")]


def test_restart_replaces_the_behaviour_at_the_same_address(runtime: Runtime) -> None:
    log = Log()
    runtime.spawn(A, probe(log, "v1"), "p1")
    runtime.tell(A, "one")
    runtime.wait_idle()
    runtime.restart(A, probe(log, "v2"))
    runtime.tell(A, "two")
    runtime.wait_idle()
    assert log.of(A) == [("v1", "one"), ("v2", "two")]
    assert runtime.inspect(A, lambda p: (p.name, p.count)) == ("v2", 1)  # fresh state
    runtime.restart(B, probe(log, "v3"))  # restarting nothing spawns nothing
    assert not runtime.exists(B)


def test_wait_idle_waits_for_chains_of_tells_across_placements(runtime: Runtime) -> None:
    log = Log()

    class Slow(Probe):
        def receive(self, message: object) -> None:
            if isinstance(message, tuple) and message[0] == "chain" and message[1] % 50 == 0:
                time.sleep(0.005)  # widen the window between hops
            super().receive(message)

    runtime.spawn(A, lambda ctx: Slow(ctx, log), "p1")
    runtime.spawn(B, lambda ctx: Slow(ctx, log), "p2")
    runtime.tell(A, ("chain", 400, B))
    runtime.wait_idle()
    hops = [e[1][1] for e in log.entries]
    assert hops == list(range(400, -1, -1))


def test_defer_runs_after_the_handler_and_before_idle(runtime: Runtime) -> None:
    log = Log()
    runtime.spawn(A, probe(log), "p1")
    runtime.tell(A, ("defer", 1))
    runtime.wait_idle()
    entries = log.of(A)
    assert entries.index(("handled", 1)) < entries.index(("handler-end", 1))
    assert entries.index(("handler-end", 1)) < entries.index(("deferred", 1))
    assert ("v1", ("later", 1)) in entries


def test_threads_defer_runs_after_the_whole_batch(services: Services) -> None:
    rt = ThreadsRuntime(services)
    try:
        log = Log()
        rt.spawn(A, probe(log), "p1")
        rt.spawn(B, probe(log), "p1")
        rt.tell(A, ("send", B, 3))  # B's three messages join A's batch on p1
        rt.tell(A, ("defer", 1))
        rt.wait_idle()
        order = [e[1] for e in log.entries]
        deferred = order.index(("deferred", 1))
        assert order.index(("v1", ("later", 1))) < deferred  # the self-tell is in the batch
        assert deferred == len(order) - 1
    finally:
        rt.shutdown()


def test_defer_from_outside_an_actor_runs_now_in_threads(services: Services) -> None:
    rt = ThreadsRuntime(services)
    try:
        ran: list[int] = []
        rt.defer(lambda: ran.append(1))
        assert ran == [1]
    finally:
        rt.shutdown()


def test_timers_fire_in_time_order_via_fire_due_timers(
    runtime: Runtime, services: Services
) -> None:
    log = Log()
    clock = services.clock
    assert isinstance(clock, VirtualClock)
    runtime.spawn(A, probe(log), "p1")
    runtime.tell(A, ("schedule", 3, "c"))
    runtime.tell(A, ("schedule", 1, "a"))
    runtime.tell(A, ("schedule", 1, "b"))  # same instant: in the order scheduled
    runtime.wait_idle()
    assert runtime.fire_due_timers() == 0
    clock.advance(timedelta(milliseconds=999))
    assert runtime.fire_due_timers() == 0
    clock.advance(timedelta(milliseconds=1))
    assert runtime.fire_due_timers() == 2
    runtime.wait_idle()
    assert log.of(A) == [("v1", ("timer", "a")), ("v1", ("timer", "b"))]
    clock.advance(timedelta(seconds=10))
    assert runtime.fire_due_timers() == 1
    assert runtime.fire_due_timers() == 0  # fired once only
    runtime.wait_idle()
    assert log.of(A)[-1] == ("v1", ("timer", "c"))
    assert services.timers.next_due() is None


def test_inspect_reads_a_behaviour_between_messages(runtime: Runtime) -> None:
    log = Log()
    runtime.spawn(A, probe(log), "p1")
    for i in range(10):
        runtime.tell(A, i)
    runtime.wait_idle()
    assert runtime.inspect(A, lambda p: p.count) == 10
    assert runtime.inspect(B, lambda p: p.count) is None


class Gate:
    """A behaviour that blocks in its handler until the test opens the gate."""

    def __init__(self, ctx: ActorContext, gate: threading.Event) -> None:
        self.gate = gate

    def receive(self, message: object) -> None:
        self.gate.wait(10)


def test_threads_mailbox_depths_count_per_thread_what_waits_or_is_handled(
    services: Services,
) -> None:
    """The metric's source: a thread stuck in a handler shows its backlog, the others none."""
    rt = ThreadsRuntime(services, threads=2)
    gate = threading.Event()
    try:
        rt.spawn(A, lambda ctx: Gate(ctx, gate), "p1")  # thread-0
        rt.spawn(B, probe(Log()), "p2")  # thread-1
        for _ in range(3):
            rt.tell(A, "wait")
        rt.tell(B, "quick")
        deadline = time.monotonic() + 5
        while rt.mailbox_depths()["thread-1"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rt.mailbox_depths() == {"thread-0": 3, "thread-1": 0}
        gate.set()
        rt.wait_idle()
        assert rt.mailbox_depths() == {"thread-0": 0, "thread-1": 0}
    finally:
        gate.set()
        rt.shutdown()


def test_deterministic_mailbox_depth_is_its_one_queue(services: Services) -> None:
    rt = DeterministicRuntime(services)
    rt.spawn(A, probe(Log()), "p1")
    assert rt.mailbox_depths() == {"main": 0}


def test_a_batch_of_outside_tells_is_queued_whole_before_any_consequence(
    runtime: Runtime,
) -> None:
    """Decision 0005: a command that tells several actors (a group's flatten tells every
    member's risk) has all of them queued before the first message's consequences run — on
    the threads runtime too, where actors of one thread would otherwise start on the first
    tell while the command is still telling the others."""
    log = Log()
    runtime.spawn(A, probe(log), "p")
    runtime.spawn(B, probe(log), "p")  # one thread: A's consequence and B's command share it
    with runtime.batch():
        runtime.tell(A, ("send", B, 1))
        time.sleep(0.05)  # time enough for A to have handled its message, had it been sent
        runtime.tell(B, "command")
    runtime.wait_idle()
    assert log.of(B) == [("v1", "command"), ("v1", ("seq", A, 0))]
