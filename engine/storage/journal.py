"""The journal: every event that enters the engine, in order, to reproduce a live session.

Broker events, user commands and clock steps are appended as frames (``engine/frames.py``)
``[seq, time, kind, payload]``; the first frame of a session is its ``setup``: the
configuration and the durable actor state the engine started from. ``python -m engine replay
--journal PATH`` feeds the frames to a fresh engine on a virtual clock.

Recording is off the hot path: frames are encoded where the event enters and written by a
background thread every 50 ms (and at close), so a crash loses at most the last 50 ms of the
journal — never engine state, which lives in the store and the intent log.

The journal is a directory of segments (decision 0013), ``DATA/engine.journal/``, each named
after its first sequence number and the instant it was begun:
``000000004711-20260105T150000Z.journal``. A segment begins with a frame a replay can start
from: every start of the engine begins one with its ``setup``; while running, the journal begins
the next when the current one has grown past ``segment_bytes`` or the day (UTC, on the engine
clock) has changed, with a ``checkpoint`` frame — the store as it is then, the same rows as a
setup's. Whole segments past ``retention_days`` or beyond ``max_bytes`` are deleted, oldest
first; the segment being written never is. A start reads nothing of the segments but their
names: the new segment's first number is placed past every number the last one can hold (its
first number plus its size in bytes), so numbers only grow, with a gap at each start.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import structlog

from brokers.clock import Clock
from engine.storage.durability import Durability, NotDurable, describe
from engine.storage.event_codec import WireError, encode
from engine.storage.frames import (
    HEADER,
    FrameError,
    FrameLog,
    encode_frame,
    parse_frames,
    read_frames,
)

log = structlog.get_logger("engine.storage.journal")

FLUSH_EVERY_S = 0.05
# Frames kept in memory while the disk refuses them, written when it takes them again; past
# this much, the oldest are given up (a gap in the journal, never in the engine's state).
BACKLOG_BYTES = 64 * 1024 * 1024
GAP = "gap"  # an event that could not be recorded
SETUP = "setup"  # a start: the store the engine was built from
CHECKPOINT = "checkpoint"  # the store when a segment was begun while the engine ran
JOURNAL_VERSION = 1  # the setup frame's layout; a reader refuses a newer one
SUFFIX = ".journal"
JOURNAL_NAME = "engine.journal"  # the segment directory, in a data directory
_NAME = re.compile(r"^(?P<seq>\d{12})-(?P<at>\d{8}T\d{6}Z)\.journal$")
_STAMP = "%Y%m%dT%H%M%SZ"
EXPIRE_EVERY = timedelta(hours=1)
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class JournalLimits:
    """When a segment ends, and how much of the journal is kept (0: no limit)."""

    segment_bytes: int = 64 * MB
    retention_days: float = 14
    max_bytes: int = 1024 * MB


@dataclass(frozen=True, slots=True)
class Segment:
    path: Path
    first_seq: int
    started: datetime


def segment_name(first_seq: int, started: datetime) -> str:
    return f"{first_seq:012d}-{started.astimezone(UTC).strftime(_STAMP)}{SUFFIX}"


def list_segments(directory: Path) -> list[Segment]:
    """The segments in ``directory``, oldest first (other files are left alone)."""
    found: list[Segment] = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            m = _NAME.match(entry.name)
            if m and entry.is_file():
                started = datetime.strptime(m["at"], _STAMP).replace(tzinfo=UTC)
                found.append(Segment(Path(entry.path), int(m["seq"]), started))
    return sorted(found, key=lambda s: s.first_seq)


class Journal:
    """The journal in the segment directory ``path``.

    ``legacy``: a single-file journal an earlier engine wrote; it becomes the first segment.
    ``checkpoint`` (set by the engine) gives a checkpoint frame's payload; without it the
    journal does not rotate while running."""

    def __init__(
        self,
        path: Path,
        clock: Clock,
        limits: JournalLimits | None = None,
        *,
        legacy: Path | None = None,
        durability: Durability | None = None,
    ) -> None:
        self.path = path
        self.clock = clock
        self.durability = durability  # told when the disk refuses a write, and when it is back
        self.limits = limits or JournalLimits()
        self.checkpoint: Callable[[], Any] | None = None
        _adopt_single_file(path, path)  # a file where the directory goes: an older journal
        if legacy is not None:
            _adopt_single_file(legacy, path)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        segments = list_segments(path)
        last = segments[-1] if segments else None
        # Past every number the last segment can hold (a frame takes more than one byte).
        self._seq = last.first_seq + last.path.stat().st_size if last is not None else 0
        self._log: FrameLog | None = None  # the segment being written, begun at the first write
        self._segment: Segment | None = None
        self._written = 0
        self._lock = threading.Lock()  # the buffer and the numbers
        self._io = threading.Lock()  # the segment files
        self._buffer: list[bytes] = []
        self._first: tuple[int, datetime] | None = None  # the buffer's first frame
        self._closed = threading.Event()
        self._expire()
        self._flusher = threading.Thread(target=self._run, name="journal", daemon=True)
        self._flusher.start()

    def record(self, kind: str, payload: Any) -> None:
        """Append one event; ``payload`` is encoded now (the caller's values are immutable).

        The journal never stops the engine: a value it cannot encode is written as a ``gap``
        frame naming what was lost (a replay reports it), with an error in the log."""
        now = self.clock.now()
        try:
            body = encode(payload)
        except WireError as error:
            log.error("journal cannot record an event; the journal has a gap", kind=kind,
                      error=str(error))  # fmt: skip
            kind, body = GAP, {"kind": kind, "error": str(error)}
        with self._lock:
            self._seq += 1
            if self._first is None:
                self._first = (self._seq, now)
            self._buffer.append(encode_frame([self._seq, now.isoformat(), kind, body]))

    def flush(self, *, rotate: bool = True) -> None:
        with self._io:
            with self._lock:
                blob, self._buffer = b"".join(self._buffer), []
                first, self._first = self._first, None
            if blob:
                try:
                    self._write(blob, first)
                except NotDurable:
                    self._keep(blob, first)
                    return
        if rotate and self._rotation_due():
            self.rotate()
        elif rotate and self.clock.now() - self._expired >= EXPIRE_EVERY:
            self._expire()

    def _keep(self, blob: bytes, first: tuple[int, datetime] | None) -> None:
        """Frames the disk refused wait, ahead of newer ones, for the next flush."""
        with self._lock:
            pending = len(blob) + sum(len(b) for b in self._buffer)
            if pending > BACKLOG_BYTES:
                log.error("journal frames given up: the disk refused them too long",
                          bytes=len(blob))  # fmt: skip
                return
            self._buffer.insert(0, blob)
            if first is not None:
                self._first = first

    def rotate(self) -> bool:
        """End the segment being written and begin the next with a checkpoint frame; then
        delete the segments past the retention. ``False`` when there is no checkpoint to begin
        with (no engine attached, or the store could not be read: the segment goes on)."""
        make = self.checkpoint
        if make is None:
            return False
        try:
            payload = encode(make())
        except Exception as error:  # the store is closing, say: rotate at the next flush
            log.warning("journal checkpoint not taken; the segment goes on", error=repr(error))
            return False
        with self._io:
            with self._lock:
                blob, self._buffer = b"".join(self._buffer), []
                first, self._first = self._first, None
                self._seq += 1
                seq, now = self._seq, self.clock.now()
                frame = encode_frame([seq, now.isoformat(), CHECKPOINT, payload])
            try:
                if blob:
                    self._write(blob, first)
                    blob, first = b"", None
                self._close_segment()
                self._write(frame, (seq, now))
            except NotDurable:
                self._keep(blob + frame, first or (seq, now))
                return False
        self._expire()
        return True

    def _rotation_due(self) -> bool:
        segment = self._segment
        if segment is None:
            return False
        limit = self.limits.segment_bytes
        if limit and self._written >= limit:
            return True
        return self.clock.now().astimezone(UTC).date() != segment.started.date()

    def _write(self, blob: bytes, first: tuple[int, datetime] | None) -> None:
        """Under ``_io``: append to the segment being written, beginning one if needed."""
        if self._log is None:
            seq, started = first or (self._seq, self.clock.now())
            started = started.astimezone(UTC)
            path = self.path / segment_name(seq, started)
            try:
                self._log = FrameLog(path, self.durability, source="journal")
            except OSError as error:
                if self.durability is not None:
                    self.durability.failed("journal", describe(error))
                raise NotDurable(f"{path.name}: {describe(error)}") from None
            self._segment = Segment(path, seq, started)
            self._written = self._log.size()
        self._log.write_bytes(blob)
        self._written += len(blob)

    def _close_segment(self) -> None:
        if self._log is not None:
            self._log.close()
        self._log, self._segment, self._written = None, None, 0

    def _expire(self) -> None:
        """Delete whole segments past the retention, oldest first; never the one written.
        At each rotation, and every ``EXPIRE_EVERY`` of engine time between."""
        self._expired = self.clock.now()
        limits = self.limits
        segments = list_segments(self.path)
        current = self._segment.path if self._segment is not None else None
        old = [s for s in segments if s.path != current]
        if segments and current is None:
            old = old[:-1]  # the newest stays until a new segment is begun
        doomed: list[Segment] = []
        if limits.retention_days:
            horizon = self.clock.now() - timedelta(days=limits.retention_days)
            ends = {s.path: n.started for s, n in pairwise(segments)}
            doomed = [s for s in old if ends.get(s.path, horizon) < horizon]
        if limits.max_bytes:
            sizes = {s.path: _size(s.path) for s in segments}
            total = sum(sizes.values()) - sum(sizes[s.path] for s in doomed)
            for segment in old:
                if total <= limits.max_bytes:
                    break
                if segment not in doomed:
                    doomed.append(segment)
                    total -= sizes[segment.path]
        for segment in doomed:
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
                log.info("journal segment past its retention deleted", segment=segment.path.name)

    def _run(self) -> None:
        while not self._closed.wait(FLUSH_EVERY_S):
            try:
                self.flush()
            except Exception as error:  # the flusher goes on: the next flush may succeed
                log.error("journal flush failed", error=repr(error))

    def close(self) -> None:
        self._closed.set()
        self._flusher.join(timeout=5)
        self.flush(rotate=False)
        with self._io:
            self._close_segment()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _adopt_single_file(legacy: Path, directory: Path) -> None:
    """An earlier engine's journal, one file, becomes the first segment of ``directory``
    (moved, never copied: a crash half-way leaves it at ``<name>.moving``, taken up next)."""
    moving = legacy.with_name(legacy.name + ".moving")
    if legacy.is_file():
        os.replace(legacy, moving)
    if not moving.is_file():
        return
    directory.mkdir(parents=True, exist_ok=True)
    started = _first_instant(moving) or datetime.fromtimestamp(moving.stat().st_mtime, UTC)
    first = min([s.first_seq for s in list_segments(directory)] + [1])
    os.replace(moving, directory / segment_name(max(first - 1, 0), started))
    log.info("single-file journal moved into the segment directory", path=str(directory))


def _first_instant(path: Path) -> datetime | None:
    """The instant of the first frame of ``path`` (that frame alone is read)."""
    with path.open("rb") as file:
        header = file.read(HEADER.size)
        if len(header) < HEADER.size:
            return None
        length, _ = HEADER.unpack(header)
        data = header + file.read(length)
    try:
        frames, _ = parse_frames(path, data)
        return datetime.fromisoformat(frames[0][1]).astimezone(UTC)
    except (FrameError, IndexError, TypeError, ValueError):
        return None


# --- reading ------------------------------------------------------------------------------------


def journal_files(path: Path) -> list[Path]:
    """The segment files a ``--journal PATH`` names, oldest first: one file, the segments of a
    segment directory, or those of a data directory's journal (``DATA/engine.journal/``, or
    the single file an older engine wrote there)."""
    if path.is_file():
        return [path]
    inside = path / JOURNAL_NAME
    if inside.is_file():
        return [inside]
    for directory in (path, inside):
        segments = list_segments(directory)
        if segments:
            return [s.path for s in segments]
    raise FrameError(f"{path}: no journal there (no segment files {SUFFIX})")


def read_segment(path: Path) -> list[tuple[int, datetime, str, Any]]:
    """Every frame of one file as ``(seq, instant, kind, payload)``; a frame of another shape
    is reported (FrameError) with its position, never trusted."""
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


def iter_journal(path: Path) -> Iterator[tuple[Path, list[tuple[int, datetime, str, Any]]]]:
    """Each segment ``path`` names with its frames, one segment in memory at a time."""
    for file in journal_files(path):
        yield file, read_segment(file)


def read_journal(path: Path) -> list[tuple[int, datetime, str, Any]]:
    """Every frame of the journal at ``path`` (a file or a segment directory), in order."""
    return [frame for _, frames in iter_journal(path) for frame in frames]
