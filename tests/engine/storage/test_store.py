"""The SQLite store: schema migrations, WAL, refusing files that are not (or not yet) ours, and
the single writer that batches jobs into one transaction."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.copying import CopyMode, Membership
from engine.domain.sessions import Blackout
from engine.domain.state import PropState
from engine.storage import durable, setup_rows
from engine.storage.store import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    Store,
    StoreError,
    writes,
)

TABLES = {
    "connections",
    "accounts",
    "risk_limits",
    "profiles",
    "profile_keys",
    "blackouts",
    "fills",
    "groups",
    "memberships",
    "orders",
    "activity",
    "reconciliations",
    "counters",
}
CT = timezone(timedelta(hours=-6))
CPI = Blackout(
    datetime(2026, 11, 25, 7, 29, tzinfo=CT), datetime(2026, 11, 25, 7, 45, tzinfo=CT), "CPI"
)

HoldWriter = Callable[[Store], AbstractContextManager[None]]  # the hold_writer fixture


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "engine.sqlite")
    yield s
    s.close()


def _insert_counter(name: str, value: int) -> object:
    def job(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO counters (name, value) VALUES (?, ?)", (name, value))

    return job


def _counters(store: Store) -> dict[str, int]:
    return {r["name"]: r["value"] for r in store.query("SELECT name, value FROM counters")}


def _foreign_file(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()
    return path.read_bytes()


def _newer_store_file(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 41}")
    conn.execute("CREATE TABLE future (x)")
    conn.commit()
    conn.close()
    return path.read_bytes()


# --- migrations and pragmas -----------------------------------------------------------------------


def test_migrations_create_the_schema(store: Store) -> None:
    names = {r["name"] for r in store.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names >= TABLES
    assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    assert store.query("PRAGMA application_id")[0][0] == APPLICATION_ID


def test_the_store_is_in_wal_mode(store: Store) -> None:
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"


def test_foreign_keys_are_enforced(store: Store) -> None:
    def orphan(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO accounts (id, connection, balance) VALUES ('A', 'nope', '0')")

    with pytest.raises(sqlite3.IntegrityError):
        store.write(orphan, wait=True)


def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "engine.sqlite"
    first = Store(path)
    first.write(_insert_counter("kept", 7), wait=True)  # type: ignore[arg-type]
    first.close()
    second = Store(path)
    try:
        assert _counters(second) == {"kept": 7}
        assert second.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        assert second.query("PRAGMA journal_mode")[0][0] == "wal"
    finally:
        second.close()


def _store_of_schema(path: Path, version: int) -> None:
    """A store file as an engine of schema ``version`` left it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for target in range(1, version + 1):
        conn.executescript(MIGRATIONS[target])
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()


def test_a_store_of_schema_4_upgrades_its_activity_log_to_name_leader_fills(
    tmp_path: Path,
) -> None:
    """S7.1: entries written before the upgrade are kept and name no leader fill; new ones can."""
    path = tmp_path / "engine.sqlite"
    _store_of_schema(path, 4)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "INSERT INTO activity (time, level, account, connection, kind, message)"
        " VALUES ('2026-01-05T09:00:00-06:00', 'info', 'F1', NULL, 'copy', 'before')"
    )
    conn.close()
    store = Store(path)
    try:
        assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        store.append(
            "INSERT INTO activity (time, level, account, connection, kind, message, fill)"
            " VALUES ('2026-01-05T09:00:01-06:00', 'info', 'F1', NULL, 'copy', 'after', ?)",
            ("LEAD:7",),
        )
        store.flush()
        rows = store.query("SELECT message, fill FROM activity ORDER BY seq")
        assert [(r["message"], r["fill"]) for r in rows] == [("before", None), ("after", "LEAD:7")]
        indexes = store.query("SELECT name FROM sqlite_master WHERE type = 'index'")
        assert "activity_by_fill" in {r["name"] for r in indexes}
    finally:
        store.close()


