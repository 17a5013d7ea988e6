"""``python -m engine backup DEST`` and ``python -m engine restore SRC --data-dir DIR``.

``backup`` copies a data directory's store (SQLite's online backup API: an engine may be running
on it, or none), its intent, fan-out and status logs and its journal into ``DEST`` with a
manifest (:mod:`engine.storage.backup`). ``restore`` checks a backup against its manifest and
copies it into a data directory that holds no engine's data; an engine started there goes on
from it.

Exit codes: 0 done, 1 the backup or the restore failed (one line says why), 2 the command line
is wrong.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from brokers.clock import WallClock
from engine.storage.backup import MANIFEST, BackupError, Manifest, restore_backup, take_backup

EXIT_FAILED = 1
COMMANDS = ("backup", "restore")


def add_commands(commands: Any) -> None:
    """Add ``backup`` and ``restore`` to ``python -m engine``'s sub-parsers."""
    p = commands.add_parser(
        "backup", help="back up a data directory (while its engine runs, or not)"
    )
    p.add_argument("dest", metavar="DEST", help="a new or empty directory for the backup")
    p.add_argument("--data-dir", default="data", help="the data directory to back up (./data)")

    p = commands.add_parser("restore", help="restore a backup into a new data directory")
    p.add_argument("source", metavar="SRC", help="a directory written by backup")
    p.add_argument(
        "--data-dir", required=True, help="where to restore it: new, or holding no engine's data"
    )


def _version() -> str:
    try:
        return metadata.version("mimik-engine")
    except metadata.PackageNotFoundError:
        return ""


def _size(n: int) -> str:
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def _files(manifest: Manifest) -> str:
    return ", ".join(f"{f.name} ({_size(f.size)})" for f in manifest.files)


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        if args.command == "backup":
            dest, data_dir = Path(args.dest), Path(args.data_dir)
            manifest = take_backup(data_dir, dest, WallClock().now(), _version())
            out.write(
                f"backed up {data_dir}/ into {dest}/ (store schema {manifest.schema_version}):"
                f" {_files(manifest)}; checksums in {dest / MANIFEST}\n"
            )
        else:
            source, data_dir = Path(args.source), Path(args.data_dir)
            manifest = restore_backup(source, data_dir)
            out.write(
                f"restored the backup of {manifest.created_at} into {data_dir}/:"
                f" {_files(manifest)}; start the engine with --data-dir {data_dir}\n"
            )
    except BackupError as error:
        print(error, file=sys.stderr)
        return EXIT_FAILED
    return 0


__all__ = ["COMMANDS", "add_commands", "main"]
