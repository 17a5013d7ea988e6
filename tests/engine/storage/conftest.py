"""What the storage tests share."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from engine.storage.store import Store


@pytest.fixture
def hold_writer() -> Callable[[Store], AbstractContextManager[None]]:
    """``with hold_writer(store):`` keeps the store's writer busy in one job until the block
    ends, so everything queued inside it reaches the writer as one batch."""

    @contextmanager
    def held(store: Store) -> Iterator[None]:
        gate, entered = threading.Event(), threading.Event()

        def blocker(conn: sqlite3.Connection) -> None:
            entered.set()
            assert gate.wait(10)

        store.write(blocker)
        assert entered.wait(10)
        try:
            yield
        finally:
            gate.set()

    return held