def test_a_store_of_schema_5_upgrades_its_memberships_to_copy_fills(tmp_path: Path) -> None:
    """S8.1: a membership from before copy modes copies fills, as it did; a new one can copy
    orders."""
    path = tmp_path / "engine.sqlite"
    _store_of_schema(path, 5)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        "INSERT INTO connections (id, broker, state) VALUES ('c', 'paper', 'connected');"
        "INSERT INTO accounts (id, connection, balance) VALUES ('L', 'c', '50000');"
        "INSERT INTO accounts (id, connection, balance) VALUES ('F1', 'c', '50000');"
        "INSERT INTO groups (id, leader) VALUES ('g', 'L');"
        "INSERT INTO memberships (group_id, account, position, ratio) VALUES ('g', 'F1', 1, '2');"
    )
    conn.close()
    store = Store(path)
    try:
        assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        member = setup_rows.load(store).groups["g"].members[0]
        assert (member.account, member.ratio, member.copy) == ("F1", Decimal(2), CopyMode.FILLS)
        store.write(
            lambda c: setup_rows.update_terms(
                c, "g", Membership("F1", member.ratio, copy=CopyMode.ORDERS)
            ),
            wait=True,
        )
        assert setup_rows.load(store).groups["g"].members[0].copy is CopyMode.ORDERS
    finally:
        store.close()


def test_a_store_of_schema_6_upgrades_to_the_s9_rules(tmp_path: Path) -> None:
    """S9: an account and its risk state from before keep what they had, with no commissions
    charged, no S9 state, no profile; its plain-decimal limits read as numbers; profiles and
    blackouts can be written at once."""
    path = tmp_path / "engine.sqlite"
    _store_of_schema(path, 6)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        "INSERT INTO connections (id, broker, state) VALUES ('c', 'paper', 'connected');"
        "INSERT INTO accounts (id, connection, balance) VALUES ('F1', 'c', '50000');"
        "INSERT INTO risk_limits (account, name, value) VALUES ('F1', 'daily_loss_limit', '1000');"
        "INSERT INTO account_state (account, balance, realized_daily, realized_weekly)"
        " VALUES ('F1', '49000', '-1000', '-1000');"
        "INSERT INTO risk_state (account, status, lock_reason, high_water, triggers_off,"
        " lock_triggers, flatten, flattens, supervisor_hold, version) VALUES ('F1', 'LOCKED',"
        " 'risk_breach_daily', '50000', '[]', '[\"daily_loss_limit\"]', '', 1, 0, 3);"
    )
    conn.close()
    store = Store(path)
    try:
        assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION == 8
        rows = setup_rows.load(store)
        f1 = rows.accounts["F1"]
        assert (f1.limits, f1.profile) == ({"daily_loss_limit": Decimal(1000)}, None)
        assert (rows.profiles, rows.blackouts) == ({}, [])
        account = durable.load_account(store, "F1")
        assert account is not None
        assert (account.balance, account.commissions) == (Decimal(49000), Decimal(0))
        risk = durable.load_risk(store, "F1")
        assert risk is not None
        assert (risk.status, risk.version, risk.prop) == ("LOCKED", 3, PropState())

        def s9(c: sqlite3.Connection) -> None:
            setup_rows.write_profile(c, "50K", {"max_loss_mode": "static"})
            setup_rows.set_account_profile(c, "F1", "50K")
            setup_rows.insert_blackout(c, CPI)

        store.write(s9, wait=True)
        rows = setup_rows.load(store)
        assert rows.accounts["F1"].profile == "50K"
        assert rows.profiles == {"50K": {"max_loss_mode": "static"}}
        assert rows.blackouts == [CPI]
    finally:
        store.close()


