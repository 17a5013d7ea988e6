"""Work handed to the adapter and not finished yet, so a caller can wait until it is quiet.

The engine's threads hand requests over (``begin`` from any thread); the adapter's trio tasks
``end`` them once their outcome has reached the sink. ``wait_idle`` (in trio) returns when
nothing is left. The replay harness and the tests use it, with the sockets' round trips
(:meth:`TradovateBroker.settled`), to know that everything a step caused has happened.
"""

from __future__ import annotations

import threading

import trio


class Activity:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._started = 0  # every begin ever: a change means new work arrived
        self._idle: trio.Event | None = None

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    @property
    def started(self) -> int:
        with self._lock:
            return self._started

    def begin(self) -> None:
        """Any thread: one more piece of work is on its way."""
        with self._lock:
            self._count += 1
            self._started += 1

    def end(self) -> None:
        """The trio thread: one piece of work is done."""
        with self._lock:
            self._count -= 1
            idle = self._count == 0
        if idle and self._idle is not None:
            self._idle.set()
            self._idle = None

    async def wait_idle(self) -> None:
        while self.count:
            if self._idle is None:
                self._idle = trio.Event()
            event = self._idle
            await event.wait()
