"""A flatten run on its own (S5.3 step 1, S5.6): cancel first, liquidate every open contract
not already being liquidated with counted attempts, wait for the connection, back off on S5.6's
schedule after a rejection, and carry on after a restart without cancelling or sending again."""

from __future__ import annotations

from datetime import timedelta

from actors.flatten import FlattenRun, Purpose
from brokers.base import OrderType
from engine.domain.order_ids import OrderKind, attempt_of, client_order_id, kind_of
from engine.domain.state import FlattenRecord

ES, NQ = "ESZ6", "NQZ6"


def run() -> FlattenRun:
    return FlattenRun(1, "breach:A:1", Purpose.LOCK)


def test_the_first_step_cancels_then_liquidates_every_open_contract() -> None:
    r = run()
    liquidating: dict[str, str] = {}
    step = r.step("A", {ES: 2, NQ: 0}, liquidating, connected=True)
    assert step is not None and step.cancel
    [placement] = step.orders
    request = placement.request
    assert request.order_type is OrderType.LIQUIDATE
    assert (request.account, request.symbol, placement.kind, placement.cause) == (
        "A",
        ES,
        "liquidation",
        "breach:A:1",
    )
    assert request.client_order_id == client_order_id(OrderKind.LIQUIDATE, "breach:A:1", "A", ES, 1)
    assert kind_of(request.client_order_id) is OrderKind.LIQUIDATE
    assert liquidating == {ES: request.client_order_id}
    assert r.sends == {ES: 1}


def test_a_later_step_cancels_no_more_and_skips_what_is_being_liquidated() -> None:
    r = run()
    liquidating: dict[str, str] = {}
    r.step("A", {ES: 2}, liquidating, connected=True)
    step = r.step("A", {ES: 2, NQ: -1}, liquidating, connected=True)
    assert step is not None and not step.cancel
    assert [p.request.symbol for p in step.orders] == [NQ]


def test_without_the_connection_the_run_waits_until_it_returns() -> None:
    r = run()
    assert r.step("A", {ES: 1}, {}, connected=False) is None
    assert r.waiting_connection
    assert r.step("A", {ES: 1}, {}, connected=True) is None  # still waiting
    r.connection_returned()
    assert r.step("A", {ES: 1}, {}, connected=True) is not None


def test_a_rejection_backs_off_on_s5_6s_schedule_and_only_the_current_timer_ends_it() -> None:
    r = run()
    liquidating: dict[str, str] = {}
    r.step("A", {ES: 1}, liquidating, connected=True)
    liquidating.clear()
    assert r.rejected() == timedelta(seconds=1)
    assert r.step("A", {ES: 1}, liquidating, connected=True) is None
    assert r.rejected() == timedelta(seconds=2)
    assert not r.retry_due(1, 1)  # the timer of the first failure
    assert not r.retry_due(2, 2)  # another run's
    assert r.retry_due(1, 2)
    step = r.step("A", {ES: 1}, liquidating, connected=True)
    assert step is not None
    assert attempt_of(step.orders[0].request.client_order_id) == 2  # the next attempt


def test_outcomes_say_whether_the_run_steps_on() -> None:
    r = run()
    assert r.answered("filled", connected=True, confirmed=True)
    assert r.answered("done", connected=True, confirmed=True)
    # nothing was open while the book holds an unconfirmed position: wait for the broker's book
    assert not r.answered("done", connected=True, confirmed=False)
    assert r.answered("not_sent", connected=False, confirmed=True)
    assert r.waiting_connection


def test_a_restored_run_waits_for_the_book_and_never_cancels_its_own_liquidations() -> None:
    record = FlattenRecord(3, "lock:A:3", "lock", 2, {ES: 2})
    r = FlattenRun.restore(record)
    assert (r.restored, r.cancelled, r.backing_off) == (True, True, True)
    assert r.record() == record
    assert r.retry_delay() == timedelta(seconds=2)
    assert r.step("A", {ES: 1}, {}, connected=True) is None
    fresh = FlattenRun.restore(FlattenRecord(4, "breach:A:4", "command", 0, {}))
    assert (fresh.purpose, fresh.cancelled, fresh.backing_off) == (Purpose.COMMAND, False, False)
