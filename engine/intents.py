"""The intent log: every order is written here, durably, before it is sent (S2.6).

An append-only file of length-prefixed, checksummed msgpack frames, written with one ``write``
system call per batch of orders from the thread that sends them. Once ``write`` returns the
bytes belong to the operating system, so a crash of the engine process cannot lose them — the
same guarantee SQLite gives in WAL mode with ``synchronous = NORMAL``, at a few microseconds
instead of a cross-thread commit (docs/decisions/0002-intent-log.md). The SQLite order ledger is
written behind it; on restart the two are compared and any intent the ledger lacks is resolved
with the broker by its client order id, never re-sent blindly.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgpack

HEADER = struct.Struct(">II")  # payload length, crc32 of the payload


class IntentLogError(Exception):
    """The intent log is corrupt somewhere other than a torn last frame."""


def encode_frame(payload: Any) -> bytes:
    body: bytes = msgpack.packb(payload, use_bin_type=True)
    return HEADER.pack(len(body), zlib.crc32(body)) + body


def read_frames(path: Path) -> tuple[list[Any], int]:
    """Every whole frame in ``path`` and the offset just after the last good one.

    A torn last frame (a crash mid-write) ends the log; a bad frame followed by more data is
    corruption and raises :class:`IntentLogError` naming the offset."""
    data = path.read_bytes() if path.exists() else b""
    frames: list[Any] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < HEADER.size:
            break
        length, crc = HEADER.unpack_from(data, offset)
        start, end = offset + HEADER.size, offset + HEADER.size + length
        if end > len(data):
            break
        body = data[start:end]
        if zlib.crc32(body) != crc:
            if end == len(data):
                break
            raise IntentLogError(f"{path}: corrupt frame at byte {offset} (checksum mismatch)")
        frames.append(msgpack.unpackb(body, raw=False))
        offset = end
    return frames, offset


class IntentLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        _, good = read_frames(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.ftruncate(self._fd, good)  # drop a torn last frame
        os.lseek(self._fd, good, os.SEEK_SET)
        self._lock = threading.Lock()

    def append(self, records: Sequence[Any]) -> None:
        """Write a batch of intents in one system call; returns once the OS has them."""
        blob = b"".join(encode_frame(record) for record in records)
        with self._lock:
            written = os.write(self._fd, blob)
            while written < len(blob):
                written += os.write(self._fd, blob[written:])

    def __iter__(self) -> Iterator[Any]:
        frames, _ = read_frames(self.path)
        return iter(frames)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
