"""S5.6's retry schedule, shared by every retry on the engine clock: a rejected closing copy
(S2.8) and a snapshot whose answer was unknown (S3.5)."""

from __future__ import annotations

from datetime import timedelta

RETRY_CAP = timedelta(seconds=60)


def backoff(attempt: int) -> timedelta:
    """The wait after failure number ``attempt``: 1, 2, 4, 8 … seconds, capped at 60."""
    return min(timedelta(seconds=2 ** max(attempt - 1, 0)), RETRY_CAP)
