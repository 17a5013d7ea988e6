"""Ids remembered for the trading day they were seen in and the next, then forgotten.

A broker reports a fill again within a session or the day after a reconnect (a sync lists the
day's fills), never weeks later; remembering every id for ever grew the engine's memory by each
fill it ever saw. The account turns its sets at each reset (S5.8, 17:00 CT): what was seen in the
day just ended is still recognised through the next one.
"""

from __future__ import annotations


class RecentIds:
    def __init__(self) -> None:
        self._current: set[str] = set()
        self._previous: set[str] = set()

    def __contains__(self, key: object) -> bool:
        return key in self._current or key in self._previous

    def add(self, key: str) -> None:
        self._current.add(key)

    def turn(self) -> None:
        """A trading day ended: the ids of the one before it are forgotten."""
        self._previous, self._current = self._current, set()

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)
