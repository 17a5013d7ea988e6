"""What an alert is (S10.4), without I/O: its title and body, which pass ``kinds`` and
``min_level``, the summary of what a full rate window held back, and the window itself. The
entries the engine writes for a supervisor hold and a connection's moves are read from the real
actors in tests/engine/live/test_alerts.py and test_connection_watch.py."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.domain.activity import ActivityEntry, Kind, Level
from engine.domain.alerting import (
    ALERT_KINDS,
    DEFAULT_KINDS,
    Alert,
    AlertFilter,
    RateWindow,
    alert_of,
    connection_move,
    kinds_unknown,
    summary,
    worse,
)

AT = datetime(2026, 1, 6, 15, 0, 7, tzinfo=UTC)


def test_title_and_body_say_level_kind_where_and_when() -> None:
    alert = Alert(AT, Level.WARNING, "drift", "F1 drifts +1 ESZ6", account="F1", connection="f1")
    assert alert.title == "[warning] drift F1"
    assert alert.body == "F1 drifts +1 ESZ6\naccount F1 · connection f1 · 2026-01-06T15:00:07+00:00"
    bare = Alert(AT, Level.ERROR, "connection_down", "away", connection="f1")
    assert bare.title == "[error] connection_down f1"


def test_a_restart_entry_is_its_own_kind_unless_it_holds_the_account() -> None:
    restart = ActivityEntry(AT, Level.ERROR, Kind.RESTART, "risk actor F1 failed; restarted", "F1")
    assert alert_of(restart).kind == "restart"
    held = ActivityEntry(
        AT,
        Level.ERROR,
        Kind.RESTART,
        "risk actor F1 restarted 6 times in 30 s (limit 5): account held in LIQUIDATE_ONLY"
        " (no new exposure) until unlocked",
        "F1",
    )
    assert alert_of(held).kind == "supervisor_hold"


def test_a_connection_entry_that_moves_nothing_is_no_move() -> None:
    still = ActivityEntry(
        AT,
        Level.INFO,
        Kind.STATE_CHANGE,
        "connection f1: reconnect while connected changes nothing",
        connection="f1",
    )
    assert connection_move(still) is None
    lock = ActivityEntry(AT, Level.WARNING, Kind.LOCK, "account locked manually", "F1")
    assert connection_move(lock) is None


def test_the_filter_takes_chosen_kinds_at_or_above_the_level() -> None:
    chosen = AlertFilter(frozenset({"drift", "connection_down"}), Level.WARNING)
    assert chosen.passes(Alert(AT, Level.WARNING, "drift", "x"))
    assert chosen.passes(Alert(AT, Level.ERROR, "connection_down", "x"))
    assert not chosen.passes(Alert(AT, Level.INFO, "drift", "x"))
    assert not chosen.passes(Alert(AT, Level.ERROR, "breach", "x"))


def test_the_default_kinds_are_known_and_unknown_ones_are_named() -> None:
    assert kinds_unknown(DEFAULT_KINDS) == []
    assert set(DEFAULT_KINDS) <= set(ALERT_KINDS)
    assert kinds_unknown(["drift", "drfit", "lock"]) == ["drfit"]


def test_a_summary_counts_each_kind_most_frequent_first_at_the_worst_level() -> None:
    held = {"missed_copy": 2, "drift": 5}
    alert = summary(held, worse(Level.WARNING, Level.ERROR), AT)
    assert alert.message.startswith("7 more alerts: 5 drift, 2 missed_copy")
    assert alert.level is Level.ERROR
    assert summary({"drift": 1}, Level.WARNING, AT).message.startswith("1 more alert: 1 drift")


def test_the_rate_window_slides() -> None:
    window = RateWindow(2, period=60.0)
    assert window.allows(0.0)
    window.take(0.0)
    window.take(10.0)
    assert not window.allows(59.9)
    assert window.free_at(30.0) == 60.0
    assert window.allows(60.0)  # the first has left the minute
    window.take(60.0)
    assert window.free_at(65.0) == 70.0
