"""How closely the engine watches each follower (S10.1, S10.3): the timings of drift, missed
copies and blind prices, with SEMANTICS' defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class OnDrift(StrEnum):
    """What a group does when one of its followers drifts (S10.2): ``alert`` writes the
    ``drift`` entry (and alerts), nothing more; ``reduce`` also brings the follower toward its
    expected position flatten-only, once per episode."""

    ALERT = "alert"
    REDUCE = "reduce"


ON_DRIFT_CHOICES = tuple(m.value for m in OnDrift)


@dataclass(frozen=True, slots=True)
class WatchSettings:
    # S10.1: how long a follower may differ from its leader before an episode opens, and how
    # often a follower's drift is checked besides after each settled fill.
    drift_grace: timedelta = timedelta(seconds=5)
    drift_check: timedelta = timedelta(seconds=10)
    # S10.3: how long a market order the engine sent may stay unanswered before it is a
    # missed copy, and how long an open position's symbol may go without a price.
    copy_fill_timeout: timedelta = timedelta(seconds=5)
    stale_prices_after: timedelta = timedelta(seconds=30)
