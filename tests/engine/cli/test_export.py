"""``python -m engine export`` (S10.5) on a 30-day store written through the engine's own records
(``Records``: the ledger, fills and activity as the actors write them): CSV that Python's csv
module reads with one header row and the documented columns, JSONL with the same keys, the
account filter, trading-day boundaries, and clear errors with exit status 2."""

from __future__ import annotations

import csv
import json
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from brokers.base import Fill
from brokers.clock import VirtualClock
from engine.__main__ import main
from engine.domain.activity import Kind, Level
from engine.domain.ledger import LedgerRow
from engine.domain.order_ids import OrderKind, client_order_id
from engine.domain.reports import day_window, days_window
from engine.storage.datadir import STORE_FILE
from engine.storage.export import COLUMNS
from engine.storage.records import Records
from engine.storage.store import Store

FIRST = date(2026, 1, 5)  # a Monday: its trading day begins Sunday 2026-01-04 at 17:00 CT
DAYS = 30
FILLS_A_DAY = 24


@dataclass(frozen=True)
class Exported:
    data_dir: Path
    counts: dict[str, int]  # rows per table over the whole store


def _write_day(records: Records, clock: VirtualClock, day: date, number: int) -> None:
    """A trading day of LEAD's fills copied by F1 and F2, through the records' own writes."""
    start, _ = day_window(day)
    clock.set(start + timedelta(hours=15))  # 08:00 in Chicago
    for n in range(FILLS_A_DAY):
        fill_id = f"{number}-{n}"
        qty = 1 if n % 2 == 0 else -1
        price = Decimal("5000.25") + n
        records.fill(
            Fill("lead", "LEAD", fill_id, f"B{fill_id}", None, "ESH6", qty, price, clock.now(),
                 True), Decimal(0))  # fmt: skip
        cause = f"LEAD:{fill_id}"
        records.activity(Level.INFO, Kind.COPY, f"LEAD filled {qty:+d} ESH6 at {price}",
                         account="LEAD", fill=cause)  # fmt: skip
        rows = [
            LedgerRow(client_order_id(OrderKind.COPY, cause, f, "ESH6", 1), f, f.lower(),
                      "ESH6", qty, "market", "copy", cause)
            for f in ("F1", "F2")
        ]  # fmt: skip
        clock.advance(timedelta(milliseconds=3))
        assert records.orders_sending(rows)
        clock.advance(timedelta(milliseconds=40))
        for row in rows:
            records.fill(
                Fill(row.connection, row.account, f"{row.account}-{fill_id}", "B",
                     row.client_order_id, "ESH6", qty, price + Decimal("0.25"), clock.now(),
                     True), Decimal("1.25"))  # fmt: skip
            records.order_status(row.client_order_id, "filled")
            records.activity(Level.INFO, Kind.COPY, f"fill {qty:+d} ESH6 @ {price}, \"copy\"",
                             account=row.account, fill=cause)  # fmt: skip
        clock.advance(timedelta(minutes=15))
    records.activity(Level.WARNING, Kind.SKIP, "copy skipped: F2 paused", account="F2")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    data_dir = tmp_path_factory.mktemp("data")
    store = Store(data_dir / STORE_FILE)
    clock = VirtualClock(datetime(2026, 1, 4, tzinfo=UTC))
    records = Records(store, clock)
    for number in range(DAYS):
        day = FIRST + timedelta(days=number)
        if day.weekday() != 5:  # no trading day ends on a Saturday
            _write_day(records, clock, day, number)
        if day == date(2026, 1, 6):  # either side of its reset (17:00 CST = 23:00 UTC)
            clock.set(datetime(2026, 1, 6, 22, 59, 59, 999999, tzinfo=UTC))
            records.activity(Level.INFO, Kind.RESET, "just before the reset", account="F1")
            clock.set(datetime(2026, 1, 6, 23, 0, tzinfo=UTC))
            records.activity(Level.INFO, Kind.RESET, "at the reset", account="F1")
    store.flush()
    counts = {
        table: int(store.query(f"SELECT count(*) FROM {table}")[0][0])
        for table in ("orders", "fills", "activity")
    }
    records.close()
    store.close()
    yield Exported(data_dir, counts)


