"""What the engine writes down: the activity log, the order ledger, reconciliation records (S7).

Actors call these methods; rows go to the store's writer thread. Listeners (the console log of
``make run``, metrics, the event stream) see every record as it is written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from actors.copy_messages import LeaderFilled
from brokers.clock import Clock
from engine.domain.order_ids import OrderKind, attempt_of, kind_of
from engine.storage.durable import RiskState
from engine.storage.fanouts import FanOutLog
from engine.storage.intents import IntentLog
from engine.storage.status_log import StatusLog
from engine.storage.store import Store


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Kind(StrEnum):
    """Activity kinds (S7.1)."""

    COPY = "copy"
    SKIP = "skip"
    REJECTION = "rejection"
    RECONCILIATION = "reconciliation"
    BREACH = "breach"
    FLATTEN = "flatten"
    FLATTEN_FAILED = "flatten_failed"
    LOCK = "lock"
    UNLOCK = "unlock"
    RESET = "reset"
    STATE_CHANGE = "state_change"
    DELETION = "deletion"
    RESTART = "restart"
    MANUAL_TRADE_FLATTENED = "manual_trade_flattened"
    STALE_PRICES = "stale_prices"


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    time: datetime
    level: Level
    kind: Kind
    message: str
    account: str | None = None
    connection: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One order the engine is about to send: durable before it reaches the broker (S2.6)."""

    client_order_id: str
    account: str
    connection: str
    symbol: str
    qty: int
    order_type: str
    kind: str
    cause: str


@dataclass(frozen=True, slots=True)
class UnresolvedOrder:
    """An order the engine sent and never heard back about (ledger status ``sent`` or
    ``unknown`` at a start): its outcome is asked of the broker, never guessed (S2.6)."""

    client_order_id: str
    kind: OrderKind
    cause: str
    attempt: int


Listener = Callable[[str, Any], None]

_INSERT_ACTIVITY = (
    "INSERT INTO activity (time, level, account, connection, kind, message)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_ORDER = (
    "INSERT INTO orders (client_order_id, account, connection, symbol, qty,"
    " order_type, kind, cause, status, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_ORDER = "UPDATE orders SET status = ?, reason = ?, updated_at = ? WHERE client_order_id = ?"


class Records:
    def __init__(self, store: Store, clock: Clock, intents: IntentLog | None = None) -> None:
        self.store = store
        self.clock = clock
        self.intents = intents or IntentLog(store.path.with_suffix(".intents"))
        self.fanouts = FanOutLog(store.path.with_suffix(".fanouts"))
        self.statuses = StatusLog(store.path.with_suffix(".status"))
        # (cause, follower) of every copy decided, durably before this run (filled in at
        # start) or in it: an offer seen twice — a fan-out completed after a restart, say —
        # is decided once (S2.6).
        self.decided: set[tuple[str, str]] = set()
        self.listeners: list[Listener] = []

    def _notify(self, topic: str, payload: Any) -> None:
        for listener in self.listeners:
            listener(topic, payload)

    # -- activity (S7.1) ---------------------------------------------------------------------

    def activity(
        self,
        level: Level,
        kind: Kind,
        message: str,
        *,
        account: str | None = None,
        connection: str | None = None,
    ) -> None:
        now = self.clock.now()
        self.store.append(
            _INSERT_ACTIVITY,
            (now.isoformat(), level.value, account, connection, kind.value, message),
        )
        if self.listeners:
            self._notify("activity", ActivityEntry(now, level, kind, message, account, connection))

    # -- order ledger (S2.6) -----------------------------------------------------------------

    def orders_sending(self, rows: Sequence[LedgerRow]) -> None:
        """Make intents durable (the intent log) before they are sent; the ledger rows follow
        in one store transaction."""
        now = self.clock.now().isoformat()
        intents = [
            (r.client_order_id, r.account, r.connection, r.symbol, r.qty, r.order_type, r.kind,
             r.cause)
            for r in rows
        ]  # fmt: skip
        self.intents.append([(*intent, now) for intent in intents])
        for intent in intents:
            self.store.append(_INSERT_ORDER, (*intent, "sent", now, now))
        if self.listeners:
            for row in rows:
                self._notify("order", row)

    def recover_intents(self) -> int:
        """At start-up: every intent in the log that the ledger lacks (the engine stopped
        between the two) goes into the ledger with status ``unknown``; it is never re-sent,
        and its outcome is what the broker's snapshot shows. Returns how many."""
        self.store.flush()
        known = {row[0] for row in self.store.query("SELECT client_order_id FROM orders")}
        missing = [tuple(frame) for frame in self.intents if frame and frame[0] not in known]
        for intent in missing:
            *fields, at = intent
            self.store.append(_INSERT_ORDER, (*fields, "unknown", at, at))
        self.store.flush()
        return len(missing)

    def unresolved_orders(self) -> dict[str, tuple[UnresolvedOrder, ...]]:
        """By account: every order of unknown outcome in the ledger, in the order sent."""
        self.store.flush()
        rows = self.store.query(
            "SELECT client_order_id, account, cause FROM orders"
            " WHERE status IN ('sent', 'unknown') ORDER BY rowid"
        )
        found: dict[str, list[UnresolvedOrder]] = {}
        for coid, account, cause in rows:
            kind = kind_of(coid)
            if kind is None:
                continue
            order = UnresolvedOrder(coid, kind, cause, attempt_of(coid))
            found.setdefault(account, []).append(order)
        return {account: tuple(orders) for account, orders in found.items()}

    def ledger_statuses(self) -> dict[str, str]:
        self.store.flush()
        rows = self.store.query("SELECT client_order_id, status FROM orders")
        return {str(coid): str(status) for coid, status in rows}

    def order_status(self, client_order_id: str, status: str, reason: str = "") -> None:
        now = self.clock.now().isoformat()
        self.store.append(_UPDATE_ORDER, (status, reason, now, client_order_id))
        if self.listeners:
            self._notify("order_status", (client_order_id, status, reason))

    # -- fan-outs (S2.9) -----------------------------------------------------------------------

    def leader_fill(self, group: str, fill: LeaderFilled) -> None:
        """Durable before the fan-out starts: a restart completes what a crash cut short."""
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
        self.fanouts.settled(cause, account)

    # -- risk status (S7.2) ---------------------------------------------------------------------

    def risk_decided(self, account: str, state: RiskState) -> None:
        """A status or lock change: durable when this returns (``engine/status_log.py``)."""
        self.statuses.record(account, state)

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
