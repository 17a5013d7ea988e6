"""``python -m engine export --from DATE --to DATE --format csv|jsonl [--account ID] [--out FILE]``.

Writes the order ledger, the fills and the activity log of a range of trading days (S10.5) in
time order, read from a data directory's store read-only — while its engine runs, or with none
(:mod:`engine.storage.export`). ``--from`` and ``--to`` are trading days as the reports count
them (the day that ends at the 17:00 America/Chicago reset, S5.8), both included. CSV has one
header row and the columns of :data:`~engine.storage.export.COLUMNS`; JSONL one object per
line with the same keys. Records are streamed: memory stays the same whatever the range.

Exit codes: 0 done, 1 the store could not be read to the end (one line says why), 2 the command
line is wrong (a bad date, ``--from`` after ``--to``, an unknown account, no store there).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from engine.domain.reports import days_window
from engine.storage.datadir import STORE_FILE
from engine.storage.export import COLUMNS, ExportError, Record, known_account, open_read_only
from engine.storage.export import records as read_records

COMMAND = "export"
EXIT_FAILED, EXIT_USAGE = 1, 2
FORMATS = ("csv", "jsonl")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def add_commands(commands: Any) -> None:
    """Add ``export`` to ``python -m engine``'s sub-parsers."""
    p = commands.add_parser(
        COMMAND,
        help="write the order ledger, fills and activity of a range of trading days (csv or jsonl)",
        description="Trading days end at 17:00 America/Chicago (the daily reset); --from and "
        "--to are both included. Reads the store read-only: safe while the engine runs.",
    )
    p.add_argument("--from", dest="first", required=True, metavar="DATE",
                   help="the first trading day, YYYY-MM-DD")  # fmt: skip
    p.add_argument("--to", dest="last", metavar="DATE",
                   help="the last trading day, YYYY-MM-DD (default: --from)")  # fmt: skip
    p.add_argument("--format", choices=FORMATS, default="csv", help="csv (default) or jsonl")
    p.add_argument("--account", metavar="ID", help="only this account's records")
    p.add_argument("--out", metavar="FILE", help="write here instead of to standard output")
    p.add_argument("--data-dir", default="data", help="the engine's data directory (./data)")


class _Usage(Exception):
    """A wrong command line: exit status 2 with this message."""


def _day(text: str, option: str) -> date:
    try:
        if not _DATE.match(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise _Usage(f"{option}: expected a date as YYYY-MM-DD (got {text!r})") from None


def write_csv(rows: Iterable[Record], out: TextIO) -> Counter[str]:
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    return _write(rows, writer.writerow)


def write_jsonl(rows: Iterable[Record], out: TextIO) -> Counter[str]:
    return _write(rows, lambda row: out.write(json.dumps(row, ensure_ascii=False) + "\n"))


def _write(rows: Iterable[Record], write: Any) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in rows:
        write(row)
        counts[row["record"]] += 1
    return counts


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    try:
        return _export(args, out or sys.stdout)
    except _Usage as error:
        print(f"export: {error}", file=sys.stderr)
        return EXIT_USAGE


def _export(args: argparse.Namespace, stdout: TextIO) -> int:
    first = _day(args.first, "--from")
    last = first if args.last is None else _day(args.last, "--to")
    if last < first:
        raise _Usage(f"--from {first.isoformat()} is after --to {last.isoformat()}")
    start, end = days_window(first, last)
    store = Path(args.data_dir) / STORE_FILE
    write = write_csv if args.format == "csv" else write_jsonl
    try:
        with open_read_only(store) as conn:
            if args.account is not None and not known_account(conn, args.account):
                raise _Usage(f"--account: no account {args.account!r} in {store}")
            rows = read_records(conn, start, end, args.account)
            if args.out is None:
                counts = write(rows, stdout)
            else:
                counts = _to_file(Path(args.out), rows, write)
    except ExportError as error:
        raise _Usage(str(error)) from None
    except sqlite3.Error as error:
        print(f"export: {store}: the store could not be read: {error}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:
        print(f"export: {args.out}: cannot write: {error.strerror or error}", file=sys.stderr)
        return EXIT_FAILED
    what = (
        f"{counts['order']} orders, {counts['fill']} fills, {counts['activity']} activity entries"
    )
    where = "" if args.out is None else f" to {args.out}"
    print(
        f"exported {what}{where}: trading days {first.isoformat()} to {last.isoformat()} "
        f"({start.isoformat()} to {end.isoformat()})",
        file=sys.stderr,
    )
    return 0


def _to_file(path: Path, rows: Iterable[Record], write: Any) -> Counter[str]:
    """Written beside ``path`` and moved there once complete: a failed export leaves no
    half-written file under its name. Anything but a file (a pipe, ``/dev/null``) is written
    to as it is."""
    if path.exists() and not path.is_file():
        with path.open("w", encoding="utf-8", newline="") as out:
            written: Counter[str] = write(rows, out)
        return written
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            counts: Counter[str] = write(rows, out)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return counts


__all__ = ["COMMAND", "add_commands", "main", "write_csv", "write_jsonl"]
