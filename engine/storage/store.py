"""The SQLite store: configuration, the order ledger, and the append-only records.

One file in the data directory, WAL mode, schema migrations in code. Every write goes through a
single writer thread that owns the one writing connection (``sqlite3`` connections must not be
shared between threads); writes queued together are committed in one transaction, so a
fan-out's ledger rows cost one commit. Readers open their own connections (WAL lets them read
while the writer writes). Nothing outside this module knows the store is SQLite.

A batch the disk refuses (full, an I/O error) is rolled back whole and tried again, and again,
until it commits: nothing queued is dropped, and what is queued behind it waits in order. The
store's file counts as failing meanwhile (``engine/storage/durability.py``), so the engine holds
new orders back and callers that wait for a commit are refused at once (:class:`NotDurable`)
rather than left hanging. The store file is made 0600; SQLite gives its WAL and shared-memory
files the same mode.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog

from engine.storage.durability import DRILL, Durability, NotDurable, describe, disk_error

log = structlog.get_logger("engine.storage.store")

SCHEMA_VERSION = 8
APPLICATION_ID = 0x4D494D4B  # "MIMK": refuses to open a foreign SQLite file as a store

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE connections (
        id TEXT PRIMARY KEY, broker TEXT NOT NULL, state TEXT NOT NULL,
        offline INTEGER NOT NULL DEFAULT 0, token_expired INTEGER NOT NULL DEFAULT 0,
        reconnects INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY, connection TEXT NOT NULL REFERENCES connections(id),
        balance TEXT NOT NULL
    );
    CREATE TABLE risk_limits (
        account TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (account, name)
    );
    CREATE TABLE groups (
        id TEXT PRIMARY KEY, leader TEXT NOT NULL UNIQUE REFERENCES accounts(id)
    );
    CREATE TABLE memberships (
        group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        account TEXT NOT NULL UNIQUE REFERENCES accounts(id) ON DELETE CASCADE,
        position INTEGER NOT NULL, ratio TEXT NOT NULL, max_qty INTEGER,
        symbol_map TEXT NOT NULL DEFAULT '', disable_reason TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (group_id, account)
    );
    CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY, account TEXT NOT NULL, connection TEXT NOT NULL,
        symbol TEXT NOT NULL, qty INTEGER NOT NULL, order_type TEXT NOT NULL,
        kind TEXT NOT NULL, cause TEXT NOT NULL, status TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT NOT NULL
    );
    CREATE INDEX orders_by_account ON orders(account);
    CREATE TABLE activity (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, level TEXT NOT NULL,
        account TEXT, connection TEXT, kind TEXT NOT NULL, message TEXT NOT NULL
    );
    CREATE INDEX activity_by_account ON activity(account);
    CREATE TABLE reconciliations (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, account TEXT NOT NULL,
        connection TEXT NOT NULL, cause TEXT NOT NULL, before TEXT NOT NULL,
        target TEXT NOT NULL, orders TEXT NOT NULL
    );
    CREATE INDEX reconciliations_by_account ON reconciliations(account);
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    """,
    2: """
    CREATE TABLE markers (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    3: """
    CREATE TABLE account_state (
        account TEXT PRIMARY KEY, balance TEXT NOT NULL, realized_daily TEXT NOT NULL,
        realized_weekly TEXT NOT NULL
    );
    CREATE TABLE positions (
        account TEXT NOT NULL, symbol TEXT NOT NULL, qty INTEGER NOT NULL,
        reference TEXT NOT NULL, PRIMARY KEY (account, symbol)
    );
    CREATE TABLE risk_state (
        account TEXT PRIMARY KEY, status TEXT NOT NULL, lock_reason TEXT NOT NULL,
        high_water TEXT NOT NULL, triggers_off TEXT NOT NULL, lock_triggers TEXT NOT NULL,
        flatten TEXT NOT NULL, flattens INTEGER NOT NULL, supervisor_hold INTEGER NOT NULL
    );
    """,
    4: """
    ALTER TABLE risk_state ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    """,
    # The leader fill an entry belongs to (``LEADER:fill id``, a copy order's cause): the
    # leader's own entry and each follower's copy, skip or rejection it caused. Entries from
    # before carry none.
    5: """
    ALTER TABLE activity ADD COLUMN fill TEXT;
    CREATE INDEX activity_by_fill ON activity(fill) WHERE fill IS NOT NULL;
    """,
    # A follower's copy mode (S8.1): "fills" or "orders". Memberships from before copy fills,
    # as they always did.
    6: """
    ALTER TABLE memberships ADD COLUMN copy TEXT NOT NULL DEFAULT 'fills';
    """,
    # The S9 prop-firm rules: the commissions an account was charged (S9.1), its risk actor's
    # S9 state (a JSON object; "" from before: none yet), the named profile an account uses
    # (NULL: none) with the profiles' keys (S9.7), and the engine-wide blackouts (S9.5, start
    # and end as ISO text with their offset; ``key`` is ``Blackout.key()``). A risk key's value
    # is stored as ``risk_profile.encode`` writes it: the plain decimals from before read as
    # they are.
    7: """
    ALTER TABLE account_state ADD COLUMN commissions TEXT NOT NULL DEFAULT '0';
    ALTER TABLE risk_state ADD COLUMN prop TEXT NOT NULL DEFAULT '';
    CREATE TABLE profiles (name TEXT PRIMARY KEY);
    CREATE TABLE profile_keys (
        profile TEXT NOT NULL REFERENCES profiles(name) ON DELETE CASCADE,
        name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (profile, name)
    );
    ALTER TABLE accounts ADD COLUMN profile TEXT REFERENCES profiles(name);
    CREATE TABLE blackouts (
        key TEXT PRIMARY KEY, start TEXT NOT NULL, end TEXT NOT NULL, label TEXT NOT NULL
    );
    """,
    # S10: every fill an account's book took, as the engine received it (``qty`` signed, buy
    # positive; ``price`` a plain decimal; ``client_order_id`` the engine's order it filled,
    # NULL for the owner's own trades and a leader's fills), read by the reports and the
    # export (S10.5); the follower's open drift episodes (S10.1, a JSON object, "" for none),
    # so a restart neither forgets an episode nor opens it twice; each group's ``on_drift``
    # (S10.2: "alert" or "reduce"; groups from before alert); and the time indexes an export
    # of a date range reads in order. Fills have no index by account: kept in order across a
    # thousand accounts it would cost the writer more than the fill's own row, and every
    # reader of fills reads a time range.
    8: """
    CREATE TABLE fills (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, account TEXT NOT NULL,
        connection TEXT NOT NULL, symbol TEXT NOT NULL, qty INTEGER NOT NULL,
        price TEXT NOT NULL, fill_id TEXT NOT NULL, client_order_id TEXT,
        commission TEXT NOT NULL DEFAULT '0'
    );
    CREATE INDEX fills_by_time ON fills(time);
    CREATE INDEX fills_by_order ON fills(client_order_id) WHERE client_order_id IS NOT NULL;
    CREATE INDEX orders_by_created ON orders(created_at);
    CREATE INDEX activity_by_time ON activity(time);
    ALTER TABLE account_state ADD COLUMN drift TEXT NOT NULL DEFAULT '';
    ALTER TABLE groups ADD COLUMN on_drift TEXT NOT NULL DEFAULT 'alert';
    """,
}


def _single(sql: str, params: Sequence[Any]) -> Write:
    return lambda conn: conn.execute(sql, params)


def _applied(fn: Callable[[sqlite3.Connection, Any], None], argument: Any) -> Write:
    return lambda conn: fn(conn, argument)


_TABLE = re.compile(r"\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.I)


@functools.cache
def _tables_of(first: object) -> tuple[str, ...] | None:
    """The tables a queued row's statement, or an applied writer, writes (a writer names them
    with ``writes``); ``None`` if unknown, which keeps it in its place among all the others."""
    if isinstance(first, str):
        found = _TABLE.match(first)
        return (found.group(1).lower(),) if found else None
    tables = getattr(first, "tables", None)
    return tuple(tables) if tables is not None else None


_VALUES = re.compile(
    r"(\s*INSERT\b.*\bVALUES\s*)(\(\s*\?(?:\s*,\s*\?)*\s*\))(\s*(?:ON\s+CONFLICT\b.*)?)",
    re.I | re.S,
)
ROWS_AT_ONCE = 1000  # rows per multi-row statement at most
T = TypeVar("T")
VARIABLES_AT_ONCE = 30_000  # under SQLite's limit of parameters in one statement (32,766)


@functools.cache
def _values(sql: str) -> tuple[str, str, str] | None:
    """An ``INSERT … VALUES (?, …) [ON CONFLICT …]`` as its head, its one row of
    placeholders and its upsert clause (``""`` for none)."""
    found = _VALUES.fullmatch(sql)
    return None if found is None else (found.group(1), found.group(2), found.group(3))


def rows_at_once(width: int) -> int:
    """How many rows of ``width`` parameters one statement may carry."""
    return max(1, min(ROWS_AT_ONCE, VARIABLES_AT_ONCE // max(1, width)))


def in_statements(rows: Sequence[T], width: int) -> Iterator[Sequence[T]]:
    """``rows`` of ``width`` parameters each, in order, as many to a statement as it may carry."""
    step = rows_at_once(width)
    for start in range(0, len(rows), step):
        yield rows[start : start + step]


def write_many(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Rows of one statement. An ``INSERT … VALUES (?, …)`` (an upsert too) goes in statements
    of up to 1,000 rows: SQLite then steps once per statement, and the writer lets the
    interpreter lock go and waits to take it back once per statement instead of once per row —
    under load each wait is up to a switch interval, and the waits, not the writing, set the
    writer's pace (measured at 1,000 followers: 5,000 rows took 0.5–1.5 s of wall time for
    60 ms of its own). Rows are inserted in their order, as one at a time would; anything else
    is one ``executemany``."""
    parts = _values(sql)
    if parts is None or not rows:
        conn.executemany(sql, rows)
        return
    head, one, tail = parts
    for chunk in in_statements(rows, len(rows[0])):
        statement = head + ", ".join([one] * len(chunk)) + tail
        conn.execute(statement, [v for row in chunk for v in row])


