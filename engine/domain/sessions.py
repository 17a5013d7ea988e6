"""S9.4 session close and S9.5 blackouts: the instants that block or flatten an account, in
America/Chicago local time, daylight saving included.

A session close (``flatten_at``) is a local time before 17:00 on the trading days Monday to
Friday (exchange holidays are not modelled); the trading day it closes began at the previous
17:00 and ends at the daily reset (S5.8). A blackout is an interval of offset datetimes, start
included and end excluded, inside which opening orders are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from engine.domain.resets import CHICAGO, RESET_TIME

_HH_MM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
FRIDAY = 4


def parse_flatten_at(text: str) -> time:
    """``"15:10"`` → 15:10: a 24-hour ``HH:MM`` earlier than 17:00 (the daily reset)."""
    match = _HH_MM.fullmatch(text) if isinstance(text, str) else None
    parsed = time(int(match[1]), int(match[2])) if match else None
    if parsed is None or parsed >= RESET_TIME:
        shown = f'"{text}"' if isinstance(text, str) else repr(text)
        raise ValueError(f'flatten_at must be a time of day "HH:MM" before 17:00, got {shown}')
    return parsed


def _require_aware(instant: datetime, name: str) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must carry a UTC offset, got {instant.isoformat()}")


def _close_on(day: date, at: time) -> datetime:
    """``at`` Chicago time on ``day``, in UTC."""
    return datetime.combine(day, at.replace(tzinfo=None), tzinfo=CHICAGO).astimezone(UTC)


def next_session_close(after: datetime, at: time) -> datetime:
    """The first session close strictly after ``after``: ``at`` Chicago time on a Monday to
    Friday, in UTC."""
    _require_aware(after, "after")
    day = after.astimezone(CHICAGO).date()
    while True:
        if day.weekday() <= FRIDAY:
            close = _close_on(day, at)
            if close > after:
                return close
        day += timedelta(days=1)


def session_close_missed(now: datetime, at: time) -> datetime | None:
    """The session close that has passed in the current trading day, if any: ``now`` is at or
    after today's ``at`` and before today's 17:00 reset, Monday to Friday. At start-up this is a
    close that fell while the engine was down and whose session has not been reset yet."""
    _require_aware(now, "now")
    day = now.astimezone(CHICAGO).date()
    if day.weekday() > FRIDAY:
        return None
    close = _close_on(day, at)
    reset = _close_on(day, RESET_TIME)
    return close if close <= now < reset else None


class BlackoutMode(StrEnum):
    """An account's ``blackout`` key: ignore blackouts, refuse opening orders inside them, or
    refuse them and also flatten the account at each blackout's start."""

    OFF = "off"
    BLOCK = "block"
    FLATTEN = "flatten"


@dataclass(frozen=True, slots=True, order=True)
class Blackout:
    """One blackout interval ``[start, end)`` of offset datetimes, with the label shown in the
    refusal (``"CPI"``)."""

    start: datetime
    end: datetime
    label: str

    def __post_init__(self) -> None:
        where = f"blackout {self.label!r}"
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, datetime):
                raise ValueError(f"{where}: {name} must be a datetime, got {value!r}")
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(
                    f"{where}: {name} must carry a UTC offset "
                    f"(e.g. 2026-03-12T07:25:00-05:00), got {value.isoformat()}"
                )
        if self.end <= self.start:
            raise ValueError(
                f"{where}: end {self.end.isoformat()} must be after start {self.start.isoformat()}"
            )

    def active(self, now: datetime) -> bool:
        """Whether ``now`` falls inside: start included, end excluded."""
        return self.start <= now < self.end

    def key(self) -> str:
        """A stable text id: the same for equal intervals whatever offset they were written in."""
        start = self.start.astimezone(UTC).isoformat()
        end = self.end.astimezone(UTC).isoformat()
        return f"{start}/{end}/{self.label}"


def active_blackout(blackouts: Iterable[Blackout], now: datetime) -> Blackout | None:
    """Of the blackouts active at ``now``, the one that ends last (ties: the first by start,
    then label) — the one S9.5's message names."""
    active = sorted((b for b in blackouts if b.active(now)), key=lambda b: (b.start, b.label))
    # max keeps the first of equal ends, which the sort made the first by (start, label)
    return max(active, key=lambda b: b.end) if active else None


def blackout_text(b: Blackout) -> str:
    """S9.5's refusal of an opening order inside ``b``."""
    end = b.end.astimezone(CHICAGO)
    return f"Opening orders are blocked until {end:%H:%M} CT ({b.label})."


def next_blackout_instant(blackouts: Iterable[Blackout], after: datetime) -> datetime | None:
    """The earliest start or end strictly after ``after`` — the instant a timer is armed for,
    in UTC (None when no blackout starts or ends later)."""
    _require_aware(after, "after")
    later = [t for b in blackouts for t in (b.start, b.end) if t > after]
    return min(later).astimezone(UTC) if later else None


__all__ = [
    "Blackout",
    "BlackoutMode",
    "active_blackout",
    "blackout_text",
    "next_blackout_instant",
    "next_session_close",
    "parse_flatten_at",
    "session_close_missed",
]
