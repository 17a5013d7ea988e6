"""What the engine writes down: the activity log, the order ledger, reconciliation records (S7),
and each actor's durable state.

:class:`Records` is the storage door actors are handed (``engine.host.storage.Storage``): they
call these methods and hold no SQL; rows go to the store's writer thread. Listeners (the console
log of ``make run``, metrics, the event stream) see every record as it is written.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from brokers.base import Fill
from brokers.clock import Clock
from engine.domain.activity import ActivityEntry, Kind, Level
from engine.domain.connections import ConnectionState
from engine.domain.copying import LeaderFill
from engine.domain.decimals import plain
from engine.domain.ledger import NOT_SENT, LedgerRow, UnresolvedOrder, sent_unlogged
from engine.domain.order_ids import attempt_of, kind_of
from engine.domain.resets import next_reset
from engine.domain.state import AccountState, RiskState
from engine.storage import durable
from engine.storage.durability import NotDurable
from engine.storage.fanouts import FanOutLog
from engine.storage.intents import IntentLog
from engine.storage.status_log import StatusLog
from engine.storage.store import Store, in_statements, writes

Listener = Callable[[str, Any], None]

_INSERT_ACTIVITY = (
    "INSERT INTO activity (time, level, account, connection, kind, message, fill)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_ORDER = (
    "INSERT INTO orders (client_order_id, account, connection, symbol, qty,"
    " order_type, kind, cause, status, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_ORDER = "UPDATE orders SET status = ?, reason = ?, updated_at = ? WHERE client_order_id = ?"
_UPDATE_ORDERS = (
    "UPDATE orders SET status = v.column1, reason = v.column2, updated_at = v.column3"
    " FROM (VALUES {}) AS v WHERE orders.client_order_id = v.column4"
)


def _update_orders(conn: sqlite3.Connection, updates: list[tuple[str, str, str, str]]) -> None:
    """Many orders' statuses in a few statements (one step each, where an ``UPDATE`` a row
    steps once per order, ``write_many``): each order's last status, what updating them one
    after the other leaves."""
    last = list({update[3]: update for update in updates}.values())
    for chunk in in_statements(last, 4):
        conn.execute(
            _UPDATE_ORDERS.format(", ".join(["(?, ?, ?, ?)"] * len(chunk))),
            [value for update in chunk for value in update],
        )


@writes("orders", many=_update_orders)
def _update_order(conn: sqlite3.Connection, update: tuple[str, str, str, str]) -> None:
    conn.execute(_UPDATE_ORDER, update)


_INSERT_HELD = (
    "INSERT INTO orders (client_order_id, account, connection, symbol, qty,"
    " order_type, kind, cause, status, reason, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_FILL = (
    "INSERT INTO fills (time, account, connection, symbol, qty, price, fill_id,"
    " client_order_id, commission) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
HELD_REASON = "held back: the engine could not make its intent durable"
UNLOGGED_REASON = "sent without a durable intent (a liquidation; the engine's disk failed)"
LOOKUP_CHUNK = 500  # client order ids looked up per query
PRUNE_CHUNK = 5000  # rows looked at per store transaction when records are pruned


class DecidedCopies:
    """The (cause, follower) pairs whose copy decision is made, kept for the trading day they
    were decided in and the next: an offer seen twice — a fan-out completed after a restart, a
    fill a broker reports again — comes within that time, and the set stays bounded however
    long the engine runs. The days turn at the resets (S5.8), on the engine clock."""

    def __init__(self, clock: Clock, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._clock = clock
        self._current: set[tuple[str, str]] = set(pairs)
        self._previous: set[tuple[str, str]] = set()
        self._until = next_reset(clock.now()).at

    def _turn(self) -> None:
        now = self._clock.now()
        if now >= self._until:
            self._previous, self._current = self._current, set()
            self._until = next_reset(now).at

    def __contains__(self, key: object) -> bool:
        self._turn()
        return key in self._current or key in self._previous

    def add(self, key: tuple[str, str]) -> None:
        self._turn()
        self._current.add(key)

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._current | self._previous)


class RecordedFills(DecidedCopies):
    """The (account, fill id) of every fill written to the fills table, for the trading day it
    came in and the next: a fill a broker reports again — after a restart, within a session —
    comes within that time, and is written once (S10.5). Filled in at a start with the fills
    the store holds of the last days (:meth:`Records.recent_fills`)."""


def _intent(r: LedgerRow) -> tuple[Any, ...]:
    return (r.client_order_id, r.account, r.connection, r.symbol, r.qty, r.order_type, r.kind,
            r.cause)  # fmt: skip


class Records:
    def __init__(self, store: Store, clock: Clock, intents: IntentLog | None = None) -> None:
        self.store = store
        self.clock = clock
        self.durability = durability = store.durability
        self.intents = intents or IntentLog(store.path.with_suffix(".intents"), durability)
        self.fanouts = FanOutLog(store.path.with_suffix(".fanouts"), durability)
        self.statuses = StatusLog(store.path.with_suffix(".status"), durability)
        # What the fan-out and status logs refused while the disk failed, written before the
        # engine counts as healthy again (a restart must see these decisions).
        self._unwritten_settled: list[tuple[str, str]] = []
        self._unwritten_status: dict[str, RiskState] = {}
        self._status_order = threading.Lock()  # one account's frames in the order decided
        # The last instant stamped on a record and its text: a replay's clock stands still
        # while a step runs, so its thousands of records share one (one tuple: threads read
        # it whole).
        self._stamped: tuple[datetime | None, str] = (None, "")
        durability.before_restore.append(self.write_unwritten)
        # (cause, follower) of every copy decided, durably before this run (filled in at
        # start) or in it: an offer seen twice — a fan-out completed after a restart, say —
        # is decided once (S2.6).
        self.decided = DecidedCopies(clock)
        # (account, fill id) of the fills written, so one reported again is written once.
        self.recorded_fills = RecordedFills(clock)
        self.listeners: list[Listener] = []

    def _notify(self, topic: str, payload: Any) -> None:
        for listener in self.listeners:
            listener(topic, payload)

    def _stamp(self, now: datetime) -> str:
        """``now`` as the store keeps it."""
        stamped = self._stamped
        if stamped[0] is not now:
            stamped = self._stamped = (now, now.isoformat())
        return stamped[1]

    # -- activity (S7.1) ---------------------------------------------------------------------

    def activity(
        self,
        level: Level,
        kind: Kind,
        message: str,
        *,
        account: str | None = None,
        connection: str | None = None,
        fill: str | None = None,
    ) -> None:
        """``fill``: the leader fill the entry belongs to (``LEADER:fill id``), if any."""
        now = self.clock.now()
        self.store.append(
            _INSERT_ACTIVITY,
            (self._stamp(now), level.value, account, connection, kind.value, message, fill),
        )
        if self.listeners:
            self._notify(
                "activity", ActivityEntry(now, level, kind, message, account, connection, fill)
            )

    # -- fills (S10.5) -----------------------------------------------------------------------

    def fill(self, fill: Fill, commission: Decimal) -> None:
        """A fill an account's book took, queued for the store's writer (no wait), once: a
        fill reported again is not written again. Its time is when the engine took it — the
        reports measure copy latency from it."""
        key = (fill.account, fill.fill_id)
        if key in self.recorded_fills:
            return
        self.recorded_fills.add(key)
        self.store.append(
            _INSERT_FILL,
            (self._stamp(self.clock.now()), fill.account, fill.connection, fill.symbol,
             fill.qty, plain(fill.price), fill.fill_id, fill.client_order_id,
             plain(commission)),
        )  # fmt: skip
        if self.listeners:
            self._notify("fill", fill)

    def recent_fills(self, since: datetime) -> list[tuple[str, str]]:
        """(account, fill id) of every fill written at ``since`` or after, by the time index:
        what a start fills :attr:`recorded_fills` with."""
        self.store.flush()
        rows = self.store.query(
            "SELECT account, fill_id FROM fills WHERE time >= ?", (since.isoformat(),)
        )
        return [(str(account), str(fill_id)) for account, fill_id in rows]

    # -- order ledger (S2.6) -----------------------------------------------------------------

    def orders_sending(self, rows: Sequence[LedgerRow]) -> bool:
        """Make intents durable (the intent log) before they are sent; the ledger rows follow
        in one store transaction. ``False`` when they could not be made durable — the engine
        is unhealthy, or the intent log refused them: then only the orders that may go out
        without (``sent_unlogged``) are sent, the rest are held back and go into the ledger as
        ``not_sent`` (decision 0014)."""
        now = self.clock.now().isoformat()
        intents = [
            (r.client_order_id, r.account, r.connection, r.symbol, r.qty, r.order_type, r.kind,
             r.cause)
            for r in rows
        ]  # fmt: skip
        if self.durability.ok:
            try:
                self.intents.append([(*intent, now) for intent in intents])
            except NotDurable:
                pass
            else:
                for intent in intents:
                    self.store.append(_INSERT_ORDER, (*intent, "sent", now, now))
                if self.listeners:
                    for row in rows:
                        self._notify("order", row)
                return True
        self._not_durable(rows, now)
        return False

    def _not_durable(self, rows: Sequence[LedgerRow], now: str) -> None:
        unlogged = [r for r in rows if sent_unlogged(r.kind)]
        if unlogged:
            with contextlib.suppress(NotDurable):  # their intents, if the log takes them
                self.intents.append([(*_intent(r), now) for r in unlogged])
        for r in rows:
            sent = sent_unlogged(r.kind)
            self.store.append(
                _INSERT_HELD,
                (r.client_order_id, r.account, r.connection, r.symbol, r.qty, r.order_type,
                 r.kind, r.cause, "sent" if sent else NOT_SENT,
                 UNLOGGED_REASON if sent else HELD_REASON, now, now),
            )  # fmt: skip
            if self.listeners:
                if sent:
                    self._notify("order", r)
                else:
                    self._notify("order_status", (r.client_order_id, NOT_SENT, HELD_REASON))

    def recover_intents(self) -> int:
        """At start-up: every intent in the log that the ledger lacks (the engine stopped
        between the two) goes into the ledger with status ``unknown``; it is never re-sent,
        and its outcome is what the broker's snapshot shows. Returns how many."""
        self.store.flush()
        frames = [tuple(frame) for frame in self.intents if frame]
        known = self.ledger_statuses(str(frame[0]) for frame in frames)
        missing = [frame for frame in frames if frame[0] not in known]
        for intent in missing:
            *fields, at = intent
            self.store.append(_INSERT_ORDER, (*fields, "unknown", at, at))
        self.store.flush()
        return len(missing)

    def unresolved_orders(self) -> dict[str, tuple[UnresolvedOrder, ...]]:
        """By account: every order of unknown outcome in the ledger, in the order sent.

        Only the orders of the intent log are looked at: a compaction keeps the intent of
        every order without a final status (``engine/storage/compaction.py``), so the ledger's
        older rows — all of them answered — are never read at a start."""
        rows = sorted(
            self._lookup(
                "SELECT rowid, client_order_id, account, cause, created_at FROM orders"
                " WHERE status IN ('sent', 'unknown') AND client_order_id IN ({})",
                self._intent_ids(),
            ),
            key=lambda row: int(row[0]),
        )
        missed = self._missed_named({str(row[2]) for row in rows})
        found: dict[str, list[UnresolvedOrder]] = {}
        for _, coid, account, cause, created in rows:
            kind = kind_of(coid)
            if kind is None:
                continue
            named = any(coid in message for message in missed.get(account, ()))
            sent_at = datetime.fromisoformat(created)
            order = UnresolvedOrder(coid, kind, cause, attempt_of(coid), sent_at, named)
            found.setdefault(account, []).append(order)
        return {account: tuple(orders) for account, orders in found.items()}

    def _missed_named(self, accounts: Iterable[str]) -> dict[str, list[str]]:
        """The ``missed_copy`` entries of ``accounts``, by account: an order one of them names
        was judged before the stop, and is not judged again (S10.3)."""
        rows = self._lookup(
            "SELECT account, message FROM activity WHERE kind = 'missed_copy' AND account IN ({})",
            accounts,
        )
        named: dict[str, list[str]] = {}
        for account, message in rows:
            named.setdefault(str(account), []).append(str(message))
        return named

    def ledger_statuses(self, client_order_ids: Iterable[str] | None = None) -> dict[str, str]:
        """The ledger's status of each of ``client_order_ids`` it has (default: the orders
        of the intent log), looked up by key."""
        coids = self._intent_ids() if client_order_ids is None else client_order_ids
        rows = self._lookup(
            "SELECT client_order_id, status FROM orders WHERE client_order_id IN ({})", coids
        )
        return {str(coid): str(status) for coid, status in rows}

    def _intent_ids(self) -> list[str]:
        return [
            str(frame[0]) for frame in self.intents if isinstance(frame, list | tuple) and frame
        ]

    def _lookup(self, sql: str, keys: Iterable[str]) -> list[sqlite3.Row]:
        """``sql`` with its ``IN ({})`` filled with ``keys``, a chunk at a time."""
        self.store.flush()
        unique = list(dict.fromkeys(keys))
        rows: list[sqlite3.Row] = []
        for start in range(0, len(unique), LOOKUP_CHUNK):
            chunk = unique[start : start + LOOKUP_CHUNK]
            rows.extend(self.store.query(sql.format(", ".join("?" * len(chunk))), chunk))
        return rows

    def order_status(self, client_order_id: str, status: str, reason: str = "") -> None:
        now = self._stamp(self.clock.now())
        self.store.apply(_update_order, (status, reason, now, client_order_id))
        if self.listeners:
            self._notify("order_status", (client_order_id, status, reason))

    def unanswered_unknown(self, reason: str) -> None:
        """At a stop: every order sent whose answer has not come is recorded ``unknown``; the
        next start asks the broker about each (S2.6). An answer that still comes before the
        store closes is written after this, and stands."""
        now = self.clock.now().isoformat()
        self.store.append(
            "UPDATE orders SET status = 'unknown', reason = ?, updated_at = ?"
            " WHERE status = 'sent'",
            (reason, now),
        )

    # -- fan-outs (S2.9) -----------------------------------------------------------------------

    def leader_fill(self, group: str, fill: LeaderFill) -> None:
        """Durable before the fan-out starts: a restart completes what a crash cut short. A
        fill the log refuses is fanned out all the same: the engine is unhealthy, so its
        copies are held back, each settled; a restart never completes it (S2.1)."""
        with contextlib.suppress(NotDurable):
            self.fanouts.leader_fill(group, fill)

    def decide_copy(self, cause: str, account: str) -> bool:
        """Claim the decision on a copy offer; ``False`` when it was decided already."""
        key = (cause, account)
        if key in self.decided:
            return False
        self.decided.add(key)
        return True

    def copy_settled(self, cause: str, account: str) -> None:
        """A copy offer ended without an order (nothing to send, skipped, refused)."""
        self.decided.add((cause, account))
        try:
            self.fanouts.settled(cause, account)
        except NotDurable:
            self._unwritten_settled.append((cause, account))

    # -- actors' durable state (S7.2) -------------------------------------------------------------

    def risk_decided(self, account: str, state: RiskState) -> None:
        """A status or lock change: durable when this returns (``engine/status_log.py``) —
        unless the disk refuses it: then the risk actor acts on it all the same (a breach
        still flattens, decision 0014), and it is written before the engine counts as healthy
        again."""
        with self._status_order:
            try:
                self.statuses.record(account, state)
            except NotDurable:
                self._unwritten_status[account] = state
            else:
                self._unwritten_status.pop(account, None)

    def write_unwritten(self) -> None:
        """What the fan-out and status logs refused while the disk failed (raises
        :class:`NotDurable` if they still do; what was written is not written again)."""
        while self._unwritten_settled:
            cause, account = self._unwritten_settled[0]
            self.fanouts.settled(cause, account)
            self._unwritten_settled.pop(0)
        with self._status_order:
            for account, state in list(self._unwritten_status.items()):
                self.statuses.record(account, state)
                del self._unwritten_status[account]

    def unwritten_statuses(self) -> list[str]:
        """The accounts whose last status or lock change the status log has not got."""
        return sorted(self._unwritten_status)

    def save_account(self, account: str, state: AccountState) -> None:
        durable.save_account(self.store, account, state)

    def save_risk(self, account: str, state: RiskState) -> None:
        durable.save_risk(self.store, account, state)

    def save_connection(
        self,
        connection: str,
        state: ConnectionState,
        *,
        offline: bool,
        token_expired: bool,
        reconnects: int,
        wait: bool = False,
    ) -> bool:
        try:
            durable.save_connection(
                self.store,
                connection,
                state,
                offline=offline,
                token_expired=token_expired,
                reconnects=reconnects,
                wait=wait,
            )
        except NotDurable:
            return False
        return True

    def set_disable_reason(self, group: str, account: str, reason: str) -> None:
        durable.set_disable_reason(self.store, group, account, reason)

    # -- keeping the logs and the records bounded ---------------------------------------------

    def log_sizes(self) -> tuple[int, int, int]:
        """The intent, fan-out and status logs' sizes in bytes."""
        return self.intents.size(), self.fanouts.size(), self.statuses.size()

    def prune(self, table: str, before: datetime) -> int:
        """Delete the rows of ``activity``, ``orders`` or ``fills`` made before ``before`` (an
        order only once it is done: not ``sent``, ``unknown`` or ``working``), oldest first, a
        chunk per store transaction so other writes go in between. Returns how many went."""
        if table in ("activity", "fills"):
            scan = f"SELECT seq, time FROM {table} WHERE seq > ? ORDER BY seq LIMIT ?"
            delete = f"DELETE FROM {table} WHERE seq > ? AND seq <= ?"
        elif table == "orders":
            scan = "SELECT rowid, created_at FROM orders WHERE rowid > ? ORDER BY rowid LIMIT ?"
            delete = (
                "DELETE FROM orders WHERE rowid > ? AND rowid <= ?"
                " AND status NOT IN ('sent', 'unknown', 'working')"
            )
        else:
            raise ValueError(f"no retention for {table!r}")
        cutoff = before.isoformat()
        after, removed = 0, 0
        while True:
            rows = self.store.query(scan, (after, PRUNE_CHUNK))
            older: list[int] = []
            for row in rows:  # the rows made before the cutoff, from the oldest on
                if str(row[1]) >= cutoff:
                    break
                older.append(int(row[0]))
            if not older:
                return removed
            low, high = after, older[-1]

            def chunk(conn: sqlite3.Connection, low: int = low, high: int = high) -> int:
                return int(conn.execute(delete, (low, high)).rowcount)

            removed += int(self.store.write(chunk, wait=True))
            if len(older) < len(rows) or len(rows) < PRUNE_CHUNK:
                return removed
            after = high

    def close(self) -> None:
        self.intents.close()
        self.fanouts.close()
        self.statuses.close()

    # -- reconciliation (S3.3) ---------------------------------------------------------------

    def reconciliation(
        self,
        account: str,
        connection: str,
        cause: str,
        before: Mapping[str, int],
        target: Mapping[str, int],
        orders: Mapping[str, int],
    ) -> None:
        row = (
            self.clock.now().isoformat(),
            account,
            connection,
            cause,
            json.dumps(dict(before), sort_keys=True),
            json.dumps(dict(target), sort_keys=True),
            json.dumps(dict(orders), sort_keys=True),
        )

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO reconciliations (time, account, connection, cause, before, target,"
                " orders) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )

        self.store.write(insert)

    # -- markers -------------------------------------------------------------------------------

    def set_marker(self, name: str, instant: datetime) -> None:
        self.store.append(
            "INSERT INTO markers (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, instant.isoformat()),
        )

    def marker(self, name: str) -> datetime | None:
        self.store.flush()
        rows = self.store.query("SELECT value FROM markers WHERE name = ?", (name,))
        return datetime.fromisoformat(rows[0][0]) if rows else None

    # -- counters ------------------------------------------------------------------------------

    def next_number(self, name: str) -> int:
        """A durable, strictly increasing number (for deterministic cause ids)."""

        def bump(conn: sqlite3.Connection) -> int:
            conn.execute(
                "INSERT INTO counters (name, value) VALUES (?, 1)"
                " ON CONFLICT(name) DO UPDATE SET value = value + 1",
                (name,),
            )
            value: int = conn.execute(
                "SELECT value FROM counters WHERE name = ?", (name,)
            ).fetchone()[0]
            return value

        result: int = self.store.write(bump, wait=True)
        return result
