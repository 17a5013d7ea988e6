"""One alert target's delivery (S10.4), behind the router as the engine runs it: a failing
target is retried on S5.6's schedule, then counted in /metrics and logged without its secret;
the rate limit sums the excess up in one message; a hung target holds up only its own queue;
a full queue drops, counted. Backoff and the rate window run on trio's virtual clock (they would
take real minutes); nothing asserts a time.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import trio
import trio.testing
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from brokers.clock import VirtualClock
from engine.app.metrics import EngineMetrics
from engine.domain.activity import Kind, Level
from engine.domain.alerting import Alert
from engine.live.alert_delivery import ATTEMPTS, Delivery
from tests.conftest import START
from tests.engine.live.alert_receiver import (
    Receiver,
    entry,
    make_router,
    make_targets,
    until,
)

TOKEN = "s3cretWebhookToken42"


@pytest.mark.trio
async def test_a_failing_target_is_retried_with_backoff_then_counted_and_logged_without_its_secret(
    receiver: Receiver, autojump_clock: trio.testing.MockClock
) -> None:
    """HTTP 500 every time: ``ATTEMPTS`` sends, 1, 2, 4 and 8 s apart (S5.6's schedule, on
    trio's virtual clock), then one failure in /metrics and one error line, both naming the
    target ``json#1`` and neither holding the URL's token; the next alert is sent as usual."""
    router, metrics = make_router(receiver.url(f"fail/{TOKEN}"), receiver.url("hook"))
    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(router.run)
            router.record("activity", entry(Kind.DRIFT, Level.WARNING, "F1 drifts by +1"))
            await until(receiver, "the healthy target", lambda: receiver.posts)
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
    router, metrics = make_router(receiver.url("hook"), rate=2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        for n in range(9):
            kind = Kind.DRIFT if n in (0, 2, 3, 5, 7, 8) else Kind.MISSED_COPY
            router.record("activity", entry(kind, Level.WARNING, f"alert {n}"))
        await until(receiver, "the summary", lambda: len(receiver.posts) >= 3)
        router.record("activity", entry(Kind.BREACH, Level.WARNING, "the one after"))
        await until(receiver, "the next alert", lambda: len(receiver.posts) >= 4)
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
    router, _ = make_router(receiver.url("hang", rto="60"), receiver.url("hook"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        router.record("activity", entry(Kind.DRIFT, Level.WARNING, "first"))
        await until(receiver, "the hung request", lambda: receiver.hanging == 1)
        router.record("activity", entry(Kind.DRIFT, Level.WARNING, "second"))
        await until(receiver, "both at the other target", lambda: len(receiver.posts) == 2)
        assert receiver.hanging == 1  # still open: the other target did not wait for it
        receiver.release()
        nursery.cancel_scope.cancel()


def test_a_delivery_queue_that_is_full_drops_and_counts() -> None:
    """``put`` never waits: past the queue's capacity an alert is dropped and counted."""
    metrics = EngineMetrics(lambda: 0)
    config, targets = make_targets("json://127.0.0.1:9/hook")
    delivery = Delivery(targets[0], metrics.alerts, VirtualClock(START), config.rate, capacity=2)
    alert = Alert(datetime(2026, 1, 6, tzinfo=UTC), Level.WARNING, "drift", "x")
    for _ in range(3):
        delivery.put(alert)
    exposition = generate_latest(metrics.registry).decode()
    assert 'mimik_alerts_dropped_total{target="json#1"} 1.0' in exposition
    assert 'mimik_alert_queue_depth{target="json#1"} 2.0' in exposition
