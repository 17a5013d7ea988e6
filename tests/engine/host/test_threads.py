"""The threads runtime's order within a thread (decision 0030): messages in the order they came,
an urgent one first — never ahead of an earlier message to its own actor —, an urgent message
from another thread taken between two messages, and deferred work run when an urgent run
ends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from brokers.clock import VirtualClock
from engine.host import Services, ThreadsRuntime
from engine.host.address import Address
from engine.host.base import ActorContext
from engine.host.urgency import Urgent, is_urgent
from engine.storage.records import Records
from engine.storage.store import Store

A: Address = ("probe", "A")
B: Address = ("probe", "B")
C: Address = ("probe", "C")


@dataclass(frozen=True, slots=True)
class Alarm(Urgent):
    tag: str
    urgent: bool = True


class Recorder:
    """Logs each message it handles; ``"block"`` waits for the test's event first, so the
    test can queue messages behind it; ``("spin", n)`` tells itself ``n`` more."""

    def __init__(self, ctx: ActorContext, log: list[object], gate: threading.Event) -> None:
        self.ctx = ctx
        self.log = log
        self.gate = gate

    def receive(self, message: object) -> None:
        match message:
            case "block":
                self.gate.wait(10)
            case ("spin", int(left)):
                time.sleep(0.0002)
                if left:
                    self.ctx.tell(self.ctx.address, ("spin", left - 1))
            case Alarm(tag=tag) if tag == "defer":
                self.ctx.defer(lambda: self.log.append("deferred"))
            case ("defer", tag):
                self.ctx.defer(lambda: self.log.append(("deferred", tag)))
        self.log.append((self.ctx.address[1], message))


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ThreadsRuntime]:
    clock = VirtualClock(datetime(2026, 1, 6, 15, 0, tzinfo=UTC))
    store = Store(tmp_path / "s.sqlite")
    records = Records(store, clock)
    rt = ThreadsRuntime(Services(clock=clock, storage=records), threads=1)
    yield rt
    rt.shutdown()
    records.close()
    store.close()


def spawn(rt: ThreadsRuntime, log: list[object], gate: threading.Event, *who: Address) -> None:
    for address in who:
        rt.spawn(address, lambda ctx: Recorder(ctx, log, gate), f"p{address[1]}")


@contextmanager
def held_thread(runtime: ThreadsRuntime) -> Iterator[list[object]]:
    """A, B and C on one thread, A inside a handler that waits: what the test tells meanwhile
    queues behind it; when the block ends, A's handler returns and the thread works through
    the queue."""
    log: list[object] = []
    gate = threading.Event()
    spawn(runtime, log, gate, A, B, C)
    runtime.tell(A, "block")
    time.sleep(0.05)  # A's thread is inside "block"
    yield log
    time.sleep(0.05)
    gate.set()
    runtime.wait_idle()


def test_urgency_is_a_type_and_a_value() -> None:
    assert is_urgent(Alarm("x"))
    assert not is_urgent(Alarm("x", urgent=False))
    assert not is_urgent(("spin", 1))


def test_an_urgent_message_puts_its_actor_first_after_its_own_earlier_messages(
    runtime: ThreadsRuntime,
) -> None:
    """A is busy; B has three messages waiting and C one, then C an urgent one: C's two go
    before B's (its plain one first), and B's keep their order."""
    with held_thread(runtime) as log:
        for i in range(3):
            runtime.tell(B, ("b", i))
        runtime.tell(C, ("c", 0))
        runtime.tell(C, Alarm("now"))
    assert log == [
        ("A", "block"),
        ("C", ("c", 0)),
        ("C", Alarm("now")),
        ("B", ("b", 0)),
        ("B", ("b", 1)),
        ("B", ("b", 2)),
    ]


def test_without_urgency_messages_go_in_the_order_they_came(
    runtime: ThreadsRuntime,
) -> None:
    with held_thread(runtime) as log:
        runtime.tell(B, ("b", 0))
        runtime.tell(C, ("c", 0))
        runtime.tell(B, ("b", 1))
        runtime.tell(C, Alarm("plain", urgent=False))
    assert log == [
        ("A", "block"),
        ("B", ("b", 0)),
        ("C", ("c", 0)),
        ("B", ("b", 1)),
        ("C", Alarm("plain", urgent=False)),
    ]


def test_a_message_from_another_thread_is_taken_while_the_queue_is_still_long(
    runtime: ThreadsRuntime,
) -> None:
    """A works through 500 messages it tells itself; an urgent message told from outside
    meanwhile is handled long before A is done, not after its whole queue."""
    log: list[object] = []
    gate = threading.Event()
    spawn(runtime, log, gate, A, B)
    runtime.tell(A, ("spin", 500))
    time.sleep(0.02)
    runtime.tell(B, Alarm("tick"))
    runtime.wait_idle()
    spins_before = log.index(("B", Alarm("tick")))
    assert spins_before < 400, spins_before


def test_deferred_work_runs_when_an_urgent_run_ends_not_after_the_backlog(
    runtime: ThreadsRuntime,
) -> None:
    """A login's orders are deferred to be sent together; a liquidation's must not wait for
    the plain messages queued on the thread."""
    with held_thread(runtime) as log:
        for i in range(5):
            runtime.tell(B, ("b", i))
        runtime.tell(C, Alarm("defer"))
    assert log.index("deferred") == log.index(("C", Alarm("defer"))) + 1
    assert log.index("deferred") < log.index(("B", ("b", 0)))


def test_plain_deferred_work_still_waits_for_the_queue_to_empty(runtime: ThreadsRuntime) -> None:
    log: list[object] = []
    gate = threading.Event()
    spawn(runtime, log, gate, A, B)
    runtime.tell(A, "block")
    time.sleep(0.05)
    runtime.tell(B, ("defer", 1))
    for i in range(3):
        runtime.tell(A, ("a", i))
    time.sleep(0.05)
    gate.set()
    runtime.wait_idle()
    assert log.index(("deferred", 1)) == len(log) - 1


def test_a_plain_message_from_another_thread_waits_for_the_queue_to_empty(
    runtime: ThreadsRuntime,
) -> None:
    """Only urgency hurries a batch from outside: a plain one keeps its place behind the work
    the thread has (a fan-out's placements are not cut into by the fills coming back)."""
    log: list[object] = []
    gate = threading.Event()
    spawn(runtime, log, gate, A, B)
    runtime.tell(A, ("spin", 100))
    time.sleep(0.005)
    runtime.tell(B, ("b", 0))
    runtime.wait_idle()
    assert log.index(("B", ("b", 0))) == len(log) - 1


def test_a_second_urgent_message_keeps_the_order_of_its_actors_messages(
    runtime: ThreadsRuntime,
) -> None:
    with held_thread(runtime) as log:
        runtime.tell(C, Alarm("first"))
        runtime.tell(B, ("b", 0))
        runtime.tell(C, ("c", 0))
        runtime.tell(C, Alarm("second"))
    assert log[1:] == [
        ("C", Alarm("first")),
        ("C", ("c", 0)),
        ("C", Alarm("second")),
        ("B", ("b", 0)),
    ]
