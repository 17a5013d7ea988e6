"""The durable state each actor is rebuilt from after a restart (S7.2).

Account figures and positions, the risk actor's status, lock reason, high-water mark,
switched-off triggers and flatten in flight (``engine.domain.state``), a connection's state and
a membership's disable reason. Actors write their state through the storage door
(``engine.storage.records.Records``), which calls these functions as it changes (queued to the
store's single writer, in order); a restarted actor — after a crash of its own or of the whole
engine — is built from what they read back here, never from memory. Positions are then
trusted from the broker over the store once the session is back (ARCHITECTURE: reconcile first).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from engine.domain.connections import ConnectionState
from engine.domain.state import AccountState, FlattenRecord, RiskState
from engine.storage.store import Store


def save_account(store: Store, account: str, state: AccountState) -> None:
    positions = [(account, s, q, str(r)) for s, (q, r) in state.positions.items() if q]
    row = (account, str(state.balance), str(state.realized_daily), str(state.realized_weekly))

    def write(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO account_state (account, balance, realized_daily, realized_weekly)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(account) DO UPDATE SET balance = excluded.balance,"
            " realized_daily = excluded.realized_daily,"
            " realized_weekly = excluded.realized_weekly",
            row,
        )
        conn.execute("DELETE FROM positions WHERE account = ?", (account,))
        conn.executemany(
            "INSERT INTO positions (account, symbol, qty, reference) VALUES (?, ?, ?, ?)",
            positions,
        )

    store.write(write)


def load_account(store: Store, account: str) -> AccountState | None:
    rows = store.query("SELECT * FROM account_state WHERE account = ?", (account,))
    if not rows:
        return None
    row = rows[0]
    positions = {
        p["symbol"]: (int(p["qty"]), Decimal(p["reference"]))
        for p in store.query("SELECT * FROM positions WHERE account = ?", (account,))
    }
    return AccountState(
        Decimal(row["balance"]),
        Decimal(row["realized_daily"]),
        Decimal(row["realized_weekly"]),
        positions,
    )


def save_risk(store: Store, account: str, state: RiskState, *, wait: bool = False) -> None:
    flatten = json.dumps(asdict(state.flatten)) if state.flatten is not None else ""
    row = (
        account,
        state.status,
        state.lock_reason,
        str(state.high_water),
        json.dumps(list(state.triggers_off)),
        json.dumps(list(state.lock_triggers)),
        flatten,
        state.flattens,
        int(state.supervisor_hold),
        state.version,
    )

    def write(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO risk_state (account, status, lock_reason, high_water,"
            " triggers_off, lock_triggers, flatten, flattens, supervisor_hold, version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    store.write(write, wait=wait)


def load_risk(store: Store, account: str) -> RiskState | None:
    rows = store.query("SELECT * FROM risk_state WHERE account = ?", (account,))
    if not rows:
        return None
    row = rows[0]
    flatten = _flatten_record(json.loads(row["flatten"])) if row["flatten"] else None
    return RiskState(
        status=row["status"],
        lock_reason=row["lock_reason"],
        high_water=Decimal(row["high_water"]),
        triggers_off=tuple(json.loads(row["triggers_off"])),
        lock_triggers=tuple(json.loads(row["lock_triggers"])),
        flatten=flatten,
        flattens=int(row["flattens"]),
        supervisor_hold=bool(row["supervisor_hold"]),
        version=int(row["version"]),
    )


def _flatten_record(data: Mapping[str, Any]) -> FlattenRecord:
    return FlattenRecord(
        int(data["number"]),
        str(data["cause"]),
        str(data["purpose"]),
        int(data["failures"]),
        {str(k): int(v) for k, v in data["sends"].items()},
    )


def encode_risk(state: RiskState) -> dict[str, Any]:
    """``state`` as plain values (for the status log)."""
    out = asdict(state)
    out["high_water"] = str(state.high_water)
    out["triggers_off"] = list(state.triggers_off)
    out["lock_triggers"] = list(state.lock_triggers)
    return out


def decode_risk(data: Mapping[str, Any]) -> RiskState:
    """The inverse of :func:`encode_risk`; raises ``KeyError``/``TypeError``/``ValueError``."""
    flatten = data["flatten"]
    return RiskState(
        status=str(data["status"]),
        lock_reason=str(data["lock_reason"]),
        high_water=Decimal(str(data["high_water"])),
        triggers_off=tuple(str(t) for t in data["triggers_off"]),
        lock_triggers=tuple(str(t) for t in data["lock_triggers"]),
        flatten=None if flatten is None else _flatten_record(flatten),
        flattens=int(data["flattens"]),
        supervisor_hold=bool(data["supervisor_hold"]),
        version=int(data["version"]),
    )


def save_connection(
    store: Store,
    connection: str,
    state: ConnectionState,
    *,
    offline: bool,
    token_expired: bool,
    reconnects: int,
    wait: bool = False,
) -> None:
    row = (state.value, int(offline), int(token_expired), reconnects, connection)

    def update(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE connections SET state = ?, offline = ?, token_expired = ?, reconnects = ?"
            " WHERE id = ?",
            row,
        )

    store.write(update, wait=wait)


def set_disable_reason(store: Store, group: str, account: str, reason: str) -> None:
    row = (reason, group, account)

    def update(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE memberships SET disable_reason = ? WHERE group_id = ? AND account = ?", row
        )

    store.write(update)


def delete_account_state(conn: sqlite3.Connection, account: str) -> None:
    for table in ("account_state", "positions", "risk_state"):
        conn.execute(f"DELETE FROM {table} WHERE account = ?", (account,))
