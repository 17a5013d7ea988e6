"""Fixtures the live engine's tests share: a JSON webhook receiver on loopback, for alerts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.live.alert_receiver import Receiver, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r
