"""The export's reading of a store (S10.5): read-only beside a running store's writer, the ledger,
fills and activity merged in time order (at one instant: the order, its fill, then the entry),
one account's only, and a clear refusal of a file that is no store."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.base import Fill
from brokers.clock import VirtualClock
from engine.domain.activity import Kind, Level
from engine.domain.ledger import LedgerRow
from engine.storage.export import ExportError, known_account, open_read_only, records
from engine.storage.records import Records
from engine.storage.store import Store

START = datetime(2026, 1, 6, 15, tzinfo=UTC)
END = START + timedelta(hours=1)


def test_s10_5_records_merge_in_time_order_while_the_store_is_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "engine.sqlite")
    clock = VirtualClock(START)
    written = Records(store, clock)
    try:
        written.activity(Level.INFO, Kind.STATE_CHANGE, "connected", connection="f1")
        clock.advance(timedelta(seconds=1))
        row = LedgerRow("C1-1", "F1", "f1", "ESH6", -2, "market", "copy", "LEAD:7")
        written.fill(Fill("f1", "F1", "x1", "B1", "C1-1", "ESH6", -2, Decimal("5000.5"),
                          clock.now(), True), Decimal(0))  # fmt: skip
        written.activity(Level.INFO, Kind.COPY, "fill -2 ESH6", account="F1", fill="LEAD:7")
        assert written.orders_sending([row])  # written last, at the same instant: first
        written.activity(Level.INFO, Kind.COPY, "other", account="F2")
        store.flush()
        with open_read_only(store.path) as conn:
            seen = list(records(conn, START, END))
            written.activity(Level.INFO, Kind.COPY, "while reading", account="F1")
            store.flush()  # the writer is not kept waiting by the reader
            assert [(r["record"], r["account"] or r["connection"]) for r in seen] == [
                ("activity", "f1"),
                ("order", "F1"),
                ("fill", "F1"),
                ("activity", "F1"),
                ("activity", "F2"),
            ]
            order, fill = seen[1], seen[2]
            assert (order["side"], order["qty"], order["status"], order["cause"]) == (
                "sell", "2", "sent", "LEAD:7",
            )  # fmt: skip
            assert (fill["price"], fill["order_id"], fill["fill_id"]) == ("5000.5", "C1-1", "x1")
            assert seen[3]["cause"] == "LEAD:7"
            only = [r["message"] for r in records(conn, START, END, "F1") if r["message"]]
            assert only == ["fill -2 ESH6", "while reading"]
            assert known_account(conn, "F2") and not known_account(conn, "F3")
            with pytest.raises(sqlite3.OperationalError):
                conn.execute("DELETE FROM activity")  # read-only
    finally:
        written.close()
        store.close()


def test_s10_5_a_file_that_is_no_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no store there"), open_read_only(tmp_path / "none"):
        pass
    foreign = tmp_path / "foreign.sqlite"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(ExportError, match="not an engine store"), open_read_only(foreign):
        pass
