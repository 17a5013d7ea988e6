"""Length-prefixed, checksummed msgpack frames: the on-disk form of the intent log and the
journal.

A frame is ``length (4 bytes) · crc32 (4 bytes) · msgpack payload``. Reading stops cleanly at a
torn last frame (a crash in the middle of a write) and the file is truncated there when it is
opened for appending, with a warning naming the file and the byte; a bad frame with more data
after it is corruption, reported with its offset, never skipped silently.

A log that keeps only what a restart still needs is rewritten in place by
:meth:`FrameLog.rewrite`: the frames to keep go to a new file, which is flushed to disk and
renamed over the old one, so a crash at any point leaves either the old file or the new one,
whole (decision 0013).
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgpack
import structlog

from engine.storage.durability import DRILL, PROBE_BYTES, Durability, NotDurable, describe

log = structlog.get_logger("engine.storage.frames")

HEADER = struct.Struct(">II")  # payload length, crc32 of the payload


class FrameError(Exception):
    """A frame file is corrupt somewhere other than a torn last frame."""


def encode_frame(payload: Any) -> bytes:
    body: bytes = msgpack.packb(payload, use_bin_type=True)
    return HEADER.pack(len(body), zlib.crc32(body)) + body


def read_frames(path: Path) -> tuple[list[Any], int]:
    """Every whole frame in ``path`` and the offset just after the last good one."""
    data = path.read_bytes() if path.exists() else b""
    return parse_frames(path, data)


def parse_frames(path: Path, data: bytes) -> tuple[list[Any], int]:
    """Every whole frame in ``data`` (the bytes of ``path``) and the offset after the last."""
    frames: list[Any] = []
    offset = 0
    while len(data) - offset >= HEADER.size:
        length, crc = HEADER.unpack_from(data, offset)
        start, end = offset + HEADER.size, offset + HEADER.size + length
        if end > len(data):
            break  # torn last frame
        body = data[start:end]
        if zlib.crc32(body) != crc:
            if end == len(data):
                break  # a torn last frame can also be a short write of its body
            raise FrameError(f"{path}: corrupt frame at byte {offset} (checksum mismatch)")
        try:
            frames.append(msgpack.unpackb(body, raw=False))
        except (ValueError, msgpack.exceptions.ExtraData) as error:
            raise FrameError(f"{path}: undecodable frame at byte {offset}: {error}") from None
        offset = end
    return frames, offset


class FrameLog:
    """An append-only frame file; ``append`` writes a batch with one system call.

    A write the disk refuses (full, an I/O error) leaves the file as it was before it — the
    bytes of it that did land are cut off again, so a later write never follows a torn frame —
    marks the file failing with ``durability`` and raises :class:`NotDurable`."""

    def __init__(self, path: Path, durability: Durability | None = None, source: str = "") -> None:
        self.path = path
        self.durability = durability
        self.source = source or path.name  # what ``durability`` calls it
        _, good = read_frames(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        size = os.fstat(self._fd).st_size
        if size > good:
            log.warning("torn last frame dropped", file=str(path), offset=good, bytes=size - good)
        os.ftruncate(self._fd, good)  # drop a torn last frame
        os.lseek(self._fd, good, os.SEEK_SET)
        self._lock = threading.Lock()
        self._failing = durability is not None and self.source in durability.failing()
        if durability is not None:
            durability.watch(self.source, self.probe)

    def append(self, records: Sequence[Any]) -> None:
        self.write_bytes(b"".join(encode_frame(record) for record in records))

    def write_bytes(self, blob: bytes) -> None:
        """Returns once the OS has the bytes (they survive a crash of this process); raises
        :class:`NotDurable` when it could not give them all, having written none of them."""
        with self._lock:
            if self._fd < 0:
                raise FrameError(f"{self.path}: closed")
            written = 0
            try:
                DRILL.check(self.source)
                written = os.write(self._fd, blob)
                while written < len(blob):
                    written += os.write(self._fd, blob[written:])
                error: OSError | None = None
            except OSError as failure:
                error = failure
                if written:  # the part that landed goes again
                    self._cut(back=written)
            was_failing, self._failing = self._failing, error is not None
        if error is not None:
            why = describe(error)
            if self.durability is not None:
                self.durability.failed(self.source, why)
            raise NotDurable(f"{self.path.name}: {why}")
        if was_failing and self.durability is not None:
            self.durability.recovered(self.source)

    def _cut(self, *, back: int = 0, end: int | None = None) -> None:
        """Drop the last ``back`` bytes a failed write left, or all after ``end`` (a best
        effort: shrinking a file needs no space)."""
        try:
            if end is None:
                end = os.lseek(self._fd, 0, os.SEEK_CUR) - back
            os.ftruncate(self._fd, end)
            os.lseek(self._fd, end, os.SEEK_SET)
        except OSError as error:
            log.error("cannot cut a failed write off", file=str(self.path), error=repr(error))

    def probe(self) -> None:
        """Whether the file takes :data:`PROBE_BYTES` more (raises ``OSError`` if not); the
        space is given back at once."""
        with self._lock:
            if self._fd < 0:
                return
            end = os.lseek(self._fd, 0, os.SEEK_CUR)
            try:
                DRILL.check(self.source)
                os.posix_fallocate(self._fd, end, PROBE_BYTES)
            finally:
                self._cut(end=end)
            self._failing = False

    def size(self) -> int:
        """The bytes written so far."""
        with self._lock:
            return os.lseek(self._fd, 0, os.SEEK_CUR) if self._fd >= 0 else 0

    def rewrite(self, keep: Callable[[list[Any]], Sequence[Any]]) -> tuple[int, int]:
        """Replace the file by ``keep(frames)`` followed by whatever was appended meanwhile,
        atomically: a new file is written, flushed to disk and renamed over this one. Appends
        wait only for the short final step. Returns the sizes before and after."""
        with self._lock:
            if self._fd < 0:
                raise FrameError(f"{self.path}: closed")
            end = os.lseek(self._fd, 0, os.SEEK_CUR)
        with self.path.open("rb") as source:
            data = source.read(end)
        frames, good = parse_frames(self.path, data)
        if good != end:
            raise FrameError(f"{self.path}: a frame cut short at byte {good} before the end")
        body = b"".join(encode_frame(frame) for frame in keep(frames))
        tmp = self.path.with_name(self.path.name + ".rewrite")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, body)
            with self._lock:
                if self._fd < 0:
                    raise FrameError(f"{self.path}: closed")
                now = os.lseek(self._fd, 0, os.SEEK_CUR)
                if now > end:  # appended while the kept frames were chosen: kept as they are
                    with self.path.open("rb") as source:
                        source.seek(end)
                        _write_all(fd, source.read(now - end))
                os.fsync(fd)
                os.replace(tmp, self.path)
                _fsync_dir(self.path.parent)
                old, self._fd = self._fd, fd
                fd = -1
                os.close(old)
                size = os.lseek(self._fd, 0, os.SEEK_END)
        finally:
            if fd >= 0:
                os.close(fd)
                tmp.unlink(missing_ok=True)
        return end, size

    def truncate(self) -> None:
        """Empty the file (what it held is kept elsewhere now)."""
        with self._lock:
            if self._fd < 0:
                raise FrameError(f"{self.path}: closed")
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        if self.durability is not None:
            self.durability.unwatch(self.source)


def _write_all(fd: int, blob: bytes) -> None:
    view = memoryview(blob)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
