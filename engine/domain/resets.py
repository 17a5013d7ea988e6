"""S5.8: the reset schedule, in America/Chicago local time, daylight saving included.

Daily reset at 17:00 Monday to Friday; weekly reset at 17:00 Sunday (it does the daily reset's
work too). Instants are computed in local time and converted to UTC, so the Sunday reset lands
at 22:00 UTC in summer (CDT) and 23:00 UTC in winter (CST).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

CHICAGO = ZoneInfo("America/Chicago")
RESET_TIME = time(17, 0)
SUNDAY = 6


class ResetKind(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True, order=True, slots=True)
class Reset:
    at: datetime  # UTC
    kind: ResetKind


def _reset_on(day: date) -> Reset | None:
    weekday = day.weekday()
    if weekday == 5:  # Saturday: no reset
        return None
    kind = ResetKind.WEEKLY if weekday == SUNDAY else ResetKind.DAILY
    local = datetime.combine(day, RESET_TIME, tzinfo=CHICAGO)
    return Reset(local.astimezone(UTC), kind)


def resets_after(instant: datetime) -> Iterator[Reset]:
    """Every reset strictly after ``instant``, in order, forever."""
    day = instant.astimezone(CHICAGO).date() - timedelta(days=1)
    while True:
        reset = _reset_on(day)
        if reset is not None and reset.at > instant:
            yield reset
        day += timedelta(days=1)


def next_reset(instant: datetime) -> Reset:
    return next(resets_after(instant))


def resets_between(start: datetime, end: datetime) -> list[Reset]:
    """Resets in ``(start, end]``, in order (those missed while the engine was down)."""
    out: list[Reset] = []
    for reset in resets_after(start):
        if reset.at > end:
            break
        out.append(reset)
    return out
