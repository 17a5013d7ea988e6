"""The data directory of a live engine: made if missing, held by one engine at a time, and what
is in it.

One engine per data directory: an exclusive ``flock`` on ``DATA/engine.lock`` refuses a second.
The kernel drops it when the process ends, however it ends, so a stale file never blocks a start.

:func:`history_files` names the files only an engine that ran writes (the intent, fan-out and
status logs, the journal), in the order a backup copies them; a store missing beside them is
refused at start (:func:`check_store_history`) rather than silently made anew (decision 0015).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from datetime import datetime
from pathlib import Path

from engine.storage.durability import DISK_ERRNOS
from engine.storage.frames import HEADER
from engine.storage.journal import list_segments
from engine.storage.store import StoreError, stored_schema

EXIT_REFUSED = 1  # another engine holds the data directory
EXIT_SETUP = 2  # the data directory, the store or the configuration cannot be used
EXIT_NOT_DURABLE = 4  # state cannot be made durable: a full disk, an I/O error (decision 0014)
EXIT_NO_STORE = 5  # the store is missing or empty beside an engine's history
LOCK_FILE = "engine.lock"
URL_FILE = "api.url"  # where the running engine's API listens, for the CLI
STORE_FILE = "engine.sqlite"
STORE_COMPANIONS = ("engine.sqlite-wal", "engine.sqlite-shm", "engine.sqlite-journal")
INTENT_LOG = "engine.intents"
FANOUT_LOG = "engine.fanouts"
STATUS_LOG = "engine.status"
JOURNAL_FILE = "engine.journal"
SET_ASIDE_PREFIX = "set-aside-"  # where --new-store moves an earlier engine's history


class RunError(Exception):
    """The engine cannot start; the message is one line for the user, ``code`` the exit code."""

    def __init__(self, message: str, code: int = EXIT_SETUP) -> None:
        super().__init__(message)
        self.code = code


def prepare_data_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise RunError(f"cannot use data directory {path}: not a directory")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot create data directory {path}: {error.strerror or error}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunError(f"cannot use data directory {path}: not writable")


class DataLock:
    """An exclusive, non-blocking ``flock`` on ``DATA/engine.lock``, held while the engine runs.

    The kernel drops it when the process ends, however it ends, so a stale file never blocks a
    start."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise RunError(
                f"cannot use data directory {self.data_dir}: cannot open {self.path}: "
                f"{error.strerror or error}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunError(
                    f"another engine is running on {self.data_dir}/ ({self._holder()},"
                    f" holding the lock {self.path})",
                    EXIT_REFUSED,
                ) from None
            raise RunError(f"cannot lock {self.path}: {error.strerror or error}") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as error:
            os.close(fd)
            raise RunError(
                f"cannot write {self.path}: {error.strerror or error}",
                EXIT_NOT_DURABLE if error.errno in DISK_ERRNOS else EXIT_SETUP,
            ) from None
        self._fd = fd

    def _holder(self) -> str:
        """The running engine as its lock file names it: the process id it wrote there."""
        return f"process {holder_pid(self.data_dir) or 'id unknown'}"

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor releases the flock


