"""S10.5 reports read from a real store the real engine wrote: a follower's trading day — copies,
fills, skips and rejections, copy latency from the leader fill's arrival to the copy sent and
filled, slippage in ticks against the leader's price — bounded by the S5.8 resets."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.reports import FollowerDay, Latency, NotATradingDay, trading_day
from engine.storage.reports import Reports
from tests.conftest import ES, MakeEngine, Rig

D = Decimal


def report(rig: Rig, **kw: object) -> dict[str, FollowerDay]:
    rig.idle()
    day = kw.pop("day", trading_day(rig.clock.now()))
    days = Reports(rig.store).day(
        day,  # type: ignore[arg-type]
        rig.engine.contracts.tick_size,
        **kw,  # type: ignore[arg-type]
    )
    return {d.account: d for d in days}


def a_day(rig: Rig) -> None:
    """LEAD buys 2 at 5000; F1's copy is held and fills 0.75 s later at 5000.75 (3 ticks
    adverse), F2's at once; LEAD sells 2 at 5000.75, both copies fill there; F2's broker then
    refuses a copy of LEAD's next buy."""
    rig.price(ES, 5000)
    rig.broker.hold("f1")
    rig.trade("LEAD", 2)
    rig.advance(0.5)
    rig.price(ES, D("5000.75"))
    rig.advance(0.25)
    rig.broker.release("f1")
    rig.idle()
    rig.trade("LEAD", -2)
    rig.broker.reject_next("f2")
    rig.trade("LEAD", 1)


def test_s10_5_a_followers_day_from_the_store(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    a_day(rig)
    days = report(rig)
    assert set(days) == {"F1", "F2"}  # the leader copies nothing
    f1, f2 = days["F1"], days["F2"]
    assert (f1.copies, f1.filled, f1.skips, f1.rejections) == (3, 3, 0, 0)
    assert (f2.copies, f2.filled, f2.skips, f2.rejections) == (3, 2, 0, 1)
    zero, late = timedelta(0), timedelta(seconds=0.75)
    assert f1.to_order == Latency(3, zero, zero, zero)
    assert f1.to_fill == Latency(3, zero, late, late)
    assert f2.to_fill == Latency(2, zero, zero, zero)
    # F1: +3 ticks on 2 contracts, 0 on 2, 0 on 1: 6/5 per contract; worst 3.
    assert (f1.slippage.fills, f1.slippage.contracts) == (3, 5)
    assert (f1.slippage.mean, f1.slippage.worst) == (D("1.2"), D(3))
    assert (f2.slippage.mean, f2.slippage.worst) == (D(0), D(0))
    assert (f1.drift_episodes, f1.missed_copies) == (0, 0)


def test_s10_5_a_report_keeps_to_its_trading_day_and_account(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(tmp_path)
    a_day(rig)
    first = trading_day(rig.clock.now())
    rig.engine.advance_to(rig.clock.now().replace(hour=23, minute=0, second=1))  # past 17:00 CT
    rig.trade("LEAD", -1)
    second = trading_day(rig.clock.now())
    assert second == first + timedelta(days=1)
    assert report(rig, day=first)["F1"].copies == 3
    later = report(rig, day=second)
    assert list(later) == ["F1"]  # F2 is flat already (its copy of the buy was refused)
    assert (later["F1"].copies, later["F1"].rejections) == (1, 0)
    only = report(rig, day=first, account="F2")
    assert list(only) == ["F2"] and only["F2"].rejections == 1
    # A follower with nothing that day still shows, all zero; the day before has nothing.
    quiet = report(rig, day=first - timedelta(days=1), followers=["F1"])
    assert quiet["F1"].copies == 0 and quiet["F1"].to_fill == Latency(0, None, None, None)
    assert quiet["F1"].slippage.mean is None
    with pytest.raises(NotATradingDay):
        report(rig, day=first + timedelta(days=4))  # a Saturday


def test_s10_5_skips_and_copies_whose_leader_fill_is_gone(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(tmp_path)
    rig.broker.drop("f1")  # F1 paused: its copy is skipped (S2.4)
    rig.idle()
    rig.trade("LEAD", 1)
    rig.store.write(lambda conn: conn.execute("DELETE FROM fills WHERE account = 'LEAD'"))
    days = report(rig)
    assert days["F1"].skips == 1 and days["F1"].copies == 0
    f2 = days["F2"]
    assert (f2.copies, f2.filled, f2.to_order.count, f2.slippage.fills) == (1, 1, 0, 0)