def test_a_fresh_store_and_an_upgraded_one_have_the_same_schema(tmp_path: Path) -> None:
    """Every migration in order makes the store a new file gets: one schema, however reached."""
    old = tmp_path / "old.sqlite"
    _store_of_schema(old, 6)
    for path in (old, tmp_path / "new.sqlite"):
        Store(path).close()

    def schema(path: Path) -> list[tuple[str, str]]:
        conn = sqlite3.connect(path)
        try:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            return sorted(
                (t, repr(conn.execute(f"PRAGMA table_info({t})").fetchall())) for t in tables
            )
        finally:
            conn.close()

    assert schema(old) == schema(tmp_path / "new.sqlite")
    assert {"profiles", "profile_keys", "blackouts"} <= {t for t, _ in schema(old)}


# --- refusing files -------------------------------------------------------------------------------


def test_a_foreign_sqlite_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "someone-elses.sqlite"
    _foreign_file(path)
    with pytest.raises(StoreError) as info:
        Store(path)
    assert str(path) in str(info.value)
    assert "not an engine store" in str(info.value)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT text FROM notes").fetchall() == [("keep me",)]
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    finally:
        conn.close()


def test_a_foreign_sqlite_file_is_left_byte_for_byte_untouched(tmp_path: Path) -> None:
    path = tmp_path / "someone-elses.sqlite"
    before = _foreign_file(path)
    with pytest.raises(StoreError):
        Store(path)
    assert path.read_bytes() == before


def test_a_store_from_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    _newer_store_file(path)
    with pytest.raises(StoreError) as info:
        Store(path)
    message = str(info.value)
    assert str(path) in message
    assert f"version {SCHEMA_VERSION + 41}" in message
    assert "newer" in message
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 41
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert tables == {"future"}  # no migration ran on it
    finally:
        conn.close()


def test_a_newer_store_is_left_byte_for_byte_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    before = _newer_store_file(path)
    with pytest.raises(StoreError):
        Store(path)
    assert path.read_bytes() == before


def test_a_file_with_another_application_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="application id 0x4d2"):
        Store(path)


def test_a_file_that_is_not_sqlite_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as info:
        Store(path)
    assert str(path) in str(info.value)


# --- write, flush, query --------------------------------------------------------------------------


def test_write_flush_query(store: Store) -> None:
    for n in range(5):
        store.write(_insert_counter(f"c{n}", n))  # type: ignore[arg-type]
    store.flush()
    assert _counters(store) == {f"c{n}": n for n in range(5)}


