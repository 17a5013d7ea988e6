"""What the paper broker's tests share: a clock start, two contracts, and a sink that keeps
every event it is given."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from brokers.base import BrokerEvent

START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
ES = "ESZ6"
NQ = "NQZ6"
T = TypeVar("T")


class Recorder:
    """A sink that keeps every event it is given."""

    def __init__(self) -> None:
        self.events: list[BrokerEvent] = []

    def __call__(self, event: BrokerEvent) -> None:
        self.events.append(event)

    def take(self) -> list[BrokerEvent]:
        events, self.events = self.events, []
        return events

    def of(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]
