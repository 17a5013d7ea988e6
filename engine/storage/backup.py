"""Backups of a data directory, and restoring one into another (decision 0015).

A backup is a directory (mode 0700) of files (mode 0600), the ones
:func:`engine.storage.datadir.backup_files` names:

- the store, copied with SQLite's online backup API: one consistent snapshot, taken while an
  engine writes to it (no lock of the engine's is taken, none of its writes waits) or with no
  engine running;
- then the fan-out, status and intent logs and the journal, copied after the store. Each of
  these logs is written before what the store holds of it, so copies taken after the store's are
  at least as new as it: the state a kill -9 leaves, which a start recovers from (an intent the
  ledger lacks is looked up at the broker, never sent again). Only whole frames are copied;
- ``manifest.json`` (what, sizes, SHA-256 checksums, the store's schema version, when), written
  last: a backup without one is unfinished. ``SHA256SUMS`` lets ``sha256sum -c`` check it by hand.

A log rewritten while it is copied (the engine keeps only what a restart needs, by writing a new
file over the old) could be older than the store's snapshot: each log's file is noted before the
snapshot, and a log that was replaced or shrank meanwhile makes the backup start over.

Restoring checks the manifest and every checksum, then copies the files into a data directory
that holds no engine's data, under its lock (so no engine starts there meanwhile), the store
last: a restore cut short leaves history without a store, which a start refuses.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.storage.datadir import (
    STORE_FILE,
    DataLock,
    RunError,
    backup_files,
    history_files,
    is_journal,
    prepare_data_dir,
)
from engine.storage.frames import HEADER
from engine.storage.store import SCHEMA_VERSION, StoreError, backup_store, stored_schema

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
FORMAT = 1  # the manifest's layout; a restore refuses a newer one
ATTEMPTS = 3  # backups started over when a log is rewritten while it is copied
CHUNK = 1024 * 1024
NOT_INCLUDED = (
    "api.token (a restored engine makes a new one)",
    "broker tokens (a restored Tradovate connection is authorized again)",
    "the engine's log file",
)


class BackupError(Exception):
    """A backup or a restore cannot be done; the message is one line saying why."""


@dataclass(frozen=True)
class BackedUp:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    created_at: str
    schema_version: int
    source: str
    files: tuple[BackedUp, ...]
    engine_version: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "created_at": self.created_at,
            "schema_version": self.schema_version,
            "engine_version": self.engine_version,
            "source": self.source,
            "files": [{"name": f.name, "bytes": f.size, "sha256": f.sha256} for f in self.files],
            "not_included": list(NOT_INCLUDED),
        }


# --- backing up ---------------------------------------------------------------------------------


def take_backup(data_dir: Path, dest: Path, now: datetime, engine_version: str = "") -> Manifest:
    """Back up ``data_dir`` into ``dest``, a new or empty directory."""
    if not (data_dir / STORE_FILE).is_file():
        raise BackupError(f"{data_dir}: no store ({STORE_FILE}) to back up")
    _make_dest(dest)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            files = _copy_all(data_dir, dest)
        except _Rewritten as rewritten:
            _empty(dest)
            if attempt == ATTEMPTS:
                raise BackupError(
                    f"{rewritten.path} was rewritten during each of {ATTEMPTS} attempts; try again"
                ) from None
            continue
        except StoreError as error:
            _empty(dest)
            raise BackupError(str(error)) from None
        except OSError as error:
            _empty(dest)
            raise BackupError(f"the backup into {dest} failed: {_why(error)}") from None
        break
    schema = stored_schema(dest / STORE_FILE)
    manifest = Manifest(
        created_at=now.isoformat(),
        schema_version=schema or 0,
        source=str(data_dir.resolve()),
        files=tuple(files),
        engine_version=engine_version,
    )
    try:
        _write(dest / SUMS, "".join(f"{f.sha256}  {f.name}\n" for f in files).encode())
        _write(dest / MANIFEST, (json.dumps(manifest.as_json(), indent=2) + "\n").encode())
    except OSError as error:
        raise BackupError(f"cannot write the manifest in {dest}: {_why(error)}") from None
    return manifest


class _Rewritten(Exception):
    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def _copy_all(data_dir: Path, dest: Path) -> list[BackedUp]:
    logs = history_files(data_dir)
    before = {path: _identity(path) for path in logs}
    backup_store(data_dir / STORE_FILE, dest / STORE_FILE)
    files = [_digest(dest / STORE_FILE)]
    for path in logs:
        name = path.relative_to(data_dir).as_posix()
        try:
            source = path.open("rb")
        except FileNotFoundError:
            if is_journal(data_dir, path):
                continue  # the journal is for replays: a part dropped meanwhile is left out
            raise _Rewritten(path) from None
        with source:
            identity = before[path]
            stat = os.fstat(source.fileno())
            if identity is not None and (stat.st_ino, stat.st_dev) != identity[:2]:
                raise _Rewritten(path)
            (dest / name).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            size = _copy_frames(source, dest / name)
            if identity is not None and size < identity[2]:
                raise _Rewritten(path)
        files.append(_digest(dest / name, name))
    return files


def _identity(path: Path) -> tuple[int, int, int] | None:
    """The file's inode and device, and the bytes of its whole frames, as they are now."""
    try:
        with path.open("rb") as file:
            stat = os.fstat(file.fileno())
            return stat.st_ino, stat.st_dev, _frames_end(file, stat.st_size)
    except FileNotFoundError:
        return None


