"""S10.4: a connection that leaves ``connected`` and stays away longer than ``[alerts]
connection_down_seconds`` (60 s) is one alert; one that comes back first is none.

Fed the connection actors' ``state_change`` entries on the trio thread (by the alert router);
each connection away has one trio timer, cancelled when it comes back or is deleted. A
connection that was never ``connected`` in this run (waiting for its first authorization) has
not left: it gives no alert. A second outage after a return is a new one, with its own alert.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import trio

from brokers.clock import Clock
from engine.domain.activity import ActivityEntry, Kind
from engine.domain.alerting import CONNECTED, Alert, connection_down, connection_move


class _Away:
    def __init__(self, state: str, since: datetime) -> None:
        self.state = state
        self.since = since
        self.scope = trio.CancelScope()


class ConnectionWatch:
    def __init__(self, seconds: float, publish: Callable[[Alert], None], clock: Clock) -> None:
        self.seconds = seconds
        self.publish = publish
        self.clock = clock
        self._away: dict[str, _Away] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the timers' nursery until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def seen(self, entry: ActivityEntry) -> None:
        """An activity entry, on the trio thread."""
        if entry.kind is Kind.DELETION and entry.connection is not None:
            self._back(entry.connection)
            return
        move = connection_move(entry)
        if move is None:
            return
        connection, before, after = move
        if after == CONNECTED:
            self._back(connection)
            return
        away = self._away.get(connection)
        if away is not None:
            away.state = after  # still away: disconnected, then reauth_required, say
        elif before == CONNECTED and self._nursery is not None:
            away = self._away[connection] = _Away(after, entry.time)
            self._nursery.start_soon(self._wait, connection, away)

    def _back(self, connection: str) -> None:
        away = self._away.pop(connection, None)
        if away is not None:
            away.scope.cancel()

    async def _wait(self, connection: str, away: _Away) -> None:
        with away.scope:
            await trio.sleep(self.seconds)
            if self._away.get(connection) is away:
                del self._away[connection]
                self.publish(
                    connection_down(
                        connection, away.state, away.since, self.seconds, self.clock.now()
                    )
                )


__all__ = ["ConnectionWatch"]