def export(exported: Exported, *args: str) -> int:
    return main(["export", "--data-dir", str(exported.data_dir), *args])


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_s10_5_a_30_day_export_is_csv_with_one_header_row(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "records.csv"
    last = FIRST + timedelta(days=DAYS - 1)
    assert export(exported, "--from", FIRST.isoformat(), "--to", last.isoformat(),
                  "--format", "csv", "--out", str(out)) == 0  # fmt: skip
    header, *rows = read_csv(out)
    assert header == list(COLUMNS)
    assert list(COLUMNS) not in rows
    assert len(rows) == sum(exported.counts.values()) > 3000
    assert all(len(row) == len(COLUMNS) for row in rows)
    by_name = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    times = [r["time"] for r in by_name]
    assert times == sorted(times)
    kinds = {r["record"] for r in by_name}
    assert kinds == {"order", "fill", "activity"}
    copy = next(r for r in by_name if r["record"] == "fill" and r["account"] == "F1")
    assert (copy["side"], copy["qty"], copy["price"], copy["kind"]) == (
        "buy",
        "1",
        "5000.50",
        "copy",
    )
    assert copy["order_id"].startswith("C") and copy["commission"] == "1.25"
    order = next(r for r in by_name if r["record"] == "order")
    assert (order["status"], order["cause"]) == ("filled", "LEAD:0-0")
    assert '"copy"' in next(r["message"] for r in by_name if r["message"].startswith("fill"))
    assert f"{exported.counts['orders']} orders" in capsys.readouterr().err


def test_s10_5_jsonl_has_the_same_records_and_keys(exported: Exported, tmp_path: Path) -> None:
    first, last = "2026-01-12", "2026-01-16"
    as_csv, as_jsonl = tmp_path / "r.csv", tmp_path / "r.jsonl"
    assert export(exported, "--from", first, "--to", last, "--out", str(as_csv)) == 0
    assert export(exported, "--from", first, "--to", last, "--format", "jsonl",
                  "--out", str(as_jsonl)) == 0  # fmt: skip
    lines = as_jsonl.read_text(encoding="utf-8").splitlines()
    objects = [json.loads(line) for line in lines]
    assert all(list(o) == list(COLUMNS) for o in objects)
    _, *rows = read_csv(as_csv)
    assert [list(o.values()) for o in objects] == rows
    assert len(rows) == 5 * (FILLS_A_DAY * 8 + 1)


def test_s10_5_the_account_filter(exported: Exported, tmp_path: Path) -> None:
    out = tmp_path / "f1.csv"
    assert export(exported, "--from", "2026-01-05", "--to", "2026-02-03",
                  "--account", "F1", "--out", str(out)) == 0  # fmt: skip
    _, *rows = read_csv(out)
    assert {row[COLUMNS.index("account")] for row in rows} == {"F1"}
    per_day = FILLS_A_DAY * 3  # its orders, fills and copy entries
    trading_days = sum((FIRST + timedelta(days=n)).weekday() != 5 for n in range(DAYS))
    assert len(rows) == per_day * trading_days + 2  # and the two entries around a reset


def test_s10_5_trading_day_boundaries(exported: Exported, tmp_path: Path) -> None:
    tuesday, wednesday = tmp_path / "tue.csv", tmp_path / "wed.csv"
    assert export(exported, "--from", "2026-01-06", "--account", "F1", "--out", str(tuesday)) == 0
    assert export(exported, "--from", "2026-01-07", "--account", "F1", "--out", str(wednesday)) == 0
    message = COLUMNS.index("message")
    tue = [row[message] for row in read_csv(tuesday)[1:]]
    wed = [row[message] for row in read_csv(wednesday)[1:]]
    assert "just before the reset" in tue and "at the reset" not in tue
    assert "at the reset" in wed and "just before the reset" not in wed
    start, end = day_window(date(2026, 1, 6))
    times = [row[0] for row in read_csv(tuesday)[1:]]
    assert all(start.isoformat() <= t < end.isoformat() for t in times)
    assert days_window(date(2026, 1, 6), date(2026, 1, 6)) == (start, end)


def test_s10_5_standard_output_and_a_saturday(
    exported: Exported, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export(exported, "--from", "2026-01-10", "--format", "jsonl") == 0  # a Saturday
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "exported 0 orders, 0 fills, 0 activity entries" in captured.err
    assert export(exported, "--from", "2026-01-06", "--account", "F2") == 0
    header, *rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert header == list(COLUMNS) and len(rows) == FILLS_A_DAY * 3 + 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--from", "2026-13-01"], "--from: expected a date as YYYY-MM-DD (got '2026-13-01')"),
        (["--from", "yesterday"], "--from: expected a date as YYYY-MM-DD"),
        (["--from", "2026-01-06", "--to", "06/01/2026"], "--to: expected a date"),
        (["--from", "2026-01-07", "--to", "2026-01-06"], "--from 2026-01-07 is after --to"),
        (["--from", "2026-01-06", "--account", "NOPE"], "--account: no account 'NOPE'"),
    ],
)
def test_s10_5_bad_arguments_exit_2_with_one_line(
    exported: Exported,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    says: str,
) -> None:
    out = tmp_path / "never.csv"
    assert export(exported, *args, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not out.exists()


def test_s10_5_no_store_and_a_bad_format_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--from", "2026-01-06", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / STORE_FILE}: no store there" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--from", "2026-01-06", "--format", "xlsx"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--to", "2026-01-06"])  # --from is required
    assert exit_.value.code == 2


