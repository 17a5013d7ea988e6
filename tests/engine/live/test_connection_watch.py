"""S10.4: a connection that leaves ``connected`` is one alert once ``connection_down_seconds``
have passed (on trio's virtual clock), none before, none if it comes back first, and one more
for a new outage after a return. The entries are the real connection actor's, as the records'
listener hands them over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from engine.domain.activity import ActivityEntry, Level
from engine.domain.alerting import Alert
from engine.live.connection_watch import ConnectionWatch
from tests.conftest import MakeEngine, Rig


class _Entries:
    """The engine's activity entries, as its records' listener hands them over."""

    def __init__(self, rig: Rig) -> None:
        self.seen: list[ActivityEntry] = []
        rig.engine.records.listeners.append(self.take)

    def take(self, topic: str, payload: Any) -> None:
        if topic == "activity":
            self.seen.append(payload)

    def feed(self, watch: ConnectionWatch) -> None:
        for entry in self.seen:
            watch.seen(entry)
        self.seen.clear()


@pytest.mark.trio
async def test_a_connection_away_is_one_alert_when_its_delay_has_passed_and_not_before(
    tmp_path: Path, make_engine: MakeEngine, mock_clock: trio.testing.MockClock
) -> None:
    rig = make_engine(tmp_path)
    entries = _Entries(rig)
    alerts: list[Alert] = []
    watch = ConnectionWatch(60, alerts.append, rig.clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(watch.run)
        rig.engine.take_offline("f1")
        rig.idle()
        entries.feed(watch)
        await trio.testing.wait_all_tasks_blocked()  # the watch's timer is set
        mock_clock.jump(59.9)
        await trio.testing.wait_all_tasks_blocked()
        assert alerts == []
        mock_clock.jump(0.2)
        await trio.testing.wait_all_tasks_blocked()
        assert [(a.kind, a.level, a.connection) for a in alerts] == [
            ("connection_down", Level.ERROR, "f1")
        ]
        assert "has not been connected for 60 s (it is disconnected" in alerts[0].message
        mock_clock.jump(600)  # still away: no second alert for the same outage
        await trio.testing.wait_all_tasks_blocked()
        assert len(alerts) == 1
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_connection_back_before_its_delay_is_no_alert(
    tmp_path: Path, make_engine: MakeEngine, mock_clock: trio.testing.MockClock
) -> None:
    rig = make_engine(tmp_path)
    entries = _Entries(rig)
    alerts: list[Alert] = []
    watch = ConnectionWatch(60, alerts.append, rig.clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(watch.run)
        rig.engine.take_offline("f1")
        rig.idle()
        entries.feed(watch)
        await trio.testing.wait_all_tasks_blocked()  # the watch's timer is set
        mock_clock.jump(30)
        await trio.testing.wait_all_tasks_blocked()
        rig.engine.reconnect("f1")
        rig.idle()
        assert rig.engine.connection_state("f1") == "connected"
        entries.feed(watch)
        await trio.testing.wait_all_tasks_blocked()  # the watch's timer is set
        mock_clock.jump(600)
        await trio.testing.wait_all_tasks_blocked()
        assert alerts == []
        # A new outage after the return is a new alert.
        rig.engine.take_offline("f1")
        rig.idle()
        entries.feed(watch)
        await trio.testing.wait_all_tasks_blocked()  # the watch's timer is set
        mock_clock.jump(61)
        await trio.testing.wait_all_tasks_blocked()
        assert [a.connection for a in alerts] == ["f1"]
        nursery.cancel_scope.cancel()
