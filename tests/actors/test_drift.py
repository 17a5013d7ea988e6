"""A follower's drift watch (``actors/drift.py``) through the real engine: episodes (S10.1),
what ``on_drift = "reduce"`` sends (S10.2), when a follower is watched, and the one timer."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from actors.messages.account import DriftDue
from engine.core.topology import GroupConfig
from engine.domain.watching import OnDrift
from tests.conftest import ES, MES, MakeEngine, Rig, member

D = Decimal


def follower(
    make_engine: MakeEngine,
    tmp_path: Path,
    runtime: str = "deterministic",
    on_drift: OnDrift = OnDrift.ALERT,
    **terms: object,
) -> Rig:
    rig = make_engine(
        tmp_path,
        runtime,
        connections=("lead", "f1"),
        accounts=(("LEAD", "lead"), ("F1", "f1")),
        groups=(GroupConfig("g1", "LEAD", [member("F1", **terms)], on_drift),),  # type: ignore[arg-type]
    )
    rig.price(MES, 5000)
    return rig


def drift(rig: Rig, account: str = "F1") -> dict[str, int]:
    rig.idle()
    view = rig.engine.account_view(account)
    assert view is not None
    return dict(view.drift)


def drift_timers(rig: Rig) -> list[DriftDue]:
    """The drift watch's timers still queued (the queue's heap, read as it stands)."""
    heap = rig.engine.runtime.services.timers._heap
    return [entry[3] for entry in heap if isinstance(entry[3], DriftDue)]


def test_s10_1_an_episode_opens_exactly_when_the_grace_ends(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = follower(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 1)
    rig.trade("F1", 1)  # its owner buys one more at its broker
    rig.advance(4.999)
    assert drift(rig) == {}
    assert rig.messages("F1", "drift") == []
    rig.advance(0.001)
    assert drift(rig) == {ES: 1}
    (entry,) = rig.messages("F1", "drift")
    assert "holds +2" in entry and "expected +1" in entry and "leader holds +1 ESZ6" in entry
    rig.trade("F1", -1)
    assert drift(rig) == {}
    assert rig.messages("F1", "drift_cleared") == ["F1 no longer drifts in ESZ6"]


def test_s10_1_ratio_max_qty_and_symbol_map_give_the_expected_position(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """expected = t(L) with the membership's terms (S2.2, S2.3), in the mapped symbol."""
    rig = follower(make_engine, tmp_path, ratio=2, max_qty=3, symbol_map={"ES": "MES"})
    rig.trade("LEAD", 2)
    assert rig.position("F1", MES) == 3  # round(2·2) capped at 3
    rig.advance(60)
    assert drift(rig) == {}
    rig.trade("F1", -1, MES)
    rig.advance(5)
    assert drift(rig) == {MES: -1}
    assert "expected +3" in rig.messages("F1", "drift")[0]


