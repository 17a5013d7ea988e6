"""S10.4 in the live engine's trio loop: activity entries from the real engine (its records'
listener, on the actor threads) become alerts that reach a JSON webhook on loopback through
apprise; kinds and min_level choose them; a supervisor hold is told from other restarts; a
failing target is retried on S5.6's schedule, then counted and logged without its secret; the
rate limit sums the excess up in one message; a hung target holds up no other; and a connection
away from ``connected`` is one alert once its delay has passed, none if it comes back first.

Waits are for what the receiver got or what the loop did (trio's virtual clock where backoff
and the rate window would take real minutes), never a timed assertion.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from brokers.clock import VirtualClock
from engine.app.alert_targets import Target, load_targets
from engine.app.alerts_config import AlertsConfig
from engine.app.metrics import EngineMetrics
from engine.domain.activity import ActivityEntry, Kind, Level
from engine.domain.alerting import Alert
from engine.live.alert_delivery import ATTEMPTS, Delivery
from engine.live.alerts import AlertRouter
from engine.live.connection_watch import ConnectionWatch
from tests.conftest import START, MakeEngine, Rig
from tests.engine.live.alert_receiver import Post, Receiver, receiving

TOKEN = "s3cretWebhookToken42"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def _targets(*urls: str, **keys: Any) -> tuple[AlertsConfig, list[Target]]:
    config = AlertsConfig(urls_env="ALERT_URLS", **keys)
    return config, load_targets(config, Path, {"ALERT_URLS": "\n".join(urls)})


def _router(*urls: str, **keys: Any) -> tuple[AlertRouter, EngineMetrics]:
    config, targets = _targets(*urls, **keys)
    metrics = EngineMetrics(lambda: 0)
    return AlertRouter(config, targets, metrics.alerts, VirtualClock(START)), metrics


async def _until(receiver: Receiver, what: str, check: Any) -> Any:
    return await trio.to_thread.run_sync(receiver.wait_for, what, check)


def _entry(kind: Kind, level: Level, message: str, account: str = "F1") -> ActivityEntry:
    return ActivityEntry(START, level, kind, message, account=account)


def _kinds(posts: list[Post]) -> list[str]:
    return [p.title for p in posts]


@pytest.mark.trio
async def test_an_entry_of_a_chosen_kind_reaches_the_target_as_one_alert(
    tmp_path: Path, make_engine: MakeEngine, receiver: Receiver
) -> None:
    """A manual lock writes one ``lock`` entry (warning) on an actor thread: the webhook gets
    one message, its title the level, kind and account, its body the entry's text, the account
    and the time. The lock of F2 after it is the mark that nothing more came for F1."""
    rig = make_engine(tmp_path, "threads")
    router, _ = _router(receiver.url(f"hook/{TOKEN}"))
    rig.engine.records.listeners.append(router.record)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        rig.engine.lock("F1")
        rig.idle()  # F1's entry written before F2's (their actors run on their own threads)
        rig.engine.lock("F2")
        await _until(receiver, "both locks", lambda: len(receiver.posts) >= 2)
        nursery.cancel_scope.cancel()
    first, second = receiver.posts
    assert first.title == "[warning] lock F1"
    assert first.message.startswith("account locked manually\naccount F1 · 2026-01-06T15:00")
    assert first.type == "warning"
    assert second.title == "[warning] lock F2"


@pytest.mark.trio
async def test_kinds_and_min_level_choose_the_alerts(receiver: Receiver) -> None:
    """kinds = drift, stale_prices; min_level = warning: an entry of another kind (a lock) and
    one below the level (prices back, info) give nothing; the drift after them is the first
    and only message."""
    router, _ = _router(receiver.url("hook"), kinds=["drift", "stale_prices"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        router.record("activity", _entry(Kind.LOCK, Level.WARNING, "account locked manually"))
        router.record("activity", _entry(Kind.STALE_PRICES, Level.INFO, "prices are back"))
        router.record("order", object())  # not an activity entry: ignored
        router.record("activity", _entry(Kind.DRIFT, Level.WARNING, "F1 drifts by +1 ESZ6"))
        await _until(receiver, "the drift", lambda: receiver.posts)
        nursery.cancel_scope.cancel()
    assert _kinds(receiver.posts) == ["[warning] drift F1"]


@pytest.mark.trio
async def test_min_level_error_leaves_warnings_out(receiver: Receiver) -> None:
    router, _ = _router(receiver.url("hook"), min_level="error")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        router.record("activity", _entry(Kind.DRIFT, Level.WARNING, "F1 drifts by +1 ESZ6"))
        router.record("activity", _entry(Kind.FLATTEN_FAILED, Level.ERROR, "flatten failed"))
        await _until(receiver, "the failed flatten", lambda: receiver.posts)
        nursery.cancel_scope.cancel()
    assert _kinds(receiver.posts) == ["[error] flatten_failed F1"]


@pytest.mark.trio
async def test_a_supervisor_hold_is_one_alert_and_the_restarts_before_it_none(
    tmp_path: Path, make_engine: MakeEngine, receiver: Receiver
) -> None:
    """S7.2: six crashes of F1's risk actor within 30 s hold F1 in LIQUIDATE_ONLY. Each crash
    writes a ``restart`` entry (error), the hold one more: only the hold is an alert, kind
    ``supervisor_hold`` (``restart`` is not a default kind)."""
    rig = make_engine(tmp_path, "threads")
    router, _ = _router(receiver.url("hook"))
    rig.engine.records.listeners.append(router.record)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        for _ in range(6):
            rig.engine.inject_failure("risk", "F1")
            rig.idle()
        rig.engine.lock("F2")  # the mark: everything before it has been through the router
        await _until(receiver, "the mark", lambda: any("F2" in p.title for p in receiver.posts))
        nursery.cancel_scope.cancel()
    assert _kinds(receiver.posts) == ["[error] supervisor_hold F1", "[warning] lock F2"]
    assert "held in LIQUIDATE_ONLY" in receiver.posts[0].message


@pytest.mark.trio
async def test_a_failing_target_is_retried_with_backoff_then_counted_and_logged_without_its_secret(
    receiver: Receiver, autojump_clock: trio.testing.MockClock
) -> None:
    """HTTP 500 every time: ``ATTEMPTS`` sends, 1, 2, 4 and 8 s apart (S5.6's schedule, on
    trio's virtual clock), then one failure in /metrics and one error line, both naming the
    target ``json#1`` and neither holding the URL's token; the next alert is sent as usual."""
    router, metrics = _router(receiver.url(f"fail/{TOKEN}"), receiver.url("hook"))
    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(router.run)
            router.record("activity", _entry(Kind.DRIFT, Level.WARNING, "F1 drifts by +1"))
            await _until(receiver, "the healthy target", lambda: receiver.posts)
            while not metrics.registry.get_sample_value(
                "mimik_alert_failures_total", {"target": "json#1"}
            ):
                await trio.sleep(0.5)
            nursery.cancel_scope.cancel()
    failing = [path for path in receiver.attempts if "fail" in path]
    assert len(failing) == ATTEMPTS
    retries = [e for e in logs if e["event"] == "alert not delivered; retrying"]
    assert [e["retry_in_s"] for e in retries] == [1.0, 2.0, 4.0, 8.0]
    (failure,) = [e for e in logs if e["event"] == "alert delivery failed"]
    assert failure["target"] == "json#1"
    assert failure["attempts"] == ATTEMPTS
    assert "500" in failure["reason"]
    exposition = generate_latest(metrics.registry).decode()
    assert 'mimik_alert_failures_total{target="json#1"} 1.0' in exposition
    assert 'mimik_alert_retries_total{target="json#1"} 4.0' in exposition
    assert 'mimik_alerts_delivered_total{target="json#2"} 1.0' in exposition
    assert TOKEN not in exposition
    assert TOKEN not in repr(logs)
    assert TOKEN not in repr(router.deliveries[0].target)


@pytest.mark.trio
async def test_the_rate_limit_sums_the_excess_up_in_one_message(
    receiver: Receiver, autojump_clock: trio.testing.MockClock
) -> None:
    """rate = 2: of nine alerts at once the first two go, the other seven are held and go as
    one message once the minute allows (virtual time), counted in /metrics; the window then
    has room for the next alert, which goes as itself."""
    router, metrics = _router(receiver.url("hook"), rate=2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        for n in range(9):
            kind = Kind.DRIFT if n in (0, 2, 3, 5, 7, 8) else Kind.MISSED_COPY
            router.record("activity", _entry(kind, Level.WARNING, f"alert {n}"))
        await _until(receiver, "the summary", lambda: len(receiver.posts) >= 3)
        router.record("activity", _entry(Kind.BREACH, Level.WARNING, "the one after"))
        await _until(receiver, "the next alert", lambda: len(receiver.posts) >= 4)
        nursery.cancel_scope.cancel()
    first, second, summary, after = receiver.posts
    assert [first.message.split("\n")[0], second.message.split("\n")[0]] == ["alert 0", "alert 1"]
    assert summary.title == "[warning] summary"
    assert summary.message.startswith("7 more alerts: 5 drift, 2 missed_copy")
    assert after.title == "[warning] breach F1"
    exposition = generate_latest(metrics.registry).decode()
    assert 'mimik_alerts_summarised_total{target="json#1"} 7.0' in exposition


@pytest.mark.trio
async def test_a_hung_target_holds_up_only_its_own_queue(receiver: Receiver) -> None:
    """The first target's request hangs (its read timeout raised to 60 s): the second target
    gets this alert and the next while the hung request is still open."""
    router, _ = _router(receiver.url("hang", rto="60"), receiver.url("hook"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        router.record("activity", _entry(Kind.DRIFT, Level.WARNING, "first"))
        await _until(receiver, "the hung request", lambda: receiver.hanging == 1)
        router.record("activity", _entry(Kind.DRIFT, Level.WARNING, "second"))
        await _until(receiver, "both at the other target", lambda: len(receiver.posts) == 2)
        assert receiver.hanging == 1  # still open: the other target did not wait for it
        receiver.release()
        nursery.cancel_scope.cancel()


# --- S10.4: a connection that leaves connected ---------------------------------------------------


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


@pytest.mark.trio
async def test_a_connection_down_alert_reaches_the_target(
    tmp_path: Path, make_engine: MakeEngine, receiver: Receiver
) -> None:
    """The whole path: the router hears the connection actor's entry, its watch waits (0.2 s
    here), the alert is sent."""
    rig = make_engine(tmp_path, "threads")
    router, _ = _router(receiver.url("hook"), connection_down_seconds=0.2)
    rig.engine.records.listeners.append(router.record)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        rig.engine.take_offline("f2")
        await _until(receiver, "the alert", lambda: receiver.posts)
        nursery.cancel_scope.cancel()
    assert _kinds(receiver.posts) == ["[error] connection_down f2"]


def test_a_delivery_queue_that_is_full_drops_and_counts() -> None:
    """``put`` never waits: past the queue's capacity an alert is dropped and counted."""
    metrics = EngineMetrics(lambda: 0)
    config, targets = _targets("json://127.0.0.1:9/hook")
    delivery = Delivery(targets[0], metrics.alerts, VirtualClock(START), config.rate, capacity=2)
    alert = Alert(datetime(2026, 1, 6, tzinfo=UTC), Level.WARNING, "drift", "x")
    for _ in range(3):
        delivery.put(alert)
    exposition = generate_latest(metrics.registry).decode()
    assert 'mimik_alerts_dropped_total{target="json#1"} 1.0' in exposition
    assert 'mimik_alert_queue_depth{target="json#1"} 2.0' in exposition
