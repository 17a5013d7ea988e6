"""The journal: every event that enters the engine, in order, to reproduce a live session.

Broker events, user commands and clock steps are appended as frames (``engine/frames.py``)
``[seq, time, kind, payload]``; the first frame of a session is its ``setup``: the
configuration and the durable actor state the engine started from. ``python -m engine replay
--journal FILE`` feeds the frames to a fresh engine on a virtual clock.

Recording is off the hot path: frames are encoded where the event enters and written by a
background thread every 50 ms (and at close), so a crash loses at most the last 50 ms of the
journal — never engine state, which lives in the store and the intent log.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from brokers.clock import Clock
from engine.storage.event_codec import WireError, encode
from engine.storage.frames import FrameError, FrameLog, encode_frame, read_frames

log = structlog.get_logger("engine.storage.journal")

FLUSH_EVERY_S = 0.05
GAP = "gap"  # an event that could not be recorded
JOURNAL_VERSION = 1  # the setup frame's layout; a reader refuses a newer one


class Journal:
    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock
        frames, _ = read_frames(path)
        self._seq = int(frames[-1][0]) if frames else 0
        self._log = FrameLog(path)
        self._lock = threading.Lock()
        self._buffer: list[bytes] = []
        self._closed = threading.Event()
        self._flusher = threading.Thread(target=self._run, name="journal", daemon=True)
        self._flusher.start()

    def record(self, kind: str, payload: Any) -> None:
        """Append one event; ``payload`` is encoded now (the caller's values are immutable).

        The journal never stops the engine: a value it cannot encode is written as a ``gap``
        frame naming what was lost (a replay reports it), with an error in the log."""
        now = self.clock.now().isoformat()
        try:
            body = encode(payload)
        except WireError as error:
            log.error("journal cannot record an event; the journal has a gap", kind=kind,
                      error=str(error))  # fmt: skip
            kind, body = GAP, {"kind": kind, "error": str(error)}
        with self._lock:
            self._seq += 1
            self._buffer.append(encode_frame([self._seq, now, kind, body]))

    def flush(self) -> None:
        with self._lock:
            blob, self._buffer = b"".join(self._buffer), []
        if blob:
            self._log.write_bytes(blob)

    def _run(self) -> None:
        while not self._closed.wait(FLUSH_EVERY_S):
            self.flush()

    def close(self) -> None:
        self._closed.set()
        self._flusher.join(timeout=5)
        self.flush()
        self._log.close()


def read_journal(path: Path) -> list[tuple[int, datetime, str, Any]]:
    """Every frame as ``(seq, instant, kind, payload)``; a frame of another shape is
    reported (FrameError) with its position, never trusted."""
    frames, _ = read_frames(path)
    out: list[tuple[int, datetime, str, Any]] = []
    for number, frame in enumerate(frames, 1):
        if not (isinstance(frame, list) and len(frame) == 4):
            raise FrameError(f"{path}: frame {number}: not a [seq, time, kind, payload] record")
        seq, when, kind, payload = frame
        try:
            instant = datetime.fromisoformat(when)
        except (TypeError, ValueError):
            raise FrameError(f"{path}: frame {number}: time {when!r} is not an instant") from None
        if not isinstance(seq, int) or not isinstance(kind, str) or instant.tzinfo is None:
            raise FrameError(f"{path}: frame {number}: malformed seq, kind or time offset")
        out.append((seq, instant, kind, payload))
    return out
