"""The actor tree and the supervisor's strategy on it, without the engine: one-for-one restarts
through the one factory, the child spec's re-link after each, escalation past the intensity
within the period, and failures outside the supervised kinds left alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from brokers.clock import VirtualClock
from engine.core.supervisor import ChildSpec, Supervisor
from engine.core.tree import ActorTree
from engine.domain.activity import Kind, Level
from engine.host import DeterministicRuntime, Services
from engine.host.address import Address
from engine.host.base import ActorContext, Factory
from engine.storage.queries import Queries, Window
from engine.storage.records import Records
from engine.storage.store import Store

START = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
W1: Address = ("worker", "w1")
W2: Address = ("worker", "w2")


class Worker:
    def __init__(self, received: list[object]) -> None:
        self.received = received

    def receive(self, message: object) -> None:
        self.received.append(message)


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = VirtualClock(START)
        self.store = Store(tmp_path / "engine.sqlite")
        self.records = Records(self.store, self.clock)
        self.runtime = DeterministicRuntime(Services(self.clock, self.records))
        self.built: list[Address] = []
        self.received: list[object] = []
        self.tree = ActorTree(self.runtime, self.factory)
        self.relinked: list[str] = []
        self.held: list[tuple[str, str]] = []
        spec = ChildSpec(
            "worker", self.relinked.append, lambda ident, why: self.held.append((ident, why))
        )
        self.supervisor = Supervisor(
            self.tree, self.clock, self.records, [spec], intensity=2, period=timedelta(seconds=10)
        )

    def factory(self, address: Address) -> Factory:
        def build(ctx: ActorContext) -> Worker:
            self.built.append(address)
            return Worker(self.received)

        return build


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.runtime.shutdown()
    r.records.close()
    r.store.close()


def test_the_tree_builds_every_actor_through_its_factory(rig: Rig) -> None:
    rig.tree.spawn(W1, "p")
    rig.tree.tell(W1, "hello")
    rig.runtime.wait_idle()
    assert rig.tree.exists(W1)
    assert rig.received == ["hello"]
    rig.tree.restart(W1)
    assert rig.built == [W1, W1]
    assert isinstance(rig.tree.inspect(W1, lambda worker: worker), Worker)
    rig.tree.stop(W1)
    assert not rig.tree.exists(W1)
    assert rig.tree.inspect(W1, lambda worker: worker) is None


def test_one_for_one_restarts_relink_and_escalate_past_the_intensity(rig: Rig) -> None:
    rig.tree.spawn(W1, "p")
    rig.tree.spawn(W2, "p")
    for _ in range(3):
        rig.supervisor.on_failure(W1, RuntimeError("boom"))
    assert rig.built == [W1, W2, W1, W1, W1]  # w2 is left running
    assert rig.relinked == ["w1", "w1", "w1"]
    assert rig.held == [("w1", "worker actor w1 restarted 3 times in 10 s (limit 2)")]
    assert rig.supervisor.total == 3
    page = Queries(rig.store).activity(Window(), kind=Kind.RESTART.value, level=Level.ERROR.value)
    assert [entry.message for entry in reversed(page.items)] == [
        f"worker actor w1 failed (RuntimeError('boom')); restarted from the store ({n} in 10 s)"
        for n in (1, 2, 3)
    ]


def test_restarts_older_than_the_period_do_not_count(rig: Rig) -> None:
    rig.tree.spawn(W1, "p")
    for _ in range(2):
        rig.supervisor.on_failure(W1, RuntimeError("boom"))
    rig.clock.advance(timedelta(seconds=11))
    rig.supervisor.on_failure(W1, RuntimeError("boom"))
    assert rig.held == []
    assert rig.supervisor.total == 3


def test_a_failure_outside_the_supervised_kinds_is_left_alone(rig: Rig) -> None:
    rig.tree.spawn(("other", "x"), "p")
    rig.supervisor.on_failure(("other", "x"), RuntimeError("boom"))
    rig.supervisor.on_failure(("worker", "gone"), RuntimeError("boom"))  # not in the tree
    assert rig.built == [("other", "x")]
    assert rig.supervisor.total == 0
