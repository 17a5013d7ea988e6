"""Full disks for tests, two ways.

``SmallDisk``: a tmpfs of a few MB mounted in the test's directory, filled with a file of zeros
until the kernel says ``ENOSPC`` and emptied by deleting it — the real thing. Mounting needs
root (or a CI that allows it); where it is refused the test is skipped, saying why.

``Drill``: the engine's own fire drill (``MIMIK_DISK_FULL_FLAG``): while the flag file exists,
every write of the store and of the frame logs fails as on a full disk. It runs anywhere.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.storage.durability import DRILL_ENV


class SmallDisk:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def fill(self) -> None:
        """Write zeros until the disk refuses another byte."""
        with self.filler.open("ab", buffering=0) as out:
            for size in (64 * 1024, 4096, 512):
                block = b"\0" * size
                try:
                    while True:
                        out.write(block)
                except OSError as error:
                    assert error.errno == errno.ENOSPC, error

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def env(self) -> dict[str, str]:
        return {}


class Drill:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.flag = root.parent / f"{root.name}.full"

    def fill(self) -> None:
        self.flag.touch()

    def free(self) -> None:
        self.flag.unlink(missing_ok=True)

    def env(self) -> dict[str, str]:
        return {DRILL_ENV: str(self.flag)}


Disk = SmallDisk | Drill


@contextmanager
def small_disk(root: Path, size: str = "32m") -> Iterator[SmallDisk]:
    """A tmpfs of ``size`` at ``root`` for the test's duration (skipped where not allowed)."""
    root.mkdir(parents=True, exist_ok=True)
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the drill variant covers the same path")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the drill runs instead")
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True, check=False)


@contextmanager
def disk(kind: str, root: Path, size: str = "32m") -> Iterator[Disk]:
    if kind == "tmpfs":
        with small_disk(root, size) as found:
            yield found
        return
    root.mkdir(parents=True, exist_ok=True)
    drill = Drill(root)
    try:
        yield drill
    finally:
        drill.free()
