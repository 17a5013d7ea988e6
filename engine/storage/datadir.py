"""The data directory of a live engine: made if missing, and held by one engine at a time.

One engine per data directory: an exclusive ``flock`` on ``DATA/engine.lock`` refuses a second.
The kernel drops it when the process ends, however it ends, so a stale file never blocks a start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

EXIT_REFUSED = 1  # another engine holds the data directory
EXIT_SETUP = 2  # the data directory, the store or the configuration cannot be used
LOCK_FILE = "engine.lock"
URL_FILE = "api.url"  # where the running engine's API listens, for the CLI


class RunError(Exception):
    """The engine cannot start; the message is one line for the user, ``code`` the exit code."""

    def __init__(self, message: str, code: int = EXIT_SETUP) -> None:
        super().__init__(message)
        self.code = code


def prepare_data_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise RunError(f"cannot use data directory {path}: not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
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
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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
                    f"another engine is running on {self.data_dir}/ (lock {self.path} held)",
                    EXIT_REFUSED,
                ) from None
            raise RunError(f"cannot lock {self.path}: {error.strerror or error}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor releases the flock


def write_url(data_dir: Path, url: str) -> None:
    """Tell the CLI where the API listens (the port may have been chosen by the system)."""
    path = data_dir / URL_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(url + "\n", encoding="utf-8")
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
    "EXIT_REFUSED",
    "EXIT_SETUP",
    "LOCK_FILE",
    "URL_FILE",
    "DataLock",
    "RunError",
    "prepare_data_dir",
    "read_url",
    "remove_url",
    "write_url",
]
