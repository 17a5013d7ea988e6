"""AccountActor through the real engine: fills, P&L and ticks (S5.1), the follower side of
copying (S2.2–S2.5, S2.8–S2.10), positions that are unknown (S3.5) and fills the broker
withdraws. Prices it does not give (S10.3) are ``test_stale_prices.py``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.messages.account import CopyOffer
from actors.messages.connection import ResyncAccount
from brokers.base import (
    Fill,
    FillCorrected,
    OrderAccepted,
    OrderDone,
)
from engine.core.topology import GroupConfig
from engine.domain.copy_rule import target
from engine.host.deterministic import DeterministicRuntime
from tests.conftest import ES, MES, NQ, MakeEngine, Rig, member

D = Decimal
F1 = ("account", "F1")


def solo(make_engine: MakeEngine, tmp_path: Path, runtime: str = "deterministic") -> Rig:
    return make_engine(tmp_path, runtime, connections=("s",), accounts=(("SOLO", "s"),), groups=())


def one_follower(
    make_engine: MakeEngine, tmp_path: Path, runtime: str = "deterministic", **terms: object
) -> Rig:
    return make_engine(
        tmp_path,
        runtime,
        connections=("lead", "f1"),
        accounts=(("LEAD", "lead"), ("F1", "f1")),
        groups=(GroupConfig("g1", "LEAD", [member("F1", **terms)]),),  # type: ignore[arg-type]
    )


# --- fills, ticks and P&L (S5.1) ------------------------------------------------------------------


def test_s5_1_fills_and_ticks_give_positions_and_exact_pnl(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = solo(make_engine, tmp_path, runtime)
    rig.trade("SOLO", 2)  # @ 5000
    rig.price(ES, 5010)
    view = rig.engine.account_view("SOLO")
    assert view is not None
    assert view.positions == {ES: 2}
    assert view.unrealized == D(1000)  # 10 points · 2 · $50
    assert view.realized_daily == 0

    rig.trade("SOLO", -1)  # @ 5010: realizes 500
    rig.price(ES, 4990)
    rig.trade("SOLO", 1)  # @ 4990: average (5000 + 4990) / 2 = 4995
    rig.price(ES, 5000)
    rig.trade("SOLO", -3)  # @ 5000: closes 2 (+500), opens 1 short at 5000
    view = rig.engine.account_view("SOLO")
    assert view is not None
    assert view.positions == {ES: -1}
    assert view.realized_daily == view.realized_weekly == D(1000)
    assert view.unrealized == 0
    assert view.balance == D(50000)
    assert view.equity == D(51000)
    rig.price(ES, D("4999.75"))
    view = rig.engine.account_view("SOLO")
    assert view is not None
    assert view.unrealized == D("12.50")  # a short gains a quarter point · $50
    assert view.daily_pnl == D("1012.50")


def test_a_fill_delivered_twice_counts_once(make_engine: MakeEngine, tmp_path: Path) -> None:
    rig = solo(make_engine, tmp_path)
    fill = Fill("s", "SOLO", "DUP1", "B1", None, ES, 1, D(5000), rig.clock.now(), True)
    rig.tell(("connection", "s"), fill)
    rig.tell(("connection", "s"), fill)
    assert rig.position("SOLO") == 1


def test_fills_of_another_symbol_are_kept_apart(make_engine: MakeEngine, tmp_path: Path) -> None:
    rig = solo(make_engine, tmp_path)
    rig.trade("SOLO", 1, ES)
    rig.trade("SOLO", -2, NQ)
    view = rig.engine.account_view("SOLO")
    assert view is not None
    assert view.positions == {ES: 1, NQ: -2}
    rig.price(NQ, 20001)  # NQ: $20 a point
    view = rig.engine.account_view("SOLO")
    assert view is not None
    assert view.unrealized == D(-40)


# --- S2.2 end to end ------------------------------------------------------------------------------


def test_s2_2_worked_example_end_to_end(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime, ratio=2, max_qty=3)
    positions = []
    for qty in (1, 1, 1, -3):
        rig.trade("LEAD", qty)
        positions.append(rig.position("F1"))
    assert rig.order_qtys("F1") == [2, 1, -3]  # the 0 sends nothing
    assert positions == [2, 3, 3, 0]
    assert rig.broker_position("F1") == 0


def test_s2_1_partial_fills_fan_out_as_they_arrive(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime, ratio="1.5")
    rig.trade("LEAD", 3, fills=(1, 1, 1))  # t: 2, 3, 5 (4.5 rounds up)
    assert rig.order_qtys("F1") == [2, 1, 2]
    assert rig.position("F1") == 5


def test_s2_2_p_includes_the_engines_orders_still_working(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime)
    rig.broker.hold("f1")
    rig.trade("LEAD", 1)
    rig.trade("LEAD", 1)
    rig.trade("LEAD", -2)
    assert rig.order_qtys("F1") == [1, 1, -2]  # the exit closes what is working, too
    assert rig.position("F1") == 0
    rig.broker.release("f1")
    rig.idle()
    assert rig.position("F1") == rig.broker_position("F1") == 0


def test_s2_3_symbol_map_maps_the_root_and_keeps_the_month(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime, symbol_map={"ES": "MES"})
    rig.trade("LEAD", 2)
    rig.trade("LEAD", 1, NQ)  # not in the map: copied as it is
    view = rig.engine.account_view("F1")
    assert view is not None
    assert view.positions == {MES: 2, NQ: 1}
    assert [r["symbol"] for r in rig.orders("F1")] == [MES, NQ]


# --- S2.4, S2.5 -----------------------------------------------------------------------------------


def test_s2_6_an_order_whose_answers_were_lost_is_settled_by_the_next_snapshot(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """F1's copy reaches the broker and fills, but neither its acceptance nor its fill reaches
    the account. The next snapshot shows the position and reports the order filled: the
    account stops counting it as working (S2.2's P would otherwise count it twice) and the
    ledger gets its outcome."""
    rig = one_follower(make_engine, tmp_path)
    runtime = rig.engine.runtime
    assert isinstance(runtime, DeterministicRuntime)
    rig.broker.trade("LEAD", ES, 1)
    answers = (OrderAccepted, Fill, OrderDone)
    while (queued := runtime.next_message()) is not None:
        to, message = queued
        if to == F1 and isinstance(message, answers):
            runtime.lose()
        else:
            runtime.step()
    view = rig.engine.account_view("F1")
    assert view is not None and (view.positions, view.working) == ({}, 1)
    assert rig.broker_position("F1") == 1

    rig.tell(("connection", "f1"), ResyncAccount("F1"))
    view = rig.engine.account_view("F1")
    assert view is not None and (view.positions, view.working) == ({ES: 1}, 0)
    assert [r["status"] for r in rig.orders("F1", "copy")] == ["filled"]
    assert any("its answer never came" in m for m in rig.messages("F1"))
    rig.trade("LEAD", 1)  # P is 1, not 2: the next copy is one lot, not none
    assert rig.broker_position("F1") == 2


def test_s2_4_a_follower_not_connected_is_skipped_and_the_skip_recorded(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)  # LEAD → F1 (login f1), F2 (login f2)
    rig.broker.drop("f1")
    rig.idle()
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 0
    assert rig.position("F2") == 1  # every other follower is unaffected
    skips = rig.activity("F1", "skip")
    assert len(skips) == 1
    assert "skipped" in skips[0]["message"]
    assert "disconnected" in skips[0]["message"]
    assert rig.orders("F1") == []
    assert rig.activity("F2", "skip") == []


def test_s2_5_trades_made_while_paused_are_never_replayed_and_the_exit_never_flips(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.broker.drop("f1")
    rig.idle()
    rig.trade("LEAD", 2)  # F1 misses the entry
    rig.engine.reconnect("f1")
    rig.idle()
    assert rig.engine.connection_state("f1") == "connected"
    assert rig.position("F1") == 0  # S3.2: reconciliation never opens
    recs = rig.reconciliations("F1")
    assert len(recs) == 1
    assert recs[0]["orders"] == "{}"
    rig.trade("LEAD", -2)  # the exit
    assert rig.position("F1") == 0  # never pushed to the other side
    assert rig.orders("F1") == []
    assert rig.position("F2") == 0
    assert rig.order_qtys("F2") == [2, -2]


# --- S2.9 -----------------------------------------------------------------------------------------


def offer(rig: Rig, name: str, before: int, after: int, age: float) -> CopyOffer:
    return CopyOffer(
        group="g1",
        cause=f"LEAD:{name}",
        fill_id=name,
        leader_symbol=ES,
        symbol=ES,
        before=before,
        after=after,
        ratio=D(1),
        max_qty=None,
        fill_time=rig.clock.now() - timedelta(seconds=age),
    )


def test_s2_9_a_stale_opening_copy_is_skipped(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime)
    rig.tell(F1, offer(rig, "old", 0, 1, age=11))
    assert rig.position("F1") == 0
    assert rig.orders("F1") == []
    skips = rig.activity("F1", "skip")
    assert len(skips) == 1
    assert "stale" in skips[0]["message"]
    assert skips[0]["level"] == "info"


def test_s2_9_an_opening_copy_at_exactly_max_copy_age_is_still_sent(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = one_follower(make_engine, tmp_path)
    rig.tell(F1, offer(rig, "edge", 0, 1, age=10))
    assert rig.position("F1") == 1
    assert rig.activity("F1", "skip") == []


def test_s2_9_a_closing_copy_is_never_skipped_for_age(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 1
    rig.tell(F1, offer(rig, "old-exit", 1, 0, age=3600))
    assert rig.position("F1") == 0
    assert rig.activity("F1", "skip") == []


def test_s2_9_a_stale_crossing_copy_sends_only_its_closing_part(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 1)
    rig.tell(F1, offer(rig, "old-cross", 1, -2, age=60))
    assert rig.position("F1") == 0  # closed, not flipped to −2
    assert rig.order_qtys("F1") == [1, -1]
    assert len(rig.activity("F1", "skip")) == 1


def test_s2_9_max_copy_age_is_a_setting(make_engine: MakeEngine, tmp_path: Path) -> None:
    rig = make_engine(
        tmp_path,
        connections=("lead", "f1"),
        accounts=(("LEAD", "lead"), ("F1", "f1")),
        groups=(GroupConfig("g1", "LEAD", [member("F1")]),),
        max_copy_age=timedelta(seconds=2),
    )
    rig.tell(F1, offer(rig, "three-seconds", 0, 1, age=3))
    assert rig.position("F1") == 0
    assert "limit 2 s" in rig.messages("F1", "skip")[0]


# --- S2.10 ----------------------------------------------------------------------------------------


def test_s2_10_a_copy_leaving_the_follower_flat_cancels_its_leftover_working_orders(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 1)
    stop = rig.broker.place_manual_working("F1", ES, -1)  # a stop the trader forgot
    other = rig.broker.place_manual_working("F1", NQ, 1)  # another symbol: not touched
    rig.idle()
    view = rig.engine.account_view("F1")
    assert view is not None
    assert view.working == 2
    rig.trade("LEAD", -1)
    assert rig.position("F1") == 0
    assert [w.broker_order_id for w in rig.broker.working_orders("F1")] == [other]
    assert stop not in [w.broker_order_id for w in rig.broker.working_orders("F1")]
    view = rig.engine.account_view("F1")
    assert view is not None
    assert view.working == 1


def test_s2_10_working_orders_stay_while_the_follower_is_not_flat(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = one_follower(make_engine, tmp_path)
    rig.trade("LEAD", 2)
    stop = rig.broker.place_manual_working("F1", ES, -2)
    rig.idle()
    rig.trade("LEAD", -1)
    assert rig.position("F1") == 1
    assert [w.broker_order_id for w in rig.broker.working_orders("F1")] == [stop]


# --- S2.8 -----------------------------------------------------------------------------------------


def test_s2_8_a_rejected_opening_copy_is_not_retried(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime)
    rig.broker.reject_next("f1")
    rig.trade("LEAD", 1)
    rig.advance(120)
    assert rig.position("F1") == 0
    rows = rig.orders("F1")
    assert [(r["qty"], r["status"]) for r in rows] == [(1, "rejected")]
    rejections = rig.activity("F1", "rejection")
    assert len(rejections) == 1
    assert rejections[0]["level"] != "error"
    assert "retrying" not in rejections[0]["message"]


def test_s2_8_a_rejected_closing_copy_is_retried_with_backoff(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 1)
    start = rig.clock.now()
    rig.broker.reject_next("f1", 2)
    rig.trade("LEAD", -1)
    assert rig.position("F1") == 1
    errors = rig.activity("F1", "rejection")
    assert [r["level"] for r in errors] == ["error"]
    assert "retrying" in errors[0]["message"]
    rig.advance(0.9)
    assert len(rig.orders("F1")) == 2  # not yet
    rig.advance(0.1)  # 1 s: second attempt, rejected again
    assert rig.position("F1") == 1
    rig.advance(1.9)
    assert len(rig.orders("F1")) == 3
    rig.advance(0.1)  # 1 + 2 s: third attempt fills
    assert rig.position("F1") == 0
    rows = rig.orders("F1")[1:]
    assert [(r["qty"], r["status"]) for r in rows] == [
        (-1, "rejected"),
        (-1, "rejected"),
        (-1, "filled"),
    ]
    assert [r["client_order_id"][-2:] for r in rows] == ["-1", "-2", "-3"]
    times = [r["created_at"] for r in rows]
    assert times == [
        start.isoformat(),
        (start + timedelta(seconds=1)).isoformat(),
        (start + timedelta(seconds=3)).isoformat(),
    ]
    assert len({r["cause"] for r in rows}) == 1  # the same intent, attempt by attempt


def test_s2_8_a_retry_sends_only_what_is_still_open(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = one_follower(make_engine, tmp_path)
    rig.trade("LEAD", 2)
    rig.broker.reject_next("f1")
    rig.trade("LEAD", -2)
    rig.trade("F1", -1)  # meanwhile the trader closes one by hand
    rig.advance(1)
    assert rig.position("F1") == 0
    assert rig.order_qtys("F1") == [2, -2, -1]


@pytest.mark.parametrize("ratio", ["0.5", "2.5"])
def test_s2_2_ratio_rounding_end_to_end(
    make_engine: MakeEngine, tmp_path: Path, ratio: str
) -> None:
    rig = one_follower(make_engine, tmp_path, ratio=ratio)
    rig.trade("LEAD", 1)
    assert rig.position("F1") == {"0.5": 1, "2.5": 3}[ratio]
    rig.trade("LEAD", -2)
    assert rig.position("F1") == {"0.5": -1, "2.5": -3}[ratio]


# --- the S2.2 property, end to end ----------------------------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fills=st.lists(st.integers(-6, 6).filter(bool), min_size=1, max_size=8),
    ratio=st.integers(1, 30).map(lambda n: Decimal(n) / 10),
    max_qty=st.none() | st.integers(1, 8),
)
def test_s2_2_property_a_connected_follower_holds_t_of_l_after_every_leader_fill(
    make_engine: MakeEngine,
    tmp_path_factory: pytest.TempPathFactory,
    fills: list[int],
    ratio: Decimal,
    max_qty: int | None,
) -> None:
    """The copy rule's property through the real actors (deterministic runtime)."""
    rig = one_follower(
        make_engine, tmp_path_factory.mktemp("prop"), ratio=str(ratio), max_qty=max_qty
    )
    try:
        leader = 0
        for qty in fills:
            rig.trade("LEAD", qty)
            leader += qty
            assert rig.position("F1") == target(leader, ratio, max_qty), (leader, fills)
        assert rig.broker_position("F1") == rig.position("F1")
    finally:
        rig.close()


def test_s5_8_a_daily_reset_marks_open_positions_to_the_last_price(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = solo(make_engine, tmp_path, runtime)
    rig.trade("SOLO", 1)  # @ 5000
    rig.price(ES, 5010)
    rig.engine.advance_to(datetime(2026, 1, 6, 23, 0, tzinfo=UTC))  # 17:00 Chicago
    view = rig.engine.account_view("SOLO")
    assert view is not None
    assert view.positions == {ES: 1}
    assert view.balance == D(50500)  # the mark moved into realized, then into the balance
    assert view.realized_daily == 0
    assert view.realized_weekly == D(500)  # a daily reset keeps the week's figure
    assert view.unrealized == 0  # measured from the mark now
    rig.price(ES, 5020)
    view = rig.engine.account_view("SOLO")
    assert view is not None
    assert view.unrealized == D(500)


def test_s7_2_a_restart_brings_back_realized_pnl_and_the_high_water_mark(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = solo(make_engine, tmp_path)
    rig.trade("SOLO", 1)
    rig.price(ES, 5010)
    rig.trade("SOLO", -1)  # realizes +500
    rig.restart(reconcile=True)
    view = rig.engine.account_view("SOLO")
    risk = rig.engine.risk_view("SOLO")
    assert view is not None
    assert risk is not None
    assert view.realized_daily == view.realized_weekly == D(500)
    assert risk.high_water == D(50500)


# --- S3.5: nothing is decided from positions the broker has not confirmed -------------------------


def unknown_return(rig: Rig, connection: str, failures: int = 1) -> None:
    """``connection`` returns and the broker answers its snapshot with ``failures`` errors."""
    rig.broker.fail_snapshot(connection, failures)
    rig.engine.reconnect(connection)
    rig.idle()


def test_s3_5_a_copy_offered_while_the_followers_positions_are_unknown_waits_for_them(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.broker.drop("f1")
    rig.idle()
    rig.broker.trade("F1", ES, -2)  # its owner closes while the link is down: never heard of
    unknown_return(rig, "f1")
    view = rig.engine.account_view("F1")
    assert view is not None
    assert view.positions == {ES: 2}
    assert not view.positions_confirmed
    rig.trade("LEAD", -2)  # on the unknown +2, its closing copy would take F1 to -2
    assert rig.order_qtys("F1") == [2]
    assert rig.broker_position("F1") == 0
    rig.advance(1)  # the answer: F1 is flat, so the closing leg has nothing to close
    assert rig.position("F1") == rig.broker_position("F1") == 0
    assert rig.order_qtys("F1", None) == [2]
    assert len(rig.reconciliations("F1")) == 1


def test_s3_5_a_leaders_fills_while_its_positions_are_unknown_fan_out_from_its_answer(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.broker.drop("lead")
    rig.idle()
    rig.broker.trade("LEAD", ES, -2)  # made while its link was down: flat at the broker
    unknown_return(rig, "lead")
    # seen on the engine's unknown +2 this would read 2 → 3 and add to F1
    rig.trade("LEAD", 1)
    assert rig.order_qtys("F1", None) == [2]
    rig.advance(1)
    # the answer places the fill: the leader was flat before it, so F1 is reconciled toward
    # 0 first (closed), then the fill 0 → 1 is copied
    assert rig.position("LEAD") == 1
    assert rig.position("F1") == rig.broker_position("F1") == 1
    assert [(r["kind"], r["qty"]) for r in rig.orders("F1")] == [
        ("copy", 2),
        ("reconciliation", -2),
        ("copy", 1),
    ]
    (row,) = rig.reconciliations("F1")
    assert (row["before"], row["target"], row["orders"]) == (
        '{"ESZ6": 2}',
        '{"ESZ6": 0}',
        '{"ESZ6": -2}',
    )
    view = rig.engine.group_view("g1")
    assert view is not None
    assert view.leader_positions == {ES: 1}


def test_s3_5_a_closing_copy_retry_due_while_positions_are_unknown_waits_for_them(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = one_follower(make_engine, tmp_path)
    rig.trade("LEAD", 2)
    rig.broker.reject_next("f1")
    rig.trade("LEAD", -2)  # F1's closing copy is rejected: retried in 1 s (S2.8)
    assert rig.position("F1") == 2
    rig.broker.drop("f1")
    rig.idle()
    rig.broker.trade("F1", ES, -2)  # closed by hand meanwhile, unseen
    unknown_return(rig, "f1")
    rig.advance(1)  # the retry falls due before the answer is in: it waits for it
    assert rig.position("F1") == rig.broker_position("F1") == 0
    assert [r["qty"] for r in rig.orders("F1")] == [2, -2]  # the copy and its rejection
    assert len(rig.reconciliations("F1")) == 1


def test_s3_5_offers_waiting_for_an_answer_are_skipped_when_the_connection_leaves(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = one_follower(make_engine, tmp_path)
    rig.broker.drop("f1")
    rig.idle()
    unknown_return(rig, "f1", failures=2)
    rig.trade("LEAD", 1)
    assert rig.order_qtys("F1") == []
    rig.broker.drop("f1")
    rig.idle()
    skips = rig.messages("F1", "skip")
    assert len(skips) == 1
    assert "connection f1 is disconnected" in skips[0]
    rig.engine.reconnect("f1")  # its last failure, then the answer after 1 s
    rig.idle()
    rig.advance(1)
    assert rig.position("F1") == 0  # S2.5: nothing replayed
    assert rig.order_qtys("F1", None) == []


def test_s2_1_offers_waiting_for_an_answer_are_dropped_when_the_leader_goes_down(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime)
    rig.broker.drop("f1")
    rig.idle()
    unknown_return(rig, "f1", failures=2)
    rig.trade("LEAD", 1)  # waits at F1 for its snapshot
    assert rig.order_qtys("F1") == []
    rig.engine.take_offline("lead")  # the leader goes down before the answer comes
    rig.idle()
    skips = rig.messages("F1", "skip")
    assert len(skips) == 1
    assert "leader's connection changed state meanwhile" in skips[0]
    rig.advance(3)  # the answer: nothing is copied while the leader is down (S2.1)
    assert rig.order_qtys("F1", None) == []
    assert rig.position("F1") == 0


def test_offers_waiting_for_an_answer_are_dropped_when_the_membership_ends(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = one_follower(make_engine, tmp_path)
    rig.broker.drop("f1")
    rig.idle()
    unknown_return(rig, "f1", failures=2)
    rig.trade("LEAD", 1)
    rig.engine.remove_follower("g1", "F1")
    rig.idle()
    (skip,) = rig.messages("F1", "skip")
    assert "no longer follows it" in skip
    rig.advance(3)
    assert rig.order_qtys("F1", None) == []


# --- a fill the broker withdraws (FillCorrected) --------------------------------------------------


def test_a_withdrawn_follower_fill_is_an_error_and_the_follower_is_reconciled_flatten_only(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.trade("LEAD", -2)
    closing = rig.broker.fill_ids("F1")[-1]
    rig.broker.correct_fill(closing, "busted by the exchange")  # F1 is +2 again at the broker
    rig.idle()
    (error,) = [r for r in rig.activity("F1") if r["level"] == "error"]
    assert error["kind"] == "reconciliation"
    assert f"corrected fill {closing} of F1 (busted by the exchange)" in error["message"]
    # reconciled from a fresh snapshot toward the leader's 0: closed, one record (S3.2, S3.3)
    assert rig.position("F1") == rig.broker_position("F1") == 0
    (row,) = rig.reconciliations("F1")
    assert (row["before"], row["orders"]) == ('{"ESZ6": 2}', '{"ESZ6": -2}')
    assert rig.reconciliations("LEAD") == []
    # never counted twice: the same correction again, or the fill pushed again, change nothing
    again = FillCorrected("f1", "F1", closing, "busted by the exchange")
    rig.engine.inbox("f1").push(again)
    pushed = Fill("f1", "F1", closing, "B9", None, ES, -2, D(5000), rig.clock.now(), True)
    rig.engine.inbox("f1").push(pushed)
    rig.idle()
    assert rig.position("F1") == 0
    assert len([r for r in rig.activity("F1") if r["level"] == "error"]) == 1
    assert len(rig.reconciliations("F1")) == 1


def test_a_withdrawn_leader_fill_reconciles_its_followers_toward_the_corrected_position(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = one_follower(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    (entry,) = rig.broker.fill_ids("LEAD")
    rig.broker.correct_fill(entry)  # the leader never bought: flat at the broker
    rig.idle()
    (error,) = [r for r in rig.activity("LEAD") if r["level"] == "error"]
    assert "its followers toward the corrected position" in error["message"]
    assert rig.position("LEAD") == 0  # its book refreshed from the snapshot
    assert rig.position("F1") == rig.broker_position("F1") == 0
    (row,) = rig.reconciliations("F1")
    assert (row["target"], row["orders"]) == ('{"ESZ6": 0}', '{"ESZ6": -2}')
    view = rig.engine.group_view("g1")
    assert view is not None
    assert view.leader_positions == {}
    rig.trade("LEAD", 1)  # copying goes on from the corrected position
    assert rig.position("F1") == 1


def test_a_fill_withdrawn_while_its_connection_is_down_is_settled_by_the_return(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = one_follower(make_engine, tmp_path)
    rig.trade("LEAD", 2)
    rig.broker.drop("f1")
    rig.idle()
    rig.engine.inbox("f1").push(FillCorrected("f1", "F1", "X2", "busted"))
    rig.idle()
    assert len([r for r in rig.activity("F1") if r["level"] == "error"]) == 1
    rig.engine.reconnect("f1")
    rig.idle()
    assert rig.position("F1") == 2  # what the broker says; t(2) = 2
    assert len(rig.reconciliations("F1")) == 1