def holder_pid(data_dir: Path) -> int | None:
    """The process id the engine holding ``data_dir`` wrote into its lock file; ``None`` when the
    file is missing, unreadable or not yet written (a start that has the lock but has not
    written its id)."""
    try:
        text = (data_dir / LOCK_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


# --- what is in it -------------------------------------------------------------------------------


def history_files(data_dir: Path) -> list[Path]:
    """The files of ``data_dir`` only an engine that ran writes, those that exist, in the order
    a backup copies them after the store: the fan-out and status logs, the intent log (each is
    written before what the store holds of it, so copied after the store they are at least as
    new as it: the state a kill leaves, which a start recovers from), then the journal's
    segments, oldest first (or the single file an earlier engine wrote)."""
    found = [data_dir / n for n in (FANOUT_LOG, STATUS_LOG, INTENT_LOG) if (data_dir / n).is_file()]
    journal = data_dir / JOURNAL_FILE
    if journal.is_file():
        return [*found, journal]
    return [*found, *(segment.path for segment in list_segments(journal))]


def is_journal(data_dir: Path, path: Path) -> bool:
    """Whether ``path``, one of :func:`history_files`, is (a part of) the journal: kept for
    replays, it holds nothing a start needs."""
    return path.relative_to(data_dir).parts[0] == JOURNAL_FILE


def backup_files(data_dir: Path) -> list[Path]:
    """What a backup of ``data_dir`` holds, in the order it is copied: the store first, then
    :func:`history_files`. Not the API token nor the broker's tokens (secrets: a restored
    engine makes a new API token, a Tradovate connection is authorized again), nor the log."""
    return [data_dir / STORE_FILE, *history_files(data_dir)]


def count_frames(path: Path) -> int:
    """How many whole frames a frame file holds, from their headers alone (nothing decoded)."""
    count = 0
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        offset = 0
        while True:
            header = file.read(HEADER.size)
            if len(header) < HEADER.size:
                return count
            length, _ = HEADER.unpack(header)
            offset += HEADER.size + length
            if offset > size:
                return count
            file.seek(offset)
            count += 1


def _describe(data_dir: Path, history: list[Path]) -> str:
    """What ``history`` holds, in a few words: the intents counted, the rest by size."""
    parts: list[str] = []
    journal = [p for p in history if is_journal(data_dir, p)]
    for path in history:
        if path.name == INTENT_LOG:
            n = count_frames(path)
            parts.insert(0, f"{path.name}: {n} intent{'s' if n != 1 else ''}")
        elif path not in journal:
            parts.append(f"{path.name}: {_size(path.stat().st_size)}")
    if journal:
        size = _size(sum(p.stat().st_size for p in journal))
        segments = f", {len(journal)} segments" if len(journal) > 1 else ""
        parts.append(f"{JOURNAL_FILE}: {size}{segments}")
    return ", ".join(parts)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def check_store_history(data_dir: Path, *, new_store: bool, now: datetime) -> Path | None:
    """Refuse to start on a store that is missing or empty beside an engine's history.

    A start that makes a store anew where an engine ran would trade on a setup re-seeded from
    the configuration or the demo: limits, locks, memberships and positions gone. That is
    refused in one line naming what was found (:data:`EXIT_NO_STORE`). ``new_store`` (``run
    --new-store``) asks for a new store: the earlier history is moved aside, into a folder
    named after ``now``, never deleted; it is refused where a store is in use, so a flag left
    in a service's command line never begins again by itself. A data directory with nothing
    of an engine in it starts as ever. Returns where the history was moved, if it was."""
    store = data_dir / STORE_FILE
    try:
        schema = stored_schema(store)
    except StoreError:
        schema = -1  # not a store at all: opening it says so, in its own words
    history = [p for p in history_files(data_dir) if p.stat().st_size > 0]
    if schema is not None:
        if new_store:
            raise RunError(
                f"--new-store: {store} is a store in use; a new store is made only where the"
                f" store is missing or empty (to begin again anyway, move {data_dir}/ away)"
            )
        return None
    if not history:
        return None
    if not new_store:
        state = "missing" if not store.exists() else "empty"
        found = _describe(data_dir, history)
        raise RunError(
            f"{store} is {state}, but {data_dir}/ holds the history of an engine that ran"
            f" ({found}): restore the store from a backup, or start with --new-store to begin"
            " again (the history is moved aside, not deleted)",
            EXIT_NO_STORE,
        )
    return _set_aside(data_dir, now)


def _set_aside(data_dir: Path, now: datetime) -> Path:
    stamp = now.strftime("%Y%m%dT%H%M%S")
    folder = data_dir / f"{SET_ASIDE_PREFIX}{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = data_dir / f"{SET_ASIDE_PREFIX}{stamp}-{n}"
    try:
        folder.mkdir(mode=0o700)
        names = (FANOUT_LOG, STATUS_LOG, INTENT_LOG, JOURNAL_FILE, STORE_FILE, *STORE_COMPANIONS)
        for name in names:  # the journal whole, file or folder of segments
            if (data_dir / name).exists():
                (data_dir / name).replace(folder / name)
    except OSError as error:
        raise RunError(
            f"--new-store: cannot move the earlier history into {folder}: {error.strerror or error}"
        ) from None
    return folder


def write_url(data_dir: Path, url: str) -> None:
    """Tell the CLI where the API listens (the port may have been chosen by the system)."""
    path = data_dir / URL_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(url + "\n")
    tmp.replace(path)


def read_url(data_dir: Path) -> str | None:
    try:
        text = (data_dir / URL_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def remove_url(data_dir: Path) -> None:
    with contextlib.suppress(OSError):
        (data_dir / URL_FILE).unlink()


__all__ = [
    "EXIT_NOT_DURABLE",
    "EXIT_NO_STORE",
    "EXIT_REFUSED",
    "EXIT_SETUP",
    "FANOUT_LOG",
    "INTENT_LOG",
    "JOURNAL_FILE",
    "LOCK_FILE",
    "STATUS_LOG",
    "STORE_FILE",
    "URL_FILE",
    "DataLock",
    "RunError",
    "backup_files",
    "check_store_history",
    "count_frames",
    "history_files",
    "holder_pid",
    "is_journal",
    "prepare_data_dir",
    "read_url",
    "remove_url",
    "write_url",
]
