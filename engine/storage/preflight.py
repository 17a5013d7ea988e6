"""What a start checks of its data directory before it writes there: that only its owner can
read it, and that its disk has room.

The data directory holds the API token, the broker's tokens and every order and position, so
it is made 0700 and every file in it 0600; a directory or file an older engine (or a copy)
left readable by others is tightened at the start, with one ``info`` line naming what changed.

A start on a disk without room would fail half-way through its recovery; it is refused up front
in one line instead (:data:`EXIT_NOT_DURABLE`, decision 0014).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.storage.datadir import EXIT_NOT_DURABLE, RunError
from engine.storage.durability import DRILL, describe

START_ROOM_BYTES = 4 * 1024 * 1024  # free space a start needs (the store's recovery, the logs)
PRIVATE = 0o077  # the bits no one but the owner may have


def tighten(data_dir: Path) -> list[str]:
    """Take group and other permissions off ``data_dir`` and everything in it (symbolic links
    are left alone, never followed). Returns what changed, relative to ``data_dir``."""
    changed: list[str] = []

    def private(path: Path, name: str) -> None:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return
        if stat.S_ISLNK(mode) or not mode & PRIVATE:
            return
        os.chmod(path, stat.S_IMODE(mode) & ~PRIVATE)
        changed.append(name)

    private(data_dir, ".")
    for root, dirs, files in os.walk(data_dir):
        base = Path(root)
        for name in [*dirs, *files]:
            path = base / name
            private(path, str(path.relative_to(data_dir)))
    return changed


def check_room(data_dir: Path, needed: int = START_ROOM_BYTES) -> None:
    """Refuse a start where ``data_dir``'s disk has less than ``needed`` bytes free."""
    try:
        DRILL.check(str(data_dir))
        info = os.statvfs(data_dir)
    except OSError as error:
        raise RunError(
            f"cannot start: {data_dir}/ takes no writes ({describe(error)}); free space on its"
            " disk and start again",
            EXIT_NOT_DURABLE,
        ) from None
    free = info.f_bavail * info.f_frsize
    if free < needed:
        raise RunError(
            f"cannot start: the disk of {data_dir}/ is full ({free // 1024} KiB free, a start"
            f" needs {needed // (1024 * 1024)} MiB); free space on it and start again",
            EXIT_NOT_DURABLE,
        )


__all__ = ["START_ROOM_BYTES", "check_room", "tighten"]
