"""The one source of "now" for the whole engine.

Domain code never reads the system clock: it asks the engine's clock. A live run uses
:class:`WallClock`; the replay harness and the tests use :class:`VirtualClock`, whose time moves
only when it is told to, so a week of resets replays in milliseconds and identically every run.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta


class Clock(ABC):
    @abstractmethod
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""

    def monotonic_ns(self) -> int:
        """A monotonic reading for latency metrics; virtual clocks derive it from ``now``."""
        return int(self.now().timestamp() * 1e9)


class WallClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()


class VirtualClock(Clock):
    """A clock that moves only forward and only when :meth:`set` or :meth:`advance` is called."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a virtual clock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now  # one reference, read whole; ``set`` keeps its check and write together

    def set(self, instant: datetime) -> None:
        with self._lock:
            instant = instant.astimezone(UTC)
            if instant < self._now:
                raise ValueError(f"time cannot go back from {self._now} to {instant}")
            self._now = instant

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)
