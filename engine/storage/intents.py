"""The intent log: every order is written here, durably, before it is sent (S2.6).

An append-only file of frames (``engine/frames.py``), written with one ``write`` system call per
batch of orders from the thread that sends them. Once ``write`` returns the bytes belong to the
operating system, so a crash of the engine process cannot lose them — the same guarantee SQLite
gives in WAL mode with ``synchronous = NORMAL``, at a few microseconds instead of a cross-thread
commit (docs/decisions/0002-intent-log.md). The SQLite order ledger is written behind it; on
restart an intent the ledger lacks has an unknown outcome and is resolved with the broker by its
client order id, never re-sent blindly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.storage.frames import FrameError, FrameLog, read_frames

IntentLogError = FrameError


class IntentLog(FrameLog):
    def __iter__(self) -> Iterator[Any]:
        frames, _ = read_frames(self.path)
        return iter(frames)


__all__ = ["IntentLog", "IntentLogError"]
