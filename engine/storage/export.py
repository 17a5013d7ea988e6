"""S10.5: the order ledger, the fills and the activity log of a time range, read from a store
file read-only and merged into one stream in time order — for ``python -m engine export``.

The store is opened read-only (``mode=ro``): an engine may be running on it (in WAL mode a
reader and the writer never wait for each other) or none. The three tables are read in one
read transaction, so the export is one consistent snapshot, each by its time index and a batch
at a time, and merged with :func:`heapq.merge`: a year of records is exported in the memory of
a few batches. Every record becomes the same fixed set of fields (:data:`COLUMNS`); what each
means per record type is in docs/operations.md ("Reports and export").
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.domain.order_ids import kind_of, label
from engine.storage.store import StoreError, stored_schema

FILLS_SCHEMA = 8  # the first store schema with the fills table
BATCH = 1000  # rows fetched at a time from each table

COLUMNS = (
    "time",
    "record",
    "account",
    "connection",
    "symbol",
    "side",
    "qty",
    "price",
    "order_id",
    "fill_id",
    "kind",
    "level",
    "status",
    "cause",
    "commission",
    "message",
)
Record = dict[str, str]

_ORDERS = (
    "SELECT created_at, rowid, account, connection, symbol, qty, client_order_id, kind,"
    " status, cause, reason FROM orders WHERE created_at >= ? AND created_at < ?{account}"
    " ORDER BY created_at, rowid"
)
_FILLS = (
    "SELECT time, seq, account, connection, symbol, qty, price, client_order_id, fill_id,"
    " commission FROM fills WHERE time >= ? AND time < ?{account} ORDER BY time, seq"
)
_ACTIVITY = (
    "SELECT time, seq, account, connection, kind, level, fill, message FROM activity"
    " WHERE time >= ? AND time < ?{account} ORDER BY time, seq"
)


class ExportError(Exception):
    """The export cannot be made: the message says which file or account and why."""


def _side(qty: int) -> str:
    return "buy" if qty > 0 else "sell"


def _blank() -> Record:
    return dict.fromkeys(COLUMNS, "")


def _order(row: Any) -> Record:
    record = _blank()
    qty = int(row[5])
    record.update(
        time=row[0], record="order", account=row[2], connection=row[3], symbol=row[4],
        side=_side(qty), qty=str(abs(qty)), order_id=row[6], kind=row[7], status=row[8],
        cause=row[9], message=row[10],
    )  # fmt: skip
    return record


def _fill(row: Any) -> Record:
    record = _blank()
    qty = int(row[5])
    record.update(
        time=row[0], record="fill", account=row[2], connection=row[3], symbol=row[4],
        side=_side(qty), qty=str(abs(qty)), price=row[6], order_id=row[7] or "",
        fill_id=row[8], kind=label(kind_of(row[7])), commission=row[9],
    )  # fmt: skip
    return record


def _activity(row: Any) -> Record:
    record = _blank()
    record.update(
        time=row[0], record="activity", account=row[2] or "", connection=row[3] or "",
        kind=row[4], level=row[5], cause=row[6] or "", message=row[7],
    )  # fmt: skip
    return record


def _batches(cursor: sqlite3.Cursor, rank: int) -> Iterator[tuple[str, int, int, Any]]:
    """The cursor's rows a batch at a time, keyed for the merge: time, then ledger before
    fills before activity at the same instant, then the order written."""
    while True:
        rows = cursor.fetchmany(BATCH)
        if not rows:
            return
        for row in rows:
            yield row[0], rank, int(row[1]), row


@contextmanager
def open_read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """The store at ``path``, read-only; :class:`ExportError` when there is none, it is not
    an engine store, or it predates the fills table."""
    try:
        version = stored_schema(path)
    except StoreError as error:
        raise ExportError(str(error)) from None
    if version is None:
        raise ExportError(f"{path}: no store there (missing, or empty)")
    if version < FILLS_SCHEMA:
        raise ExportError(
            f"{path}: store schema {version} has no fills table; start this engine on it once "
            "to upgrade it"
        )
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as error:
        raise ExportError(f"{path}: cannot open the store: {error}") from None
    with closing(conn):
        yield conn


def known_account(conn: sqlite3.Connection, account: str) -> bool:
    """Whether ``account`` is in the store's setup or any of its records (a deleted account's
    records stay)."""
    for sql in (
        "SELECT 1 FROM accounts WHERE id = ?",
        "SELECT 1 FROM orders WHERE account = ? LIMIT 1",
        "SELECT 1 FROM activity WHERE account = ? LIMIT 1",
        "SELECT 1 FROM fills WHERE account = ? LIMIT 1",  # no index by account: last
    ):
        if conn.execute(sql, (account,)).fetchone() is not None:
            return True
    return False


def records(
    conn: sqlite3.Connection, start: datetime, end: datetime, account: str | None = None
) -> Iterator[Record]:
    """Every order (by when it was sent), fill and activity entry with ``start`` ≤ time <
    ``end`` (of ``account`` only, if given), in time order, as :data:`COLUMNS` fields."""
    where = "" if account is None else " AND account = ?"
    params: tuple[str, ...] = (start.isoformat(), end.isoformat())
    if account is not None:
        params = (*params, account)
    conn.execute("BEGIN")  # one snapshot for the three reads
    try:
        streams = [
            _batches(conn.execute(sql.format(account=where), params), rank)
            for rank, sql in enumerate((_ORDERS, _FILLS, _ACTIVITY))
        ]
        shape = (_order, _fill, _activity)
        for _, rank, _, row in heapq.merge(*streams, key=lambda item: item[:3]):
            yield shape[rank](row)
    finally:
        conn.execute("COMMIT")


__all__ = ["COLUMNS", "ExportError", "Record", "known_account", "open_read_only", "records"]
