"""Hypothesis settings for the property tests, chosen by ``$HYPOTHESIS_PROFILE``.

* ``ci`` (the default): sized so ``make test`` spends about a minute here;
* ``soak``: many more and longer examples, no deadline (``make soak``).

``ci`` is deliberately not registered under that name: Hypothesis ships a profile called ``ci``
that it loads for every test when it detects a CI run, and registering over it would change
every other test of the suite. ``soak`` is registered, so ``--hypothesis-profile=soak`` works
too. Any other registered profile named in ``$HYPOTHESIS_PROFILE`` is used as given.

``$ENGINE_PROPERTIES_KNOWN_BUGS=hit`` stops the tests steering around known bugs.

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
KNOWN_BUGS_ENV = "ENGINE_PROPERTIES_KNOWN_BUGS"

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]

CI = settings(
    max_examples=250,
    stateful_step_count=50,
    deadline=timedelta(seconds=10),  # one whole example; only a hang comes near it
    print_blob=True,
    suppress_health_check=_SLOW_IS_FINE,
)
SOAK = settings(
    CI,
    max_examples=20_000,  # the state machine: about an hour
    stateful_step_count=80,
    deadline=None,
)
settings.register_profile("soak", SOAK)
PROFILES = {"ci": CI, "soak": SOAK}
# The Tradovate safety machine: each step is round trips on loopback sockets (and a settle step
# many), so under ``ci`` fewer and shorter examples — about a minute on one of the two cores
# (45 examples: 60 had grown to two minutes, the suite's longest test); ``soak`` runs
# it for about half an hour. No deadline: a hang fails on the suite's own timeout.
TRADOVATE = {
    "ci": settings(CI, max_examples=45, stateful_step_count=30, deadline=None),
    "soak": settings(SOAK, max_examples=600, stateful_step_count=50),
}

SOAK_FACTOR = 30  # for the tests that size themselves with scaled()

T = TypeVar("T")


def hit_known_bugs() -> bool:
    """``$ENGINE_PROPERTIES_KNOWN_BUGS=hit``: walk into the known bugs (each pinned by a
    strict-xfail regression test) instead of around them — to see whether one is fixed, or
    to look for what else they hide."""
    return os.environ.get(KNOWN_BUGS_ENV, "avoid") == "hit"


def profile_name() -> str:
    return os.environ.get(PROFILE_ENV, "ci") or "ci"


def property_settings(**overrides: object) -> settings:
    """The settings of the profile ``$HYPOTHESIS_PROFILE`` names, with ``overrides``."""
    name = profile_name()
    base = PROFILES.get(name)
    if base is None:
        base = settings(settings.get_profile(name), print_blob=True)
    return settings(base, **overrides) if overrides else base  # type: ignore[arg-type]


def tradovate_settings() -> settings:
    """The Tradovate safety machine's settings under ``$HYPOTHESIS_PROFILE`` (any other
    profile is used as given)."""
    return TRADOVATE.get(profile_name()) or property_settings()


def scaled(examples: int) -> int:
    """A test's own ``max_examples``: ``examples`` under ``ci``, ``SOAK_FACTOR`` times as many
    under ``soak``, the profile's own number under any other."""
    name = profile_name()
    if name == "ci":
        return examples
    if name == "soak":
        return examples * SOAK_FACTOR
    return property_settings().max_examples


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