def test_write_with_wait_returns_the_result_and_raises_the_error(store: Store) -> None:
    def count(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO counters (name, value) VALUES ('x', 1)")
        value: int = conn.execute("SELECT count(*) FROM counters").fetchone()[0]
        return value

    assert store.write(count, wait=True) == 1

    def boom(conn: sqlite3.Connection) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        store.write(boom, wait=True)


def test_a_failing_write_job_does_not_lose_the_other_jobs_in_its_batch(
    store: Store, hold_writer: HoldWriter
) -> None:
    def failing(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO counters (name, value) VALUES ('failed-half', 1)")
        raise RuntimeError("this job fails after writing")

    with hold_writer(store):  # these three are queued together and committed as one batch
        store.write(_insert_counter("before", 1))  # type: ignore[arg-type]
        store.write(failing)
        store.write(_insert_counter("after", 2))  # type: ignore[arg-type]
    store.flush()
    assert _counters(store) == {"before": 1, "after": 2}  # the failed job's own row rolled back


def test_a_write_after_close_is_refused(tmp_path: Path) -> None:
    s = Store(tmp_path / "engine.sqlite")
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.write(lambda conn: None)
    s.flush()  # a no-op once closed
    s.close()  # idempotent


def test_queries_see_committed_writes_from_another_thread(store: Store) -> None:
    store.write(_insert_counter("main", 1), wait=True)  # type: ignore[arg-type]
    seen: list[dict[str, int]] = []
    thread = threading.Thread(target=lambda: seen.append(_counters(store)))
    thread.start()
    thread.join(10)
    assert seen == [{"main": 1}]


def test_appended_rows_are_written_and_a_bad_row_does_not_lose_its_neighbours(
    store: Store, hold_writer: HoldWriter
) -> None:
    sql = "INSERT INTO counters (name, value) VALUES (?, ?)"
    with hold_writer(store):
        store.append(sql, ("a", 1))
        store.append(sql, ("b", 2))
        store.append(sql, ("a", 3))  # duplicate key: this row alone fails
        store.append(sql, ("c", 4))
    store.flush()
    assert _counters(store) == {"a": 1, "b": 2, "c": 4}


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    s = Store(tmp_path / "engine.sqlite")
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.append("INSERT INTO counters (name, value) VALUES (?, ?)", ("x", 1))


def test_close_closes_every_threads_reader_so_the_wal_is_checkpointed_away(
    tmp_path: Path,
) -> None:
    """A reader left open on another thread kept the WAL beside the store after close: a copy
    of the store file alone then missed what the WAL held."""
    path = tmp_path / "engine.sqlite"
    store = Store(path)
    store.write(
        lambda conn: conn.execute(
            "INSERT INTO activity (time, level, kind, message) VALUES ('t', 'info', 'copy', 'x')"
        ),
        wait=True,
    )
    readers = [
        threading.Thread(target=store.query, args=("SELECT count(*) FROM activity",))
        for _ in range(3)
    ]
    keep_alive, has_read = threading.Event(), threading.Event()

    def read_and_wait() -> None:
        store.query("SELECT count(*) FROM activity")
        has_read.set()
        keep_alive.wait(10)

    held = threading.Thread(target=read_and_wait)  # still alive when the store closes
    for thread in [*readers, held]:
        thread.start()
    for thread in readers:
        thread.join()
    has_read.wait(10)
    store.close()
    assert not path.with_name("engine.sqlite-wal").exists()
    keep_alive.set()
    held.join()
    copy = sqlite3.connect(path)
    try:
        assert copy.execute("SELECT count(*) FROM activity").fetchone()[0] == 1
    finally:
        copy.close()


def test_close_waits_for_a_read_in_progress_and_a_read_after_it_reopens(tmp_path: Path) -> None:
    """Closing a connection another thread is reading on would crash the process: close waits
    for the read; that thread's next read opens its connection again."""
    store = Store(tmp_path / "engine.sqlite")
    results: list[int] = []
    go = threading.Event()

    def read_twice() -> None:
        results.append(
            len(
                store.query(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1"
                    " FROM n WHERE i < 200000) SELECT i FROM n"
                )
            )
        )
        go.wait(10)
        results.append(len(store.query("SELECT 1")))

    thread = threading.Thread(target=read_twice)
    thread.start()
    store.close()
    go.set()
    thread.join(10)
    assert results == [200000, 1]


_INSERT_COUNTER = "INSERT INTO counters (name, value) VALUES (?, ?)"


@writes("counters")
def _double(conn: sqlite3.Connection, argument: str) -> None:
    conn.execute("UPDATE counters SET value = value * 2 WHERE name = ?", (argument,))


def test_rows_queued_together_are_written_as_if_one_by_one_in_their_order(
    store: Store, hold_writer: HoldWriter
) -> None:
    """The writer writes a statement's rows with one ``executemany``, grouping rows across
    others; a row never moves past another statement on its own table, so the outcome is the
    queue's order's: an update after its insert, a bulk update between two inserts."""
    with hold_writer(store):  # one batch
        store.append(_INSERT_COUNTER, ("a", 1))
        store.append("UPDATE counters SET value = ? WHERE name = ?", (10, "a"))
        store.append(_INSERT_COUNTER, ("b", 2))
        store.apply(_double, "b")
        store.append("INSERT INTO markers (name, value) VALUES (?, ?)", ("m", "1"))
        store.append("UPDATE counters SET value = value + 100", ())
        store.append(_INSERT_COUNTER, ("c", 3))
        store.apply(_double, "c")
        store.append("INSERT INTO markers (name, value) VALUES (?, ?)", ("n", "2"))
    store.flush()
    assert _counters(store) == {"a": 110, "b": 104, "c": 6}
    assert {r["name"] for r in store.query("SELECT name FROM markers")} == {"m", "n"}
