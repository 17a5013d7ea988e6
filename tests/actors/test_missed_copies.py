"""Missed copies (S10.3) through the real engine: a market order the engine sent that the broker
leaves unfilled, unrejected and uncancelled past ``copy_fill_timeout`` (5 s by default) is one
``missed_copy`` warning; one timer per account; an order carried over a restart is judged once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from actors.missed_copies import MissedCopiesDue
from engine.core.topology import GroupConfig
from engine.host.address import Address
from tests.conftest import ES, MakeEngine, Rig, member

F1 = ("account", "F1")


def followers(make_engine: MakeEngine, tmp_path: Path, runtime: str = "deterministic") -> Rig:
    return make_engine(
        tmp_path,
        runtime,
        connections=("lead", "f1", "f2"),
        accounts=(("LEAD", "lead"), ("F1", "f1"), ("F2", "f2")),
        groups=(GroupConfig("g1", "LEAD", [member("F1"), member("F2")]),),
    )


def missed(rig: Rig, account: str) -> list[str]:
    return [r["message"] for r in rig.activity(account, "missed_copy")]


def copy_ids(rig: Rig, account: str) -> list[str]:
    return [r["client_order_id"] for r in rig.orders(account, "copy")]


def count_timers(rig: Rig, monkeypatch: pytest.MonkeyPatch, kind: type) -> list[datetime]:
    """The instants at which timers of ``kind`` are armed for F1 from now on (the timers
    still fire: this only looks at them)."""
    timers = rig.engine.services.timers
    armed: list[datetime] = []
    schedule: Callable[[datetime, Address, object], None] = timers.schedule

    def looking(when: datetime, to: Address, message: object) -> None:
        if to == F1 and isinstance(message, kind):
            armed.append(when)
        schedule(when, to, message)

    monkeypatch.setattr(timers, "schedule", looking)
    return armed


def test_s10_3_a_copy_unanswered_past_the_timeout_is_one_missed_copy(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = followers(make_engine, tmp_path, runtime)
    rig.broker.hold("f1")
    rig.trade("LEAD", 1)
    (coid,) = copy_ids(rig, "F1")
    rig.advance(4.9)
    assert missed(rig, "F1") == []
    rig.advance(0.1)  # copy_fill_timeout has elapsed
    (entry,) = rig.activity("F1", "missed_copy")
    assert entry["level"] == "warning"
    assert entry["fill"] == "LEAD:X1"  # the leader fill it copies, as its copy's entries
    assert entry["message"] == (
        f"order {coid} ({ES} +1 unfilled, for leader fill LEAD:X1) sent to F1 at 09:00:00 is "
        "not filled, rejected or cancelled after 5 s: look at it at the broker"
    )
    assert "copy" not in entry["message"].lower()  # counted as what it is (SCENARIOS activity)
    view = rig.engine.account_view("F1")
    assert view is not None
    assert view.missed_copies == (coid,)
    rig.advance(600)
    assert len(missed(rig, "F1")) == 1  # once, however long it stays unanswered
    assert missed(rig, "F2") == []  # filled at once
    rig.broker.release("f1")
    rig.idle()
    view = rig.engine.account_view("F1")
    assert view is not None
    assert view.missed_copies == ()
    assert rig.position("F1") == 1


def test_s10_3_an_order_filled_rejected_or_cancelled_in_time_is_not_missed(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = followers(make_engine, tmp_path)
    rig.broker.reject_next("f1")
    rig.trade("LEAD", 1)  # F1: rejected (an opening copy: not retried); F2: filled
    rig.broker.hold("f2")
    rig.trade("LEAD", 1)  # F2's copy held ...
    rig.advance(2)
    rig.engine.flatten_account("F2")  # ... and cancelled by the flatten, whose liquidation
    rig.idle()  # is held too: S5.6 has its own retries, it is no missed copy
    rig.advance(60)
    assert missed(rig, "F1") == []
    assert missed(rig, "F2") == []
    assert [r["status"] for r in rig.orders("F2", "liquidation")] == ["sent"]


def test_s10_3_an_order_the_gate_refuses_or_that_is_never_sent_is_not_missed(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = followers(make_engine, tmp_path)
    rig.engine.lock("F1")  # its gate refuses the copy: nothing reaches the broker
    rig.idle()
    rig.broker.drop("f2")  # F2 is skipped: paused
    rig.idle()
    rig.trade("LEAD", 1)
    rig.advance(30)
    assert missed(rig, "F1") == []
    assert missed(rig, "F2") == []


def test_s10_3_one_timer_per_account_armed_for_the_oldest_unanswered_order(
    make_engine: MakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = followers(make_engine, tmp_path)
    start = rig.clock.now()
    armed = count_timers(rig, monkeypatch, MissedCopiesDue)
    rig.broker.hold("f1")
    for _ in range(3):  # copies sent at 0, 1 and 2 s
        rig.trade("LEAD", 1)
        rig.advance(1)
    assert [(at - start).total_seconds() for at in armed] == [5]
    rig.advance(2)  # 5 s: the first is judged, the timer armed for the next
    assert len(missed(rig, "F1")) == 1
    assert [(at - start).total_seconds() for at in armed] == [5, 6]
    rig.broker.release("f1")  # the others are answered before their time
    rig.idle()
    rig.advance(30)
    assert len(missed(rig, "F1")) == 1
    # The armed timer found nothing left to judge and armed no other.
    assert [(at - start).total_seconds() for at in armed] == [5, 6]


def test_s10_3_an_order_unanswered_across_a_restart_is_judged_once(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """S2.6 asks the broker about each order sent before the stop: one still working is judged
    at its own time; one a missed_copy entry named before the stop is not judged again."""
    rig = followers(make_engine, tmp_path)
    rig.broker.hold("f2")
    rig.trade("LEAD", 1)
    rig.advance(6)
    assert len(missed(rig, "F2")) == 1  # judged before the stop
    rig.broker.hold("f1")
    rig.trade("LEAD", 1)  # F1's copy of X3 held (F2's too)
    rig.advance(2)
    rig.restart()
    rig.advance(2)
    assert missed(rig, "F1") == []
    rig.advance(1)  # 5 s after F1's copy was sent
    (entry,) = missed(rig, "F1")
    assert "for leader fill LEAD:X3) sent to F1 at 09:00:06 before the engine last started" in (
        entry
    )
    rig.advance(60)
    assert len(missed(rig, "F1")) == 1
    f2 = missed(rig, "F2")
    assert len(f2) == 2  # its copy of X3 is judged after the start, its copy of X1 is not again
    assert sum("LEAD:X1" in m for m in f2) == 1
    rig.broker.release("f1")
    rig.broker.release("f2")
    rig.idle()
    assert rig.position("F1") == 2
    assert rig.position("F2") == 2
