"""S9.4 session close and S9.5 blackouts: ``flatten_at`` parsed and placed in America/Chicago
time across the daylight-saving switches, the close missed while the engine was down, and the
blackout intervals, their refusal text and the instants a timer is armed for."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from engine.domain.sessions import (
    Blackout,
    BlackoutMode,
    active_blackout,
    blackout_text,
    next_blackout_instant,
    next_session_close,
    parse_flatten_at,
    session_close_missed,
)

CLOSE = time(15, 10)
CDT = timezone(timedelta(hours=-5))
CST = timezone(timedelta(hours=-6))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- S9.4 flatten_at ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("15:10", time(15, 10)),
        ("00:00", time(0, 0)),
        ("09:30", time(9, 30)),
        ("16:59", time(16, 59)),
    ],
)
def test_s9_4_flatten_at_parses(text: str, parsed: time) -> None:
    assert parse_flatten_at(text) == parsed


@pytest.mark.parametrize(
    "text",
    ["17:00", "17:30", "23:59", "24:00", "9:30", "15:1", "15:60", "3pm", "", " 15:10", "1510"],
)
def test_s9_4_flatten_at_rejects_anything_but_hh_mm_before_17(text: str) -> None:
    with pytest.raises(ValueError, match="flatten_at must be") as caught:
        parse_flatten_at(text)
    assert str(caught.value) == (
        f'flatten_at must be a time of day "HH:MM" before 17:00, got "{text}"'
    )


def test_s9_4_flatten_at_rejects_a_value_that_is_not_text() -> None:
    with pytest.raises(ValueError, match=r"before 17:00, got 1510"):
        parse_flatten_at(1510)  # type: ignore[arg-type]


def test_s9_4_next_close_later_today_or_the_next_trading_day() -> None:
    # Wednesday 2026-01-14, winter (CST, UTC−6): 15:10 CT is 21:10 UTC
    assert next_session_close(utc(2026, 1, 14, 15, 0), CLOSE) == utc(2026, 1, 14, 21, 10)
    # strictly after: at the close itself, the next one is Thursday's
    assert next_session_close(utc(2026, 1, 14, 21, 10), CLOSE) == utc(2026, 1, 15, 21, 10)
    assert next_session_close(utc(2026, 1, 14, 21, 9, 59), CLOSE) == utc(2026, 1, 14, 21, 10)


def test_s9_4_no_close_on_the_weekend() -> None:
    # after Friday's close: Monday's
    assert next_session_close(utc(2026, 1, 16, 21, 11), CLOSE) == utc(2026, 1, 19, 21, 10)
    # Saturday and Sunday (Sunday evening's session closes on Monday)
    assert next_session_close(utc(2026, 1, 17, 12), CLOSE) == utc(2026, 1, 19, 21, 10)
    assert next_session_close(utc(2026, 1, 18, 23, 30), CLOSE) == utc(2026, 1, 19, 21, 10)


def test_s9_4_next_close_across_the_march_switch() -> None:
    """Daylight saving starts Sunday 2026-03-08: Friday's 15:10 CST is 21:10 UTC, Monday's
    15:10 CDT is 20:10 UTC."""
    friday = next_session_close(utc(2026, 3, 6, 12), CLOSE)
    assert friday == utc(2026, 3, 6, 21, 10)
    monday = next_session_close(friday, CLOSE)
    assert monday == utc(2026, 3, 9, 20, 10)
    assert monday.astimezone(CDT).time() == CLOSE
    assert monday - friday == timedelta(days=3, hours=-1)


def test_s9_4_next_close_across_the_november_switch() -> None:
    """Daylight saving ends Sunday 2026-11-01: Friday's 15:10 CDT is 20:10 UTC, Monday's
    15:10 CST is 21:10 UTC."""
    friday = next_session_close(utc(2026, 10, 30, 12), CLOSE)
    assert friday == utc(2026, 10, 30, 20, 10)
    monday = next_session_close(friday, CLOSE)
    assert monday == utc(2026, 11, 2, 21, 10)
    assert monday.astimezone(CST).time() == CLOSE


def test_s9_4_next_close_accepts_any_offset_and_answers_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    # Thursday 2026-07-16 05:00 in Tokyo is Wednesday 15:00 CDT
    close = next_session_close(datetime(2026, 7, 16, 5, 0, tzinfo=tokyo), CLOSE)
    assert close == utc(2026, 7, 15, 20, 10)
    assert close.tzinfo is UTC


def test_s9_4_next_close_needs_an_offset() -> None:
    with pytest.raises(ValueError, match="after must carry a UTC offset"):
        next_session_close(datetime(2026, 7, 15, 12, 0), CLOSE)  # noqa: DTZ001


@pytest.mark.parametrize(
    ("now", "missed"),
    [
        # Wednesday 2026-07-15, summer: the close is 20:10 UTC, the reset 22:00 UTC
        (utc(2026, 7, 15, 20, 9), None),
        (utc(2026, 7, 15, 20, 10), utc(2026, 7, 15, 20, 10)),
        (utc(2026, 7, 15, 21, 59, 59), utc(2026, 7, 15, 20, 10)),
        # the reset has come: the next session has not closed yet
        (utc(2026, 7, 15, 22, 0), None),
        (utc(2026, 7, 16, 3, 0), None),
        # winter: the close is 21:10 UTC, the reset 23:00 UTC
        (utc(2026, 1, 16, 21, 30), utc(2026, 1, 16, 21, 10)),
        (utc(2026, 1, 16, 23, 0), None),
        # the weekend has no session close
        (utc(2026, 1, 17, 21, 30), None),
        (utc(2026, 1, 18, 21, 30), None),
    ],
)
def test_s9_4_session_close_missed_while_down(now: datetime, missed: datetime | None) -> None:
    assert session_close_missed(now, CLOSE) == missed


def test_s9_4_session_close_missed_on_both_sides_of_a_switch() -> None:
    # Monday after the March switch: 15:10 CDT is 20:10 UTC
    assert session_close_missed(utc(2026, 3, 9, 20, 30), CLOSE) == utc(2026, 3, 9, 20, 10)
    # Monday after the November switch: 15:10 CST is 21:10 UTC; 20:30 UTC is still before it
    assert session_close_missed(utc(2026, 11, 2, 20, 30), CLOSE) is None
    assert session_close_missed(utc(2026, 11, 2, 21, 30), CLOSE) == utc(2026, 11, 2, 21, 10)


# --- S9.5 blackouts ----------------------------------------------------------------------------


def blackout(start: str, end: str, label: str = "CPI") -> Blackout:
    return Blackout(datetime.fromisoformat(start), datetime.fromisoformat(end), label)


CPI = blackout("2026-03-12T07:25:00-05:00", "2026-03-12T07:40:00-05:00", "CPI")


def test_s9_5_modes_are_spelled_as_in_the_profile() -> None:
    assert [m.value for m in BlackoutMode] == ["off", "block", "flatten"]


def test_s9_5_start_included_end_excluded() -> None:
    assert not CPI.active(utc(2026, 3, 12, 12, 24, 59))
    assert CPI.active(utc(2026, 3, 12, 12, 25))
    assert CPI.active(utc(2026, 3, 12, 12, 39, 59))
    assert not CPI.active(utc(2026, 3, 12, 12, 40))


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-03-12T07:25:00", "2026-03-12T07:40:00-05:00", "start must carry a UTC offset"),
        ("2026-03-12T07:25:00-05:00", "2026-03-12T07:40:00", "end must carry a UTC offset"),
        ("2026-03-12T07:40:00-05:00", "2026-03-12T07:25:00-05:00", "end .* must be after start"),
        ("2026-03-12T07:25:00-05:00", "2026-03-12T12:25:00+00:00", "end .* must be after start"),
    ],
)
def test_s9_5_a_blackout_needs_offsets_and_an_end_after_its_start(
    start: str, end: str, message: str
) -> None:
    with pytest.raises(ValueError, match=f"blackout 'CPI': {message}"):
        blackout(start, end)


def test_s9_5_the_key_is_stable_across_offsets() -> None:
    same = blackout("2026-03-12T12:25:00+00:00", "2026-03-12T12:40:00+00:00", "CPI")
    assert same == CPI
    assert same.key() == CPI.key() == "2026-03-12T12:25:00+00:00/2026-03-12T12:40:00+00:00/CPI"
    assert blackout("2026-03-12T12:25:00+00:00", "2026-03-12T12:40:00+00:00", "NFP").key() != (
        CPI.key()
    )


def test_s9_5_refusal_names_the_end_in_chicago_time() -> None:
    assert blackout_text(CPI) == "Opening orders are blocked until 07:40 CT (CPI)."
    # an end written in UTC, in winter (CST) and in summer (CDT)
    winter = blackout("2026-01-14T13:00:00+00:00", "2026-01-14T14:05:00+00:00", "FOMC")
    assert blackout_text(winter) == "Opening orders are blocked until 08:05 CT (FOMC)."
    summer = blackout("2026-07-14T13:00:00+00:00", "2026-07-14T14:05:00+00:00", "FOMC")
    assert blackout_text(summer) == "Opening orders are blocked until 09:05 CT (FOMC)."
    # 24-hour, zero-padded
    evening = blackout("2026-07-14T18:00:00-05:00", "2026-07-14T19:00:00-05:00", "late")
    assert blackout_text(evening) == "Opening orders are blocked until 19:00 CT (late)."


def test_s9_5_the_active_blackout_is_the_one_ending_last() -> None:
    early = blackout("2026-03-12T07:00:00-05:00", "2026-03-12T07:30:00-05:00", "A")
    long = blackout("2026-03-12T07:10:00-05:00", "2026-03-12T08:00:00-05:00", "B")
    later = blackout("2026-03-12T09:00:00-05:00", "2026-03-12T10:00:00-05:00", "C")
    everything = [later, long, early]
    assert active_blackout(everything, utc(2026, 3, 12, 11, 59)) is None
    assert active_blackout(everything, utc(2026, 3, 12, 12, 5)) is early
    assert active_blackout(everything, utc(2026, 3, 12, 12, 15)) is long
    assert active_blackout(everything, utc(2026, 3, 12, 12, 45)) is long
    assert active_blackout(everything, utc(2026, 3, 12, 14, 0)) is later
    assert active_blackout([], utc(2026, 3, 12, 14, 0)) is None


def test_s9_5_equal_ends_pick_the_first_by_start_then_label() -> None:
    b = blackout("2026-03-12T07:10:00-05:00", "2026-03-12T08:00:00-05:00", "B")
    a_later = blackout("2026-03-12T07:20:00-05:00", "2026-03-12T08:00:00-05:00", "A")
    a_same = blackout("2026-03-12T07:10:00-05:00", "2026-03-12T08:00:00-05:00", "A")
    now = utc(2026, 3, 12, 12, 30)
    assert active_blackout([a_later, b], now) is b
    assert active_blackout([b, a_later, a_same], now) is a_same


def test_s9_5_blackouts_order_by_start() -> None:
    later = blackout("2026-03-12T09:00:00-05:00", "2026-03-12T10:00:00-05:00", "A")
    assert sorted([later, CPI]) == [CPI, later]


def test_s9_5_next_instant_is_the_earliest_start_or_end_after() -> None:
    a = blackout("2026-03-12T07:00:00-05:00", "2026-03-12T07:30:00-05:00", "A")
    b = blackout("2026-03-12T07:10:00-05:00", "2026-03-12T08:00:00-05:00", "B")
    both = [b, a]
    assert next_blackout_instant(both, utc(2026, 3, 12, 11)) == utc(2026, 3, 12, 12, 0)
    # strictly after: at a's start, b's start comes next
    assert next_blackout_instant(both, utc(2026, 3, 12, 12, 0)) == utc(2026, 3, 12, 12, 10)
    assert next_blackout_instant(both, utc(2026, 3, 12, 12, 10)) == utc(2026, 3, 12, 12, 30)
    assert next_blackout_instant(both, utc(2026, 3, 12, 12, 30)) == utc(2026, 3, 12, 13, 0)
    assert next_blackout_instant(both, utc(2026, 3, 12, 13, 0)) is None
    assert next_blackout_instant([], utc(2026, 3, 12, 13, 0)) is None
    found = next_blackout_instant(both, utc(2026, 3, 12, 11))
    assert found is not None
    assert found.tzinfo is UTC
