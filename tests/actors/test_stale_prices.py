"""Stale prices (S10.3) through the real engine: a held symbol without a price for
``stale_prices_after`` (30 s by default) while the account's connection is connected, or whose
prices the broker says it does not give, is one ``stale_prices`` warning per outage, and an
``info`` entry when prices are back; ticks arm no timer (decision 0003)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from actors.stale_prices import PricesDue
from brokers.base import PricesRestored, PricesUnavailable
from engine.host.address import Address
from tests.conftest import ES, NQ, MakeEngine, Rig


def solo(make_engine: MakeEngine, tmp_path: Path, runtime: str = "deterministic") -> Rig:
    return make_engine(
        tmp_path,
        runtime,
        connections=("s", "f"),
        accounts=(("SOLO", "s"), ("FLAT", "f")),
        groups=(),
    )


def stale(rig: Rig, account: str) -> list[tuple[str, str]]:
    return [(r["level"], r["message"]) for r in rig.activity(account, "stale_prices")]


def prices_timers(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The instants of every stale-prices timer armed from now on, filled in as they are."""
    timers = rig.engine.services.timers
    armed: list[datetime] = []
    schedule: Callable[[datetime, Address, object], None] = timers.schedule

    def looking(when: datetime, to: Address, message: object) -> None:
        if isinstance(message, PricesDue):
            armed.append(when)
        schedule(when, to, message)

    monkeypatch.setattr(timers, "schedule", looking)
    return armed


def blind(rig: Rig, account: str) -> tuple[str, ...]:
    view = rig.engine.account_view(account)
    assert view is not None
    return view.stale_prices