def writes(
    *tables: str, many: Callable[[sqlite3.Connection, list[Any]], None] | None = None
) -> Callable[[Any], Any]:
    """Names the tables an applied writer (``Store.apply``) writes, so its writes may be
    grouped with the others' rows on other tables; ``many`` writes a group of its arguments at
    once, with the outcome of writing them one after the other."""

    def named(fn: Any) -> Any:
        fn.tables = tables
        fn.many = many
        return fn

    return named


class StoreError(Exception):
    """The store cannot be opened or used: the message says which file and why."""


Write = Callable[[sqlite3.Connection], Any]
# A write that needs no answer, queued as a plain tuple: ``(sql, params)`` for one row, or
# ``(function, argument)`` for a module-level writer and its argument. Made of strings and
# numbers, such a tuple is not followed by the garbage collector once it has been seen: a
# backlog of a burst's records (5 a copy, 5,000 a fill at 1,000 followers) costs nothing to
# each full collection, where objects with slots and a closure per row made each take longer
# the longer the backlog (0.3 s at 160,000 queued rows, measured).
Row = tuple[str, Sequence[Any]]
Applied = tuple[Callable[[sqlite3.Connection, Any], None], Any]


PENDING, CLAIMED, CANCELLED = 0, 1, 2  # a job's state, changed under Store._claims
# Seconds between attempts at a batch the disk refused: soon at first, then every second.
RETRY_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0)
READER_CLOSE_WAIT = 1.0  # seconds close waits for a thread still reading