def _frames_end(file: Any, size: int) -> int:
    """Where the whole frames among the first ``size`` bytes of ``file`` end (headers only)."""
    offset = 0
    while offset + HEADER.size <= size:
        file.seek(offset)
        length, _ = HEADER.unpack(file.read(HEADER.size))
        if offset + HEADER.size + length > size:
            break
        offset += HEADER.size + length
    return offset


def _copy_frames(source: Any, target: Path) -> int:
    """Copy the whole frames of ``source`` as it is now (a frame being appended is left out, as
    a start would drop it); the bytes copied."""
    size = os.fstat(source.fileno()).st_size
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    copied = 0
    with os.fdopen(fd, "wb") as out:
        for part in _frames(source, size):
            out.write(part)
            copied += len(part)
        out.flush()
        os.fsync(out.fileno())
    return copied


def _frames(file: Any, size: int) -> Iterator[bytes]:
    """The whole frames among the first ``size`` bytes of ``file``, in chunks."""
    file.seek(0)
    offset = buffered = 0
    pending: list[bytes] = []
    while offset + HEADER.size <= size:
        header = file.read(HEADER.size)
        if len(header) < HEADER.size:
            break
        length, _ = HEADER.unpack(header)
        end = offset + HEADER.size + length
        if end > size:
            break  # a frame being written
        body = file.read(length)
        if len(body) < length:
            break
        pending.append(header + body)
        offset = end
        buffered += HEADER.size + length
        if buffered >= CHUNK:
            yield b"".join(pending)
            pending, buffered = [], 0
    if pending:
        yield b"".join(pending)


def _make_dest(dest: Path) -> None:
    try:
        if dest.exists():
            if not dest.is_dir():
                raise BackupError(f"{dest}: not a directory")
            if any(dest.iterdir()):
                raise BackupError(f"{dest}: not empty; a backup goes into a new or empty directory")
        else:
            dest.mkdir(mode=0o700, parents=True)
        os.chmod(dest, 0o700)
    except OSError as error:
        raise BackupError(f"cannot use {dest} for the backup: {_why(error)}") from None


def _empty(dest: Path) -> None:
    """Remove what an attempt copied into ``dest`` (ours alone: it was empty)."""
    for path in sorted(dest.rglob("*"), reverse=True):  # files before their folders
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink(missing_ok=True)


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _digest(path: Path, name: str = "") -> BackedUp:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return BackedUp(name or path.name, size, sha.hexdigest())


