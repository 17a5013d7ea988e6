"""Hypothesis settings for the property tests, chosen by ``$HYPOTHESIS_PROFILE``.

* ``ci`` (the default): sized so ``make test`` spends about a minute here;
* ``soak``: many more and longer examples, no deadline (``make soak``).

``ci`` is deliberately not registered under that name: Hypothesis ships a profile called ``ci``
that it loads for every test when it detects a CI run, and registering over it would change
every other test of the suite. ``soak`` is registered, so ``--hypothesis-profile=soak`` works
too. Any other registered profile named in ``$HYPOTHESIS_PROFILE`` is used as given.

``$HYPOTHESIS_SEED`` pins the seed; otherwise one is drawn and printed, so a failing run shows
it (with the ``@reproduce_failure`` blob Hypothesis prints) and ``HYPOTHESIS_SEED=... make
test`` runs the same examples again.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from hypothesis import HealthCheck, seed, settings

PROFILE_ENV = "HYPOTHESIS_PROFILE"
SEED_ENV = "HYPOTHESIS_SEED"

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]

CI = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=timedelta(seconds=10),  # one whole example; only a hang comes near it
    print_blob=True,
    suppress_health_check=_SLOW_IS_FINE,
)
SOAK = settings(
    CI,
    max_examples=1_000_000,
    stateful_step_count=80,
    deadline=None,
)
settings.register_profile("soak", SOAK)
PROFILES = {"ci": CI, "soak": SOAK}

T = TypeVar("T")


def profile_name() -> str:
    return os.environ.get(PROFILE_ENV, "ci") or "ci"


def property_settings(**overrides: object) -> settings:
    """The settings of the profile ``$HYPOTHESIS_PROFILE`` names, with ``overrides``."""
    name = profile_name()
    base = PROFILES.get(name)
    if base is None:
        base = settings(settings.get_profile(name), print_blob=True)
    return settings(base, **overrides) if overrides else base  # type: ignore[arg-type]


def scaled(examples: int, profile_examples: int | None = None) -> int:
    """A test's own ``max_examples``: ``examples`` under ``ci``, the profile's under others."""
    if profile_name() == "ci":
        return examples
    return profile_examples if profile_examples is not None else property_settings().max_examples


def chosen_seed() -> int | None:
    """``$HYPOTHESIS_SEED``, else a fresh one; ``None`` when the run is derandomized (Hypothesis
    does that under CI, and a seed would override it)."""
    given = os.environ.get(SEED_ENV)
    if given:
        return int(given)
    if property_settings().derandomize:
        return None
    return random.SystemRandom().randrange(2**32)


def seeded(target: T, label: str) -> tuple[T, int | None]:
    """``target`` (a test or a state machine class) under :func:`chosen_seed`, which is
    printed: pytest shows it with a failure."""
    number = chosen_seed()
    if number is None:
        print(f"{label}: derandomized run (no seed)")
        return target, None
    print(f"{label}: {SEED_ENV}={number}")
    apply: Callable[[T], T] = seed(number)
    return apply(target), number
