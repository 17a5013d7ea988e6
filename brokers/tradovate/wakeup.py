"""A wake-up call for trio tasks waiting for something to change (a link's phase, market data's
wanted symbols): :meth:`Wakeup.set` wakes every task waiting now. A call with nobody waiting is
not remembered — a waiter looks at the state first and waits only when there is nothing to do."""

from __future__ import annotations

import trio


class Wakeup:
    def __init__(self) -> None:
        self._event: trio.Event | None = None

    def set(self) -> None:
        """Wake the tasks waiting now (trio thread)."""
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self) -> None:
        """Until the next :meth:`set`."""
        if self._event is None:
            self._event = trio.Event()
        event = self._event
        await event.wait()
