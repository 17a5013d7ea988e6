"""Messages the ResetScheduleActor receives: its own timer, and which accounts to reset."""

from __future__ import annotations

from dataclasses import dataclass

from engine.domain.resets import Reset


@dataclass(frozen=True, slots=True)
class ResetDue:
    reset: Reset


@dataclass(frozen=True, slots=True)
class Track:
    account: str
    on: bool