def test_s10_1_an_open_episode_is_kept_in_the_store(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = follower(make_engine, tmp_path)
    rig.trade("LEAD", 1)
    rig.trade("F1", 1)
    rig.advance(5)
    (row,) = rig.rows("SELECT drift FROM account_state WHERE account = 'F1'")
    assert json.loads(row["drift"]) == {ES: 1}
    rig.trade("F1", -1)
    (row,) = rig.rows("SELECT drift FROM account_state WHERE account = 'F1'")
    assert row["drift"] == ""


def test_s10_1_a_restart_keeps_the_episode_and_clears_it_when_the_drift_is_gone(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """The drift went while the engine was down: the restart clears the episode (one
    drift_cleared), never writes a second drift entry."""
    rig = follower(make_engine, tmp_path)
    rig.trade("LEAD", 1)
    rig.trade("F1", -1)  # F1 flat: 1 short
    rig.advance(5)
    assert drift(rig) == {ES: -1}
    rig.engine.stop()
    rig.broker.trade("F1", ES, 1)  # its owner buys it back while the engine is down
    rig.restart()
    rig.advance(60)
    assert drift(rig) == {}
    assert len(rig.messages("F1", "drift")) == 1
    assert rig.messages("F1", "drift_cleared") == ["F1 no longer drifts in ESZ6"]


def test_s10_1_the_periodic_check_runs_only_while_a_drift_is_pending_or_open(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """A quiet follower has no drift timer; one drifting has exactly one queued at a time."""
    rig = follower(make_engine, tmp_path)
    rig.trade("LEAD", 1)
    rig.advance(10)  # its copy's copy_fill_timeout has passed: nothing is left to time
    assert drift_timers(rig) == []
    rig.trade("F1", 1)
    assert len(drift_timers(rig)) == 1  # the grace's end
    rig.advance(5)
    assert len(drift_timers(rig)) == 1  # the next check, every drift_check
    rig.advance(3600)
    assert len(drift_timers(rig)) == 1
    rig.trade("F1", -1)
    rig.advance(10)
    assert drift_timers(rig) == []


def test_s10_1_an_unfilled_copy_counts_as_done_until_copy_fill_timeout(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = follower(make_engine, tmp_path)
    rig.broker.hold("f1")
    rig.trade("LEAD", 2)
    rig.advance(9.9)
    assert drift(rig) == {}
    rig.advance(0.1)  # copy_fill_timeout (5 s), then drift_grace (5 s)
    assert drift(rig) == {ES: -2}
    rig.broker.release("f1")
    rig.idle()
    assert drift(rig) == {}


def test_s10_1_a_follower_that_left_its_group_ends_its_episode(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = follower(make_engine, tmp_path)
    rig.trade("LEAD", 1)
    rig.trade("F1", 1)
    rig.advance(5)
    assert drift(rig) == {ES: 1}
    rig.engine.remove_follower("g1", "F1")
    assert drift(rig) == {}
    (cleared,) = rig.messages("F1", "drift_cleared")
    assert cleared == "F1 no longer drifts in ESZ6: it no longer follows a group"


def test_s10_1_a_flatten_in_flight_is_not_watched(make_engine: MakeEngine, tmp_path: Path) -> None:
    rig = follower(make_engine, tmp_path)
    rig.trade("LEAD", 1)
    rig.broker.hold("f1")
    rig.engine.flatten_account("F1")  # its liquidation held: the flatten stays in flight
    rig.advance(60)
    assert drift(rig) == {}
    assert rig.messages("F1", "drift") == []


def test_s10_2_reduce_sends_one_flatten_only_order_per_episode(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = follower(make_engine, tmp_path, runtime, on_drift=OnDrift.REDUCE)
    rig.trade("LEAD", 2)
    rig.trade("F1", 3)  # +5 against an expected +2
    rig.advance(5)
    assert rig.position("F1") == 2
    assert rig.order_qtys("F1", "drift reduction") == [-3]
    (record,) = rig.reconciliations("F1")
    assert json.loads(record["before"]) == {ES: 5}
    assert json.loads(record["target"]) == {ES: 2}
    assert json.loads(record["orders"]) == {ES: -3}
    assert drift(rig) == {}
    assert len(rig.messages("F1", "drift_cleared")) == 1


def test_s10_2_reduce_never_takes_a_follower_through_zero(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """The leader went short while F1 is long by hand: F1 is closed, never opened short
    (S3.2); the rest of the drift stays open and is not reduced again."""
    rig = follower(make_engine, tmp_path, on_drift=OnDrift.REDUCE)
    rig.trade("LEAD", -1)
    rig.trade("F1", 3)  # +2 against an expected -1
    rig.advance(5)
    assert rig.position("F1") == 0
    assert rig.order_qtys("F1", "drift reduction") == [-2]
    assert drift(rig) == {ES: 1}
    rig.advance(3600)
    assert rig.order_qtys("F1", "drift reduction") == [-2]


def test_s10_2_on_drift_changed_applies_to_the_next_episode(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = follower(make_engine, tmp_path)
    rig.trade("LEAD", 1)
    rig.trade("F1", 1)
    rig.advance(5)
    assert rig.order_qtys("F1", "drift reduction") == []
    rig.engine.set_on_drift("g1", OnDrift.REDUCE)
    rig.advance(60)
    assert rig.order_qtys("F1", "drift reduction") == []  # the open episode is not reduced
    rig.trade("F1", -1)
    rig.trade("F1", 1)
    rig.advance(5)
    assert rig.order_qtys("F1", "drift reduction") == [-1]
    assert rig.rows("SELECT on_drift FROM groups")[0]["on_drift"] == "reduce"


def test_s10_2_a_rejected_reduction_is_retried_as_a_closing_order(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = follower(make_engine, tmp_path, on_drift=OnDrift.REDUCE)
    rig.trade("LEAD", 1)
    rig.trade("LEAD", -1)
    rig.trade("F1", 1)
    rig.broker.reject_next("f1")
    rig.advance(5)
    assert rig.position("F1") == 1
    assert drift(rig) == {ES: 1}
    rig.advance(1)  # S2.8 / S5.6: 1 s later
    assert rig.position("F1") == 0
    rows = rig.orders("F1", "drift reduction")
    assert [r["qty"] for r in rows] == [-1, -1]
    assert drift(rig) == {}


def test_s10_1_checks_take_no_time_of_a_quiet_replay(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """Three days of a follower in line with its leader queue no drift timer at all."""
    rig = follower(make_engine, tmp_path)
    rig.trade("LEAD", 1)
    rig.advance(timedelta(days=3).total_seconds())
    assert drift_timers(rig) == []
    assert drift(rig) == {}


def test_s10_1_new_terms_move_the_expected_position_at_once(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """The expected position is the membership's terms as they stand: a ratio changed while
    the follower is in line is a drift from then (what it holds was right under the old)."""
    rig = follower(make_engine, tmp_path)
    rig.trade("LEAD", 2)
    rig.advance(60)
    assert rig.position("F1") == 2
    assert drift(rig) == {}
    rig.engine.update_follower("g1", member("F1", ratio=2))
    rig.idle()  # the group has told F1 its new terms
    rig.advance(5)
    assert rig.position("F1") == 2  # new terms trade nothing by themselves
    assert drift(rig) == {ES: -2}
    assert "expected +4" in rig.messages("F1", "drift")[0]
