"""The collector's policy of an engine process (decision 0028): what exists at start is frozen,
and the young generation is collected far less often than Python's default."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from engine.app.collector import MIDDLE, OLD, YOUNG, tune_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_tuning_freezes_what_exists_and_spaces_the_passes() -> None:
    built_at_start = [{"actor": n} for n in range(1000)]  # containers, as an actor tree is
    gc.unfreeze()
    tune_collector()
    assert gc.get_threshold() == (YOUNG, MIDDLE, OLD)
    assert gc.get_freeze_count() >= len(built_at_start)
