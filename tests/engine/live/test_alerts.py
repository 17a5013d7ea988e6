"""The alert router (S10.4) in a trio loop: activity entries from the real engine (its records'
listener, on the actor threads) become alerts that reach a JSON webhook on loopback through
apprise; kinds and min_level choose them; a supervisor hold is told from other restarts; a
connection away from ``connected`` past its delay reaches the target. Delivery itself:
test_alert_delivery.py; the connection watch's timing: test_connection_watch.py.

Waits are for what the receiver got, never a timed assertion.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from engine.domain.activity import Kind, Level
from tests.conftest import MakeEngine
from tests.engine.live.alert_receiver import (
    Receiver,
    entry,
    make_router,
    titles,
    until,
)

TOKEN = "s3cretWebhookToken42"


@pytest.mark.trio
async def test_an_entry_of_a_chosen_kind_reaches_the_target_as_one_alert(
    tmp_path: Path, make_engine: MakeEngine, receiver: Receiver
) -> None:
    """A manual lock writes one ``lock`` entry (warning) on an actor thread: the webhook gets
    one message, its title the level, kind and account, its body the entry's text, the account
    and the time. The lock of F2 after it is the mark that nothing more came for F1."""
    rig = make_engine(tmp_path, "threads")
    router, _ = make_router(receiver.url(f"hook/{TOKEN}"))
    rig.engine.records.listeners.append(router.record)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        rig.engine.lock("F1")
        rig.idle()  # F1's entry written before F2's (their actors run on their own threads)
        rig.engine.lock("F2")
        await until(receiver, "both locks", lambda: len(receiver.posts) >= 2)
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
    router, _ = make_router(receiver.url("hook"), kinds=["drift", "stale_prices"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        router.record("activity", entry(Kind.LOCK, Level.WARNING, "account locked manually"))
        router.record("activity", entry(Kind.STALE_PRICES, Level.INFO, "prices are back"))
        router.record("order", object())  # not an activity entry: ignored
        router.record("activity", entry(Kind.DRIFT, Level.WARNING, "F1 drifts by +1 ESZ6"))
        await until(receiver, "the drift", lambda: receiver.posts)
        nursery.cancel_scope.cancel()
    assert titles(receiver.posts) == ["[warning] drift F1"]


@pytest.mark.trio
async def test_min_level_error_leaves_warnings_out(receiver: Receiver) -> None:
    router, _ = make_router(receiver.url("hook"), min_level="error")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        router.record("activity", entry(Kind.DRIFT, Level.WARNING, "F1 drifts by +1 ESZ6"))
        router.record("activity", entry(Kind.FLATTEN_FAILED, Level.ERROR, "flatten failed"))
        await until(receiver, "the failed flatten", lambda: receiver.posts)
        nursery.cancel_scope.cancel()
    assert titles(receiver.posts) == ["[error] flatten_failed F1"]


@pytest.mark.trio
async def test_a_supervisor_hold_is_one_alert_and_the_restarts_before_it_none(
    tmp_path: Path, make_engine: MakeEngine, receiver: Receiver
) -> None:
    """S7.2: six crashes of F1's risk actor within 30 s hold F1 in LIQUIDATE_ONLY. Each crash
    writes a ``restart`` entry (error), the hold one more: only the hold is an alert, kind
    ``supervisor_hold`` (``restart`` is not a default kind)."""
    rig = make_engine(tmp_path, "threads")
    router, _ = make_router(receiver.url("hook"))
    rig.engine.records.listeners.append(router.record)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        for _ in range(6):
            rig.engine.inject_failure("risk", "F1")
            rig.idle()
        rig.engine.lock("F2")  # the mark: everything before it has been through the router
        await until(receiver, "the mark", lambda: any("F2" in p.title for p in receiver.posts))
        nursery.cancel_scope.cancel()
    assert titles(receiver.posts) == ["[error] supervisor_hold F1", "[warning] lock F2"]
    assert "held in LIQUIDATE_ONLY" in receiver.posts[0].message


@pytest.mark.trio
async def test_a_connection_down_alert_reaches_the_target(
    tmp_path: Path, make_engine: MakeEngine, receiver: Receiver
) -> None:
    """The whole path: the router hears the connection actor's entry, its watch waits (0.2 s
    here), the alert is sent."""
    rig = make_engine(tmp_path, "threads")
    router, _ = make_router(receiver.url("hook"), connection_down_seconds=0.2)
    rig.engine.records.listeners.append(router.record)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        rig.engine.take_offline("f2")
        await until(receiver, "the alert", lambda: receiver.posts)
        nursery.cancel_scope.cancel()
    assert titles(receiver.posts) == ["[error] connection_down f2"]
