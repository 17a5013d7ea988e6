"""What an alert is (S10.4): an activity entry, a supervisor hold or a connection that stayed
down, chosen by kind and level, put into the words a phone shows; and the rate window that
keeps one target from being flooded, its excess summed up in one message.

Pure: no clock, no I/O. The live engine's alert router (``engine/live/alerts.py``) feeds it and
its delivery tasks (``engine/live/alert_delivery.py``) send what it says.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from engine.domain.activity import ActivityEntry, Kind, Level

# The two alerts that are not an activity entry's own kind: an account held by the supervisor
# after too many restarts (S7.2's intensity; written as a ``restart`` entry), and a connection
# that left ``connected`` for longer than ``[alerts] connection_down_seconds``.
SUPERVISOR_HOLD = "supervisor_hold"
CONNECTION_DOWN = "connection_down"
EVENT_KINDS = (SUPERVISOR_HOLD, CONNECTION_DOWN)
ALERT_KINDS = (*(kind.value for kind in Kind), *EVENT_KINDS)
DEFAULT_KINDS = (
    Kind.BREACH.value,
    Kind.LOCK.value,
    Kind.FLATTEN_FAILED.value,
    Kind.DRIFT.value,
    Kind.MISSED_COPY.value,
    Kind.MAX_CONTRACTS_EXCEEDED.value,
    Kind.STALE_PRICES.value,
    SUPERVISOR_HOLD,
    CONNECTION_DOWN,
)
# Every default kind is written at ``warning`` or ``error`` (a manual lock, a breach, a drift
# episode ...): the default ``min_level`` lets each of them through, and leaves out the
# ``info`` entries that say something is over (``stale_prices`` when prices are back).
DEFAULT_MIN_LEVEL = Level.WARNING
LEVEL_RANK = {Level.INFO: 0, Level.WARNING: 1, Level.ERROR: 2}
RATE_PERIOD = 60.0  # seconds: ``[alerts] rate`` is messages a minute per target

# The risk actor's words for a supervisor hold (``actors/risk.py`` ``_hold``), the only
# ``restart`` entry that says an account is held until a person unlocks it.
_HOLD = re.compile(r" held in \w+ .*until unlocked")
# The connection actor's words for a move (``actors/connection.py`` ``_event``).
_MOVE = re.compile(r"^connection (?P<id>\S+): (?P<before>\w+) → (?P<after>\w+) \(")
CONNECTED = "connected"


@dataclass(frozen=True, slots=True)
class Alert:
    """One message for the trader's targets."""

    time: datetime
    level: Level
    kind: str
    message: str
    account: str | None = None
    connection: str | None = None

    @property
    def title(self) -> str:
        """``[warning] drift DEMO-F1``: the level and kind a lock screen shows first."""
        where = self.account or self.connection
        return f"[{self.level.value}] {self.kind}" + (f" {where}" if where else "")

    @property
    def body(self) -> str:
        """The entry's text, then the account or connection and the time (UTC)."""
        facts = []
        if self.account:
            facts.append(f"account {self.account}")
        if self.connection:
            facts.append(f"connection {self.connection}")
        facts.append(self.time.isoformat(timespec="seconds"))
        return f"{self.message}\n{' · '.join(facts)}"


def is_supervisor_hold(entry: ActivityEntry) -> bool:
    return entry.kind is Kind.RESTART and bool(_HOLD.search(entry.message))


def alert_of(entry: ActivityEntry) -> Alert:
    """The alert an activity entry makes; a supervisor hold is told from other restarts."""
    kind = SUPERVISOR_HOLD if is_supervisor_hold(entry) else entry.kind.value
    return Alert(entry.time, entry.level, kind, entry.message, entry.account, entry.connection)


def connection_move(entry: ActivityEntry) -> tuple[str, str, str] | None:
    """(connection, state before, state after) of a connection's ``state_change`` entry that
    moved it; None for every other entry."""
    if entry.kind is not Kind.STATE_CHANGE or entry.connection is None:
        return None
    found = _MOVE.match(entry.message)
    if found is None or found["id"] != entry.connection:
        return None
    return found["id"], found["before"], found["after"]


def connection_down(
    connection: str, state: str, since: datetime, seconds: float, now: datetime
) -> Alert:
    """The alert for a connection away from ``connected`` since ``since``, ``seconds`` on."""
    return Alert(
        now,
        Level.ERROR,
        CONNECTION_DOWN,
        f"connection {connection} has not been connected for {seconds:g} s (it is {state},"
        f" since {since.isoformat(timespec='seconds')}): its accounts are not copied and"
        " their risk guard hears nothing from the broker",
        connection=connection,
    )


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts go out: their kind chosen, their level at least ``min_level``."""

    kinds: frozenset[str]
    min_level: Level = DEFAULT_MIN_LEVEL

    def passes(self, alert: Alert) -> bool:
        return alert.kind in self.kinds and LEVEL_RANK[alert.level] >= LEVEL_RANK[self.min_level]


def summary(held: Mapping[str, int], level: Level, time: datetime) -> Alert:
    """One message for the alerts a full rate window held back: ``7 more alerts: 3 drift,
    4 missed_copy``, the most frequent first; ``level`` is the worst of them."""
    total = sum(held.values())
    parts = ", ".join(f"{n} {kind}" for kind, n in Counter(held).most_common())
    noun = "alert" if total == 1 else "alerts"
    return Alert(
        time,
        level,
        "summary",
        f"{total} more {noun}: {parts} (held back by the rate limit; the activity log has each)",
    )


class RateWindow:
    """At most ``rate`` messages in any ``period`` seconds (a sliding window), on a monotonic
    reading in seconds."""

    def __init__(self, rate: int, period: float = RATE_PERIOD) -> None:
        self.rate = rate
        self.period = period
        self._sent: deque[float] = deque()

    def _forget(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= self.period:
            self._sent.popleft()

    def allows(self, now: float) -> bool:
        self._forget(now)
        return len(self._sent) < self.rate

    def take(self, now: float) -> None:
        self._forget(now)
        self._sent.append(now)

    def free_at(self, now: float) -> float:
        """When the next message may go (``now`` if it may now)."""
        self._forget(now)
        if len(self._sent) < self.rate:
            return now
        return self._sent[0] + self.period


def worse(a: Level, b: Level) -> Level:
    return a if LEVEL_RANK[a] >= LEVEL_RANK[b] else b


def kinds_unknown(kinds: Iterable[str]) -> list[str]:
    return [kind for kind in kinds if kind not in ALERT_KINDS]


__all__ = [
    "ALERT_KINDS",
    "CONNECTED",
    "CONNECTION_DOWN",
    "DEFAULT_KINDS",
    "DEFAULT_MIN_LEVEL",
    "EVENT_KINDS",
    "RATE_PERIOD",
    "SUPERVISOR_HOLD",
    "Alert",
    "AlertFilter",
    "RateWindow",
    "alert_of",
    "connection_down",
    "connection_move",
    "is_supervisor_hold",
    "kinds_unknown",
    "summary",
    "worse",
]
