"""Reads of the records (S7) for the control API and the replay harness: the activity log,
reconciliations and the order ledger, paged newest first and filtered, and the counts a
scenario's expectations compare.

Every read first waits for the writes queued before it, so it sees what the engine has done so
far. Values come back as the store holds them (times as ISO text, levels and kinds as words).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from engine.storage.store import Store

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Window:
    """Which page of a record: ``since`` ≤ time < ``until``, sequence numbers below
    ``before``, at most ``limit`` entries."""

    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_before: int | None  # pass as ``before`` for the next page; None: this was the last


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    seq: int
    time: str
    level: str
    kind: str
    account: str | None
    connection: str | None
    message: str
    fill: str | None = None  # the leader fill it belongs to, ``LEADER:fill id``


@dataclass(frozen=True, slots=True)
class ReconciliationRecord:
    seq: int
    time: str
    account: str
    connection: str
    cause: str
    before: dict[str, int]
    target: dict[str, int]
    orders: dict[str, int]


@dataclass(frozen=True, slots=True)
class OrderRecord:
    client_order_id: str
    account: str
    connection: str
    symbol: str
    qty: int
    order_type: str
    kind: str
    cause: str
    status: str
    reason: str
    created_at: str
    updated_at: str


def _where(
    filters: Mapping[str, str | None], window: Window, *, time: str, seq: str
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in filters.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if window.since is not None:
        clauses.append(f"{time} >= ?")
        params.append(window.since.isoformat())
    if window.until is not None:
        clauses.append(f"{time} < ?")
        params.append(window.until.isoformat())
    if window.before is not None:
        clauses.append(f"{seq} < ?")
        params.append(window.before)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _positions(text: str) -> dict[str, int]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _activity(row: Mapping[str, Any]) -> ActivityRecord:
    return ActivityRecord(
        seq=row["seq"],
        time=row["time"],
        level=row["level"],
        kind=row["kind"],
        account=row["account"],
        connection=row["connection"],
        message=row["message"],
        fill=row["fill"],
    )


class Queries:
    """The records of one store, read-only."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[Any]:
        self._store.caught_up()  # while the disk refuses writes: what is committed so far
        return self._store.query(sql, params)

    # -- pages (newest first) ----------------------------------------------------------------------

    def activity(
        self,
        window: Window,
        *,
        account: str | None = None,
        connection: str | None = None,
        level: str | None = None,
        kind: str | None = None,
        fill: str | None = None,
    ) -> Page[ActivityRecord]:
        """The activity log (S7.1); ``fill``: the entries of one leader fill (``LEADER:fill
        id``) — the leader's own and each follower's copy, skip or rejection it caused."""
        filters = {
            "account": account,
            "connection": connection,
            "level": level,
            "kind": kind,
            "fill": fill,
        }
        where, params = _where(filters, window, time="time", seq="seq")
        rows = self._query(
            f"SELECT * FROM activity{where} ORDER BY seq DESC LIMIT ?", [*params, window.limit + 1]
        )
        items = [_activity(r) for r in rows[: window.limit]]
        more = len(rows) > window.limit
        return Page(items, items[-1].seq if more else None)

    def reconciliations(
        self, window: Window, *, account: str | None = None
    ) -> Page[ReconciliationRecord]:
        """Reconciliation records (S3.3)."""
        where, params = _where({"account": account}, window, time="time", seq="seq")
        rows = self._query(
            f"SELECT * FROM reconciliations{where} ORDER BY seq DESC LIMIT ?",
            [*params, window.limit + 1],
        )
        items = [
            ReconciliationRecord(
                seq=r["seq"],
                time=r["time"],
                account=r["account"],
                connection=r["connection"],
                cause=r["cause"],
                before=_positions(r["before"]),
                target=_positions(r["target"]),
                orders=_positions(r["orders"]),
            )
            for r in rows[: window.limit]
        ]
        more = len(rows) > window.limit
        return Page(items, items[-1].seq if more else None)

    def orders(
        self, window: Window, *, account: str | None = None, status: str | None = None
    ) -> Page[OrderRecord]:
        """The order ledger (S2.6), by the order it was written in."""
        filters = {"account": account, "status": status}
        where, params = _where(filters, window, time="created_at", seq="rowid")
        rows = self._query(
            f"SELECT rowid AS seq, * FROM orders{where} ORDER BY rowid DESC LIMIT ?",
            [*params, window.limit + 1],
        )
        items = [
            OrderRecord(
                client_order_id=r["client_order_id"],
                account=r["account"],
                connection=r["connection"],
                symbol=r["symbol"],
                qty=r["qty"],
                order_type=r["order_type"],
                kind=r["kind"],
                cause=r["cause"],
                status=r["status"],
                reason=r["reason"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
            )
            for r in rows[: window.limit]
        ]
        more = len(rows) > window.limit
        return Page(items, rows[window.limit - 1]["seq"] if more else None)

    # -- one account ------------------------------------------------------------------------------

    def orders_sent(self, account: str) -> int:
        """How many orders the ledger holds for ``account``."""
        rows = self._query("SELECT count(*) FROM orders WHERE account = ?", (account,))
        return int(rows[0][0])

    def reconciliation_count(self, account: str) -> int:
        rows = self._query("SELECT count(*) FROM reconciliations WHERE account = ?", (account,))
        return int(rows[0][0])

    def last_message(self, account: str, kind: str) -> str | None:
        """The message of the account's newest activity entry of ``kind`` (None: none yet)."""
        rows = self._query(
            "SELECT message FROM activity WHERE account = ? AND kind = ? ORDER BY seq DESC LIMIT 1",
            (account, kind),
        )
        return str(rows[0][0]) if rows else None

    def activity_of(self, account: str, level: str | None = None) -> list[ActivityRecord]:
        """Every activity entry of ``account`` (of ``level`` only, if given), oldest first."""
        sql = "SELECT * FROM activity WHERE account = ?"
        params: list[Any] = [account]
        if level is not None:
            sql += " AND level = ?"
            params.append(level)
        return [_activity(r) for r in self._query(sql + " ORDER BY seq", params)]


__all__ = [
    "ActivityRecord",
    "OrderRecord",
    "Page",
    "Queries",
    "ReconciliationRecord",
    "Window",
]