def _why(error: OSError) -> str:
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{where}"


# --- restoring ----------------------------------------------------------------------------------


def read_backup(source: Path) -> Manifest:
    """The manifest of the backup in ``source``, every file checked against it."""
    try:
        raw = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(
            f"{source}: no {MANIFEST}: not a backup, or one that did not finish"
        ) from None
    except (OSError, ValueError) as error:
        raise BackupError(f"{source / MANIFEST}: cannot be read: {error}") from None
    try:
        if int(raw["format"]) > FORMAT:
            raise BackupError(
                f"{source / MANIFEST}: format {raw['format']} is newer than this engine's"
                f" ({FORMAT}); restore it with a newer engine"
            )
        files = tuple(
            BackedUp(str(f["name"]), int(f["bytes"]), str(f["sha256"])) for f in raw["files"]
        )
        manifest = Manifest(
            created_at=str(raw["created_at"]),
            schema_version=int(raw["schema_version"]),
            source=str(raw["source"]),
            files=files,
            engine_version=str(raw.get("engine_version", "")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise BackupError(f"{source / MANIFEST}: malformed ({error!r})") from None
    if STORE_FILE not in [f.name for f in files]:
        raise BackupError(f"{source / MANIFEST}: names no {STORE_FILE}")
    for item in files:
        if not _plain(item.name) or item.name in (MANIFEST, SUMS):
            raise BackupError(f"{source / MANIFEST}: names {item.name!r}, not a file of a backup")
        try:
            found = _digest(source / item.name)
        except OSError as error:
            raise BackupError(f"{source}: cannot read {item.name}: {_why(error)}") from None
        if (found.size, found.sha256) != (item.size, item.sha256):
            raise BackupError(
                f"{source / item.name}: does not match the manifest ({found.size} bytes,"
                f" sha256 {found.sha256[:12]}…; expected {item.size} bytes,"
                f" {item.sha256[:12]}…): the backup is damaged"
            )
    if manifest.schema_version > SCHEMA_VERSION:
        raise BackupError(
            f"{source}: the store's schema version {manifest.schema_version} is newer than this"
            f" engine's ({SCHEMA_VERSION}); restore it with a newer engine"
        )
    return manifest


def _plain(name: str) -> bool:
    """A relative path inside the backup (a journal segment may be in a folder of its own)."""
    path = Path(name)
    return bool(path.parts) and not path.is_absolute() and ".." not in path.parts


def restore_backup(source: Path, data_dir: Path) -> Manifest:
    """Copy the backup in ``source`` into ``data_dir``, which must hold no engine's data."""
    manifest = read_backup(source)
    try:
        prepare_data_dir(data_dir)
    except RunError as error:
        raise BackupError(str(error)) from None
    lock = DataLock(data_dir)
    try:
        lock.acquire()
    except RunError as error:
        raise BackupError(f"{error}: stop it before restoring into {data_dir}") from None
    try:
        found = [p.name for p in backup_files(data_dir) if p.exists()]
        if found:
            raise BackupError(
                f"{data_dir}/ already holds an engine's data ({', '.join(found)}); restore into"
                " a new or empty directory, or move those files away first"
            )
        names = [f.name for f in manifest.files if f.name != STORE_FILE] + [STORE_FILE]
        for name in names:  # the store last: a restore cut short is refused at start
            _restore_file(source / name, data_dir / name)
    finally:
        lock.release()
    return manifest


def _restore_file(source: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".restoring")
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            while chunk := src.read(CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot restore {target}: {_why(error)}") from None


__all__ = [
    "MANIFEST",
    "SUMS",
    "BackedUp",
    "BackupError",
    "Manifest",
    "read_backup",
    "restore_backup",
    "take_backup",
]