# -- bounded memory --------------------------------------------------------------------------------

BIG_DAYS = 10
BIG_A_DAY = 3400  # rows of each table a trading day: 10 days x 3 tables, ~100k rows
MEMORY_BUDGET = 8 * 1024 * 1024  # bytes Python may hold at its peak during an export


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    """~100k records in a real store, written in bulk through its writer (the engine's own
    writes would take minutes for this many)."""
    data_dir = tmp_path_factory.mktemp("big")
    store = Store(data_dir / STORE_FILE)
    days = [FIRST + timedelta(days=n) for n in range(BIG_DAYS + 4)]
    days = [d for d in days if d.weekday() != 5][:BIG_DAYS]

    def write(conn: Any) -> None:
        for number, day in enumerate(days):
            start, _ = day_window(day)
            at = [(start + timedelta(seconds=5 * n)).isoformat() for n in range(BIG_A_DAY)]
            conn.executemany(
                "INSERT INTO orders (client_order_id, account, connection, symbol, qty,"
                " order_type, kind, cause, status, created_at, updated_at)"
                " VALUES (?, 'F1', 'f1', 'ESH6', 1, 'market', 'copy', ?, 'filled', ?, ?)",
                [(f"C{number}-{n}", f"LEAD:{number}-{n}", t, t) for n, t in enumerate(at)],
            )
            conn.executemany(
                "INSERT INTO fills (time, account, connection, symbol, qty, price, fill_id,"
                " client_order_id) VALUES (?, 'F1', 'f1', 'ESH6', 1, '5000.25', ?, ?)",
                [(t, f"{number}-{n}", f"C{number}-{n}") for n, t in enumerate(at)],
            )
            conn.executemany(
                "INSERT INTO activity (time, level, account, kind, message, fill)"
                " VALUES (?, 'info', 'F1', 'copy', ?, ?)",
                [(t, f"fill +1 ESH6 @ 5000.25 (copy) {n}", f"LEAD:{number}-{n}")
                 for n, t in enumerate(at)],
            )  # fmt: skip

    store.write(write, wait=True)
    store.close()
    yield Exported(data_dir, {"days": len(days), "first": 0, "last": 0})


def peak_of_export(big: Exported, last: date, out: Path) -> int:
    tracemalloc.start()
    try:
        code = export(big, "--from", FIRST.isoformat(), "--to", last.isoformat(),
                      "--out", str(out))  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 0
    return peak


def test_s10_5_an_export_streams_in_bounded_memory(big: Exported, tmp_path: Path) -> None:
    small_out, large_out = tmp_path / "small.csv", tmp_path / "large.csv"
    small = peak_of_export(big, FIRST, small_out)
    large = peak_of_export(big, FIRST + timedelta(days=BIG_DAYS + 4), large_out)
    with large_out.open(newline="") as f:
        rows = sum(1 for _ in f) - 1
    assert rows == 3 * BIG_A_DAY * BIG_DAYS  # ~100k records ...
    assert large < MEMORY_BUDGET  # ... in the memory of a few batches,
    assert large < 2 * small + 512 * 1024  # ... about what one day takes
