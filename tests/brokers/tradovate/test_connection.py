"""The login's connection through the adapter (S1, S3) against the local server: a token
expiry moves every account of the login to reauth_required at once and one re-authorization
restores them; a dead socket (closed, or silent) is disconnected, reconnected with backoff, and
reconciled; a captcha or HTTP 429 makes it disconnected (rate_limited) without a retry storm;
malformed broker input is a logged error and a typed event, never a crash."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.tradovate.conftest import ES, MakeTv, TvRig

PATIENCE_S = 10.0  # how long a reconnection after a real-time backoff may take, at most


def eventually(rig: TvRig, condition: Callable[[], bool]) -> None:
    """Settle until ``condition`` holds: for what waits on the adapter's real-time backoff."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        rig.settle()
        if condition():
            return
        if time.monotonic() > deadline:
            pytest.fail("the condition never held")
        time.sleep(0.02)


def paused(rig: TvRig, account: str) -> bool:
    view = rig.engine.account_view(account)
    assert view is not None
    return view.connection_state != "connected"


def test_token_expiry_pauses_every_account_of_the_login_and_one_reauthorization_restores_them(
    tmp_path: Path, make_tv: MakeTv
) -> None:
    """S1.1: one transition for the login, whatever the number of its accounts."""
    rig = make_tv(tmp_path)
    rig.control("expire_token", "prop")
    assert rig.state("prop") == "reauth_required"
    assert rig.state("lead") == "connected"
    assert paused(rig, "F1") and paused(rig, "F2")
    transitions = [m for m in rig.activity(connection="prop") if "→ reauth_required" in m]
    assert len(transitions) == 1
    rig.trade("LEAD", 1)
    assert rig.requests("order/placeorder") == []  # both skipped (S2.4)
    rig.reauthorize("prop")
    assert rig.state("prop") == "connected"
    assert not paused(rig, "F1") and not paused(rig, "F2")
    assert len(rig.reconciliations("F1")) == len(rig.reconciliations("F2")) == 1  # S1.3
    rig.trade("LEAD", 1)
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (1, 1)


def test_a_dropped_socket_disconnects_then_backoff_reconnects_and_reconciles(
    tmp_path: Path, make_tv: MakeTv
) -> None:
    rig = make_tv(tmp_path, settings={"backoff_initial_s": 0.05, "backoff_max_s": 0.2})
    rig.trade("LEAD", 2)
    rig.control("drop", "prop")  # an outage: sockets closed, new ones refused
    assert rig.state("prop") == "disconnected"
    rig.trade("LEAD", -2)  # while down: never fanned out (S2.5)
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (2, 2)
    rig.bridge.restore("prop")  # the outage ends; nobody asks the engine to reconnect
    eventually(rig, lambda: rig.state("prop") == "connected")
    eventually(rig, lambda: rig.broker_position("F1") == rig.broker_position("F2") == 0)
    (record,) = rig.reconciliations("F1")  # S3.2: closed toward the flat leader
    assert '"ESZ6": 2' in record["before"] and '"ESZ6": -2' in record["orders"]


def test_a_silent_socket_is_declared_dead_and_replaced(tmp_path: Path, make_tv: MakeTv) -> None:
    rig = make_tv(tmp_path, settings={"heartbeat_s": 0.05, "dead_after_s": 0.3})
    rig.trade("LEAD", 1)
    before = len(rig.reconciliations("F1"))
    rig.control("freeze", "prop")  # no frames, no heartbeats, the socket stays open
    eventually(rig, lambda: len(rig.reconciliations("F1")) > before)
    assert rig.state("prop") == "connected"
    assert any("disconnected" in m for m in rig.activity(connection="prop"))
    rig.trade("LEAD", 1)
    assert rig.broker_position("F1") == 2


@pytest.mark.parametrize("fault", ["captcha_next", "lock_out"])
def test_captcha_or_429_makes_the_login_rate_limited_without_retrying(
    tmp_path: Path, make_tv: MakeTv, fault: str
) -> None:
    rig = make_tv(tmp_path)
    rig.control(fault, "prop")
    rig.trade("LEAD", 1)
    assert rig.state("prop") == "disconnected"
    (entry,) = [m for m in rig.activity(connection="prop") if "→ disconnected" in m]
    assert "rate_limited" in entry and "60 min" in entry
    sent = len(rig.requests("order/placeorder"))
    rig.trade("LEAD", 1)
    rig.advance(30 * 60)
    assert len(rig.requests("order/placeorder")) == sent  # no retry storm
    assert rig.state("prop") == "disconnected"
    if fault == "lock_out":
        rig.control("lock_out", "prop", False)
    rig.advance(31 * 60)  # the hour is over: tried again
    assert rig.state("prop") == "connected"


def test_a_malformed_frame_drops_the_socket_and_resyncs(tmp_path: Path, make_tv: MakeTv) -> None:
    rig = make_tv(tmp_path)
    rig.trade("LEAD", 1)
    rig.control("push_raw", "prop", "a[{not json")
    rig.control("push_raw", "prop", 'a[{"e":"props","d":{"entityType":"fill","entity":{}}}]')
    assert rig.state("prop") == "connected"
    lost = [m for m in rig.activity(connection="prop") if "→ disconnected" in m]
    assert lost and "malformed" in lost[0]
    assert len(rig.reconciliations("F1")) >= 1
    assert rig.bridge.adapter is not None and rig.bridge.adapter.stats["malformed"] >= 1
    rig.trade("LEAD", 1)
    assert rig.broker_position("F1") == 2


def test_a_lost_answer_to_placeorder_is_resolved_by_client_order_id(
    tmp_path: Path, make_tv: MakeTv
) -> None:
    """S2.6: the order reached the broker but its answer did not; it is not placed again."""
    rig = make_tv(tmp_path)
    rig.control("corrupt_next", "prop", 1)
    rig.trade("LEAD", 1)
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (1, 1)
    assert (rig.position("F1"), rig.position("F2")) == (1, 1)
    ids = [b["clOrdId"] for b in rig.bodies("order/placeorder")]
    assert len(ids) == len(set(ids)) == 2


def test_quotes_from_the_market_data_socket_reach_the_engine(
    tmp_path: Path, make_tv: MakeTv
) -> None:
    rig = make_tv(tmp_path)
    rig.trade("LEAD", 1)
    rig.price(ES, 5004)
    view = rig.engine.account_view("F1")
    assert view is not None and view.unrealized == 200  # 4 points of ES


@pytest.mark.parametrize(
    "fault",
    [
        ("penalize_next", "lead", 2, 0.05, "user/syncrequest"),  # tickets in the sync replies
        ("drop_sync_keys", "lead", ["positions"], 2),  # sync answers short of the positions
    ],
)
def test_an_unknown_leader_sync_after_an_outage_never_closes_the_followers(
    tmp_path: Path, make_tv: MakeTv, fault: tuple[Any, ...]
) -> None:
    """S3.5: the leader's answer that is not a complete sync is unknown, never flat."""
    settings = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "request_timeout_s": 0.5}
    rig = make_tv(tmp_path, settings=settings)
    rig.trade("LEAD", 2)
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (2, 2)
    rig.control("drop", "lead")
    assert rig.state("lead") == "disconnected"
    name, user, *args = fault
    rig.control(name, user, *args)
    rig.bridge.restore("lead")
    eventually(rig, lambda: rig.state("lead") == "connected")
    rig.settle()
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (2, 2)
    assert len(rig.requests("order/placeorder")) == 2  # the two copies, nothing since
    assert rig.position("LEAD") == 2