def test_s10_3_a_held_symbol_without_a_price_for_30_s_is_one_warning_per_outage(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = solo(make_engine, tmp_path, runtime)
    rig.trade("SOLO", 1)  # its last price came at the start
    rig.trade("FLAT", 1)
    rig.trade("FLAT", -1)  # flat again: nothing to see
    rig.advance(29)
    assert stale(rig, "SOLO") == []
    rig.advance(1)
    assert stale(rig, "SOLO") == [
        (
            "warning",
            f"no price for {ES} for 30 s while connection s is connected: the risk guard "
            "cannot see this account's P&L there",
        )
    ]
    assert blind(rig, "SOLO") == (ES,)
    rig.advance(7200)
    assert len(stale(rig, "SOLO")) == 1  # one per outage, however long
    assert stale(rig, "FLAT") == []
    rig.price(ES, 5001)
    assert stale(rig, "SOLO")[-1] == (
        "info",
        f"prices for {ES} are back: the risk guard sees this account's P&L there again",
    )
    assert blind(rig, "SOLO") == ()
    rig.advance(20)
    rig.price(ES, 5001)  # the same price again is a price all the same
    rig.advance(29)
    assert len(stale(rig, "SOLO")) == 2
    rig.advance(1)  # 30 s after the last one: a new outage
    assert [level for level, _ in stale(rig, "SOLO")] == ["warning", "info", "warning"]


def test_s10_3_each_symbol_is_timed_from_its_own_last_price(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = solo(make_engine, tmp_path)
    rig.trade("SOLO", 1, ES)
    rig.advance(10)
    rig.price(NQ, 20001)
    rig.trade("SOLO", 1, NQ)
    rig.advance(20)  # ES: 30 s without a price; NQ: 20 s
    assert [m for _, m in stale(rig, "SOLO")] == [
        f"no price for {ES} for 30 s while connection s is connected: the risk guard cannot "
        "see this account's P&L there"
    ]
    rig.advance(10)
    assert len(stale(rig, "SOLO")) == 2
    assert blind(rig, "SOLO") == (ES, NQ)


def test_s10_3_a_position_opened_where_prices_stopped_is_warned_at_once(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = solo(make_engine, tmp_path)
    rig.advance(60)
    assert stale(rig, "SOLO") == []  # nothing held
    rig.trade("SOLO", -1)
    assert [m.split(":")[0] for _, m in stale(rig, "SOLO")] == [
        f"no price for {ES} for 60 s while connection s is connected"
    ]


def test_s10_3_no_warning_while_the_connection_is_not_connected(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = solo(make_engine, tmp_path)
    rig.trade("SOLO", 1)
    rig.advance(10)
    rig.broker.drop("s")
    rig.idle()
    rig.advance(600)
    assert stale(rig, "SOLO") == []
    rig.engine.reconnect("s")  # the broker's subscription gives the last price again
    rig.idle()
    rig.advance(29)
    assert stale(rig, "SOLO") == []
    rig.advance(1)
    assert len(stale(rig, "SOLO")) == 1


def test_s10_3_ticks_arm_no_timer(
    make_engine: MakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = solo(make_engine, tmp_path)
    rig.trade("SOLO", 1)  # arms the one timer
    armed = prices_timers(rig, monkeypatch)
    start = rig.clock.now()
    rig.advance(10)
    for tick in range(100):
        rig.broker.set_price(ES, 5000 + tick % 7)
    rig.idle()
    assert armed == []  # the market noted each price's instant; nothing else happened
    rig.advance(20)  # the timer finds a price 20 s old and arms itself once more
    assert [(at - start).total_seconds() for at in armed] == [40]
    assert stale(rig, "SOLO") == []
    rig.advance(10)
    assert len(stale(rig, "SOLO")) == 1


def test_s10_3_the_broker_saying_prices_are_unavailable_and_their_silence_are_one_outage(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = solo(make_engine, tmp_path)
    rig.trade("SOLO", 1)
    rig.engine.inbox("s").push(PricesUnavailable("s", ES, "subscription refused"))
    rig.idle()
    rig.advance(120)  # and no price comes either: still the same outage
    assert [level for level, _ in stale(rig, "SOLO")] == ["warning"]
    assert "(subscription refused)" in stale(rig, "SOLO")[0][1]
    rig.price(ES, 5002)  # a price ends it as PricesRestored would
    assert [level for level, _ in stale(rig, "SOLO")] == ["warning", "info"]
    rig.engine.inbox("s").push(PricesRestored("s", ES))
    rig.idle()
    assert len(stale(rig, "SOLO")) == 2  # nothing more to end


# --- prices the broker says it does not give ---------------------------------------------------


def test_s10_3_no_prices_for_a_held_symbol_is_one_stale_prices_warning_per_outage(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(
        tmp_path,
        connections=("c", "other"),
        accounts=(("HOLDS", "c"), ("FLAT", "c"), ("ELSEWHERE", "other")),
        groups=(),
    )
    rig.trade("HOLDS", 1)
    rig.trade("ELSEWHERE", 1)
    inbox = rig.engine.inbox("c")

    def stale(account: str) -> list[tuple[str, str]]:
        return [(r["level"], r["message"]) for r in rig.activity(account, "stale_prices")]

    inbox.push(PricesUnavailable("c", ES, "subscription refused"))
    inbox.push(PricesUnavailable("c", ES, "subscription refused"))  # the same outage
    rig.idle()
    assert stale("HOLDS") == [
        (
            "warning",
            f"no prices for {ES} (subscription refused): the risk guard cannot see this "
            "account's P&L there",
        )
    ]
    assert stale("FLAT") == []
    assert stale("ELSEWHERE") == []  # another login's prices
    rig.trade("FLAT", -1)  # opens while the prices are still unavailable: its entry then
    rig.trade("FLAT", 1)
    rig.trade("FLAT", -1)
    assert [level for level, _ in stale("FLAT")] == ["warning"]
    inbox.push(PricesRestored("c", ES))
    rig.idle()
    assert [level for level, _ in stale("HOLDS")] == ["warning", "info"]
    assert "prices for ESZ6 are back" in stale("FLAT")[-1][1]
    inbox.push(PricesUnavailable("c", ES, "feed lost"))  # a new outage
    rig.idle()
    assert [level for level, _ in stale("HOLDS")] == ["warning", "info", "warning"]
    assert "(feed lost)" in stale("HOLDS")[-1][1]


def test_s10_3_a_position_opened_and_closed_at_every_fill_arms_no_timer_each_time(
    make_engine: MakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fan-out's hot path: a follower that goes long and flat at every fill keeps the one
    timer it armed (it checks again when it fires), and is still warned when prices stop."""
    rig = solo(make_engine, tmp_path)
    rig.trade("SOLO", 1)  # arms the one timer
    armed = prices_timers(rig, monkeypatch)
    for _ in range(10):
        rig.advance(1)
        rig.broker.set_price(ES, 5000)
        rig.trade("SOLO", -1)
        rig.trade("SOLO", 1)
    assert armed == []
    rig.advance(60)
    assert len(stale(rig, "SOLO")) == 1
