"""The deterministic runtime makes an actor's view when it is read, not after every drain: a view
read between two steps is the actor's state then, and a replay that reads only at its checks
makes each view once, not once per step (engine/host/deterministic.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from brokers.clock import VirtualClock
from engine.host import DeterministicRuntime, Services
from engine.host.address import Address
from engine.host.base import ActorContext
from engine.storage.records import Records
from engine.storage.store import Store

A: Address = ("counter", "A")


class Counter:
    def __init__(self, ctx: ActorContext) -> None:
        self.ctx = ctx
        self.total = 0
        self.views_made = 0

    def receive(self, message: object) -> None:
        assert isinstance(message, int)
        self.total += message

    def view(self) -> int:
        self.views_made += 1
        return self.total


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[DeterministicRuntime]:
    clock = VirtualClock(datetime(2026, 1, 6, 15, 0, tzinfo=UTC))
    store = Store(tmp_path / "s.sqlite")
    records = Records(store, clock)
    rt = DeterministicRuntime(Services(clock=clock, storage=records))
    yield rt
    rt.shutdown()
    records.close()
    store.close()


def test_a_view_is_made_when_read_and_shows_the_state_between_steps(
    runtime: DeterministicRuntime,
) -> None:
    counter: list[Counter] = []

    def make(ctx: ActorContext) -> Counter:
        counter.append(Counter(ctx))
        return counter[0]

    runtime.spawn(A, make, "p")
    made_at_spawn = counter[0].views_made
    for step in range(1, 6):
        runtime.tell(A, step)
        runtime.wait_idle()
    assert counter[0].views_made == made_at_spawn  # five drains, no view made
    assert runtime.view(A) == 15
    assert runtime.view(A) == 15
    assert counter[0].views_made == made_at_spawn + 1  # once, for both reads
    runtime.tell(A, 5)
    runtime.step()
    assert runtime.view(A) == 20  # after a single step too