class _Job:
    """A function for the writer whose outcome may be waited for, withdrawn or answered
    (rows and writes nobody waits for are queued as plain tuples, ``Row`` and ``Applied``)."""

    __slots__ = ("done", "error", "fn", "result", "state")

    def __init__(self, fn: Write, wait: bool = False) -> None:
        self.fn = fn
        self.done = threading.Event() if wait else None
        self.error: BaseException | None = None
        self.result: Any = None
        self.state = PENDING


def _connect(path: Path, *, same_thread: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=same_thread, timeout=30)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _check_file(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a foreign or newer file without writing a byte to it."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id == 0 and tables:
        raise StoreError(f"{path}: not an engine store (a foreign SQLite database); left untouched")
    if app_id not in (0, APPLICATION_ID):
        raise StoreError(
            f"{path}: not an engine store (application id {app_id:#x}); left untouched"
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: store schema version {version} is newer than this engine's "
            f"({SCHEMA_VERSION}); upgrade the engine, the file was left untouched"
        )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[target].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _roll_back(conn: sqlite3.Connection | None) -> sqlite3.Connection | None:
    """Roll back what a refused batch left open; a connection that cannot is closed (the next
    attempt opens another)."""
    if conn is None:
        return None
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
        return None
    return conn


class _Reader:
    """One thread's read connection. Its lock is held while the thread reads, so the store's
    close never closes a connection in use (SQLite would crash the process)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self.lock = threading.Lock()
        self.closed = False

    def close(self) -> None:
        if not self.lock.acquire(timeout=READER_CLOSE_WAIT):
            log.warning("a store reader still busy at close: left open")
            return
        try:
            if not self.closed:
                self.closed = True
                self.conn.close()
        finally:
            self.lock.release()


class Store:
    """The engine's durable store. ``write`` queues work for the single writer thread."""

    def __init__(self, path: Path, durability: Durability | None = None) -> None:
        self.path = path
        self.durability = durability or Durability()
        self._jobs: queue.SimpleQueue[_Job | Row | Applied | None] = queue.SimpleQueue()
        self._readers = threading.local()
        # Every thread's reader, for close: one left open would keep the WAL from being
        # checkpointed and removed (a copy of the data directory then carries it whole).
        self._all_readers: list[_Reader] = []
        self._readers_lock = threading.Lock()
        self._started = threading.Event()
        self._open_error: BaseException | None = None
        self._closed = False
        self._closing = threading.Event()
        self._claims = threading.Lock()
        self.unsaved = 0  # jobs given up at close because the disk refused them
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._open_error is not None:
            raise self._open_error

    # -- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            conn: sqlite3.Connection | None = self._open()
        except (StoreError, NotDurable) as error:
            self._open_error = error
            self._started.set()
            return
        self._started.set()
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    break
                batch: list[_Job | Row | Applied] = [job]
                stop = False
                while len(batch) < 5000:
                    try:
                        nxt = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                conn = self._commit_durably(conn, batch)
                if stop:
                    break
        except BaseException as error:  # the writer never stops without saying so
            self.durability.failed(self.path.name, f"the store writer stopped: {error!r}")
            raise
        finally:
            if conn is not None:
                conn.close()
        if self.unsaved:
            log.error("store closed with writes not saved", file=str(self.path),
                      writes=self.unsaved)  # fmt: skip

    def _open(self) -> sqlite3.Connection:
        try:
            DRILL.check_sqlite()
            # Made 0600 before SQLite opens it: the WAL and shared-memory files take its mode.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            conn = _connect(self.path)
            _check_file(conn, self.path)  # before anything writes to it
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(conn, self.path)
        except StoreError:
            raise
        except (sqlite3.DatabaseError, OSError) as error:
            if disk_error(error):
                raise NotDurable(f"{self.path}: {describe(error)}") from None
            raise StoreError(f"{self.path}: cannot open the store: {describe(error)}") from None
        return conn

    def _reopen(self) -> sqlite3.Connection:
        conn = _connect(self.path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _commit_durably(
        self, conn: sqlite3.Connection | None, batch: list[_Job | Row | Applied]
    ) -> sqlite3.Connection | None:
        """Commit ``batch``, trying again while the disk refuses it; jobs their waiters gave up
        on meanwhile are left out. Once the store is closing, a refused batch is given up."""
        failures = 0
        while True:
            with self._claims:
                batch = [j for j in batch if not isinstance(j, _Job) or j.state != CANCELLED]
                for job in batch:
                    if isinstance(job, _Job):
                        job.state = CLAIMED
                        job.error = None
            if not batch:
                return conn
            try:
                DRILL.check_sqlite()
                if conn is None:
                    conn = self._reopen()
                self._commit(conn, batch)
            except Exception as error:
                conn = _roll_back(conn)
                with self._claims:
                    for job in batch:
                        if isinstance(job, _Job):
                            job.state = PENDING
                failures += 1
                self.durability.failed(self.path.name, describe(error))
                if self._closing.is_set():
                    self._give_up(batch, error)
                    return conn
                self._closing.wait(RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1])
                continue
            for job in batch:
                if isinstance(job, _Job) and job.done is not None:
                    job.done.set()
            if failures:
                log.info("store writes committed again", file=str(self.path), attempts=failures)
                self.durability.recovered(self.path.name)
            return conn

    def _give_up(self, batch: list[_Job | Row | Applied], error: BaseException) -> None:
        self.unsaved += len(batch)
        for job in batch:
            if isinstance(job, _Job):
                job.error = NotDurable(f"{self.path.name}: {describe(error)}")
                if job.done is not None:
                    job.done.set()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Job | Row | Applied]) -> None:
        conn.execute("BEGIN")
        run: list[Row | Applied] = []
        for job in batch:
            if isinstance(job, _Job):
                self._write_run(conn, run)
                run = []
                self._execute(conn, job, job.fn)
            else:
                run.append(job)
        self._write_run(conn, run)
        conn.execute("COMMIT")

    def _write_run(self, conn: sqlite3.Connection, run: list[Row | Applied]) -> None:
        """The rows and applied writes queued between two functions, each statement's rows
        written together (``write_many``) and each writer's arguments at once: a row joins
        the earlier rows of its statement unless another statement on its table came in
        between, so every table sees its statements in the order they were queued (a copy's
        status update after its intent's insert). The tables differ, the transaction is one:
        the outcome is the queue's order's."""
        groups: list[tuple[str | Callable[[sqlite3.Connection, Any], None], list[Any]]] = []
        open_group: dict[object, int] = {}  # statement or writer -> its group open for more
        last_on: dict[str, int] = {}  # table -> the last group writing it
        last_unknown = -1  # the last group of a statement whose tables are not known
        for first, argument in run:
            tables = _tables_of(first)
            index = open_group.get(first)
            if index is not None and (
                index < last_unknown
                or (tables is None and index != len(groups) - 1)
                or (tables is not None and any(last_on.get(t, index) > index for t in tables))
            ):
                index = None
            if index is None:
                index = len(groups)
                groups.append((first, []))
                open_group[first] = index
            groups[index][1].append(argument)
            if tables is None:
                last_unknown = index
            else:
                for table in tables:
                    last_on[table] = index
        for first, arguments in groups:
            if isinstance(first, str):
                self._execute_rows(conn, first, arguments)
            else:
                many = getattr(first, "many", None)
                if (
                    many is not None
                    and len(arguments) > 1
                    and self._execute(conn, None, _applied(many, arguments))
                ):
                    continue  # else one at a time: one bad write cannot lose the others
                for argument in arguments:
                    self._execute(conn, None, _applied(first, argument), report=True)

    def _execute_rows(self, conn: sqlite3.Connection, sql: str, rows: list[Any]) -> None:
        """Consecutive rows of one statement, written together (``write_many``)."""
        if len(rows) > 1 and self._execute(conn, None, lambda c: write_many(c, sql, rows)):
            return
        for params in rows:  # one at a time, so one bad row cannot lose its neighbours
            self._execute(conn, None, _single(sql, params), report=True)

    @staticmethod
    def _execute(
        conn: sqlite3.Connection, job: _Job | None, fn: Write, *, report: bool = False
    ) -> bool:
        """Run ``fn`` in a savepoint; on error roll it back alone and report it (to the job,
        and in the log)."""
        conn.execute("SAVEPOINT job")
        try:
            result = fn(conn)
        except Exception as error:
            if disk_error(error):
                raise  # the whole batch is rolled back and tried again
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            if job is not None:
                job.error = error
            if job is not None or report:
                log.error("store write failed", error=repr(error))
            return False
        conn.execute("RELEASE job")
        if job is not None:
            job.result = result
        return True

    # -- API ---------------------------------------------------------------------------------

    def write(self, fn: Write, *, wait: bool = False) -> Any:
        """Queue ``fn(conn)`` for the writer. With ``wait``, block until it is committed and
        return its result (raising its error) — or raise :class:`NotDurable` as soon as the
        engine cannot make its state durable, the job then withdrawn unless it is being
        committed already (then its outcome is waited for)."""
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")
        if wait:
            self.durability.require()
        job = _Job(fn, wait=wait)
        self._jobs.put(job)
        if job.done is not None:
            while not job.done.wait(0.1):
                if not self._thread.is_alive():
                    raise StoreError(
                        f"{self.path}: the store writer stopped; nothing more is saved"
                    )
                if not self.durability.ok and self._withdraw(job):
                    self.durability.require()
            if job.error is not None:
                raise job.error
            return job.result
        return None

    def _withdraw(self, job: _Job) -> bool:
        with self._claims:
            if job.state != PENDING:
                return False
            job.state = CANCELLED
            return True

    def append(self, sql: str, params: Sequence[Any]) -> None:
        """Queue one row for the writer (no wait): the cheap path for append-only records."""
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")
        self._jobs.put((sql, params))

    def apply(self, fn: Callable[[sqlite3.Connection, Any], None], argument: Any) -> None:
        """Queue ``fn(conn, argument)`` for the writer (no wait): for a module-level writer
        called often, whose argument is plain data — no closure per call, nothing for the
        garbage collector to follow while it waits."""
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")
        self._jobs.put((fn, argument))

    def flush(self) -> None:
        """Wait until everything queued so far is committed (:class:`NotDurable` while the
        engine cannot make its state durable)."""
        if not self._closed:
            self.write(lambda conn: None, wait=True)

    def caught_up(self) -> bool:
        """:meth:`flush`, for a reader: ``False`` at once while the engine cannot make its
        state durable, when the reader gets what is committed so far."""
        try:
            self.flush()
        except NotDurable:
            return False
        return True

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        reader: _Reader | None = getattr(self._readers, "reader", None)
        if reader is None:
            reader = _Reader(_connect(self.path, same_thread=False))
            self._readers.reader = reader
            with self._readers_lock:
                self._all_readers.append(reader)
        with reader.lock:
            if reader.closed:  # the store was closed under it: a read after that reopens
                reader.conn, reader.closed = _connect(self.path, same_thread=False), False
                reader.conn.row_factory = sqlite3.Row
                with self._readers_lock:
                    self._all_readers.append(reader)
            return list(reader.conn.execute(sql, params).fetchall())

    def dump(self, tables: tuple[str, ...]) -> dict[str, list[list[Any]]]:
        """The rows of ``tables`` (column names first), to rebuild an engine elsewhere."""
        self.flush()
        out: dict[str, list[list[Any]]] = {}
        for table in tables:
            rows = self.query(f"SELECT * FROM {table} ORDER BY rowid")
            columns = [d[0] for d in self._reader_description(table)]
            out[table] = [columns, *([row[c] for c in columns] for row in rows)]
        return out

    def _reader_description(self, table: str) -> list[tuple[str]]:
        return [(row["name"],) for row in self.query(f"PRAGMA table_info({table})")]

    def restore(self, dump: dict[str, list[list[Any]]]) -> None:
        """Insert rows written by :meth:`dump` into this (empty) store, in one transaction."""

        def write(conn: sqlite3.Connection) -> None:
            for table, (columns, *rows) in dump.items():
                marks = ", ".join("?" for _ in columns)
                names = ", ".join(columns)
                conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)

        self.write(write, wait=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing.set()  # a batch the disk refuses is given up now, not tried again
        self._jobs.put(None)
        self._thread.join(timeout=30)
        with self._readers_lock:
            readers, self._all_readers = self._all_readers, []
        for reader in readers:
            reader.close()


def stored_schema(path: Path) -> int | None:
    """The schema version of the store file at ``path``, read without writing a byte to it;
    ``None`` where no store was ever made: no file, an empty file, or a database with no table
    (a start that stopped before its first commit). A file that is not an engine store is a
    :class:`StoreError`."""
    try:
        if path.stat().st_size == 0:
            return None
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StoreError(f"{path}: cannot read the store: {error.strerror or error}") from None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if not tables:
                return None
            _check_file(conn, path)
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path}: cannot open the store: {error}") from None
    return version


def backup_store(source: Path, target: Path) -> int:
    """Copy the store at ``source`` into the new file ``target`` (mode 0600) with SQLite's
    online backup API, in one step: a consistent snapshot, taken while an engine writes (in WAL
    mode a reader and the writer never wait for each other) or with none running; a write-ahead
    log a killed engine left is part of it. The copy is checked and left as one file, without a
    write-ahead log of its own. Returns its schema version."""
    version = stored_schema(source)
    if version is None:
        raise StoreError(f"{source}: no store to back up (missing, or empty)")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")
            checked = dst.execute("PRAGMA quick_check").fetchone()[0]
            copied: int = dst.execute("PRAGMA user_version").fetchone()[0]
        finally:
            dst.close()
            src.close()
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{source}: the backup failed: {error}") from None
    if checked != "ok":
        raise StoreError(f"{source}: the backup's copy fails SQLite's check: {checked}")
    return copied
