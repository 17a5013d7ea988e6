"""The durable state each actor is rebuilt from after a restart (S7.2).

Account figures, positions, commissions charged and open drift episodes (S10.1), the risk
actor's status, lock reason, high-water mark, switched-off triggers, flatten in flight and S9
state (``engine.domain.state``), a connection's state and a membership's disable reason. Actors
write their state through the storage door (``engine.storage.records.Records``), which calls these
functions as it changes (queued to the store's single writer, in order); a restarted actor —
after a crash of its own or of the whole engine — is built from what they read back here, never
from memory. Positions are then trusted from the broker over the store once the session is back
(ARCHITECTURE: reconcile first).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from decimal import Decimal
from typing import Any

from engine.domain.connections import ConnectionState
from engine.domain.state import AccountState, FlattenRecord, PropState, RiskState
from engine.storage.store import Store, in_statements, write_many, writes

_UPSERT_ACCOUNT = (
    "INSERT INTO account_state (account, balance, realized_daily, realized_weekly, commissions,"
    " drift) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(account) DO UPDATE SET"
    " balance = excluded.balance, realized_daily = excluded.realized_daily,"
    " realized_weekly = excluded.realized_weekly, commissions = excluded.commissions,"
    " drift = excluded.drift"
)

_INSERT_POSITION = "INSERT INTO positions (account, symbol, qty, reference) VALUES (?, ?, ?, ?)"


def save_account(store: Store, account: str, state: AccountState) -> None:
    """Queued for the writer after every change of the book: plain data and a module-level
    writer, so a burst's backlog is light (``Store.apply``)."""
    positions = tuple((account, s, q, str(r)) for s, (q, r) in state.positions.items() if q)
    row = (
        account,
        str(state.balance),
        str(state.realized_daily),
        str(state.realized_weekly),
        str(state.commissions),
        json.dumps(dict(state.drift)) if state.drift else "",
    )
    store.apply(_write_account, (row, positions))


AccountWrite = tuple[tuple[Any, ...], tuple[tuple[Any, ...], ...]]


def _write_accounts(conn: sqlite3.Connection, arguments: list[AccountWrite]) -> None:
    """Many accounts' states at once, each account's last one: a few statements in all, what
    writing them one after the other leaves."""
    latest = {row[0]: (row, positions) for row, positions in arguments}
    rows = [row for row, _ in latest.values()]
    write_many(conn, _UPSERT_ACCOUNT, rows)
    for chunk in in_statements(rows, 1):
        accounts = [row[0] for row in chunk]
        placeholders = ", ".join("?" * len(accounts))
        conn.execute(f"DELETE FROM positions WHERE account IN ({placeholders})", accounts)
    write_many(conn, _INSERT_POSITION, [p for _, positions in latest.values() for p in positions])


@writes("account_state", "positions", many=_write_accounts)
def _write_account(conn: sqlite3.Connection, argument: AccountWrite) -> None:
    row, positions = argument
    conn.execute(_UPSERT_ACCOUNT, row)
    conn.execute("DELETE FROM positions WHERE account = ?", (row[0],))
    conn.executemany(_INSERT_POSITION, positions)


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
        Decimal(row["commissions"]),
        {str(s): int(q) for s, q in json.loads(row["drift"]).items()} if row["drift"] else {},
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
        json.dumps(encode_prop(state.prop)),
    )

    if not wait:
        store.append(_REPLACE_RISK, row)  # a row like any record: batched with its neighbours
        return
    store.write(lambda conn: conn.execute(_REPLACE_RISK, row), wait=True)


_REPLACE_RISK = (
    "INSERT OR REPLACE INTO risk_state (account, status, lock_reason, high_water, triggers_off,"
    " lock_triggers, flatten, flattens, supervisor_hold, version, prop)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


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
        prop=decode_prop(json.loads(row["prop"])) if row["prop"] else PropState(),
    )


def _flatten_record(data: Mapping[str, Any]) -> FlattenRecord:
    return FlattenRecord(
        int(data["number"]),
        str(data["cause"]),
        str(data["purpose"]),
        int(data["failures"]),
        {str(k): int(v) for k, v in data["sends"].items()},
    )


def _plain(value: Any) -> Any:
    """A field of the S9 state as JSON holds it: decimals as strings, tuples as lists."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"not a decimal: {value!r}")
    return Decimal(str(value))


def _pairs(value: Any) -> tuple[tuple[str, Decimal], ...]:
    return tuple((str(key), _decimal(number)) for key, number in value)


# How each field of the S9 state is read back, by its declared type: a field of a type not
# here is a field this module cannot store yet (a test holds it to ``PropState``'s fields).
PROP_FIELD_TYPES: Mapping[str, Callable[[Any], Any]] = {
    "Decimal | None": lambda v: None if v is None else _decimal(v),
    "Decimal": _decimal,
    "bool": bool,
    "int": int,
    "str": str,
    "tuple[str, ...]": lambda v: tuple(str(item) for item in v),
    "tuple[tuple[str, Decimal], ...]": _pairs,
}


def encode_prop(state: PropState) -> dict[str, Any]:
    """The S9 state as plain values (JSON, the status log): decimals as strings, tuples as
    lists."""
    return {f.name: _plain(getattr(state, f.name)) for f in fields(PropState)}


def decode_prop(data: Mapping[str, Any]) -> PropState:
    """The inverse of :func:`encode_prop`; a key missing is its default (state written before
    the key was kept), a key unknown is ignored. Raises ``TypeError``/``ValueError``/
    ``ArithmeticError`` on values that are not what it wrote."""
    if not isinstance(data, Mapping):
        raise TypeError(f"the S9 state must be an object, got {type(data).__name__}")
    given = {
        f.name: PROP_FIELD_TYPES[str(f.type)](data[f.name])
        for f in fields(PropState)
        if f.name in data
    }
    return PropState(**given)


def encode_risk(state: RiskState) -> dict[str, Any]:
    """``state`` as plain values (for the status log)."""
    out = asdict(state)
    out["high_water"] = str(state.high_water)
    out["triggers_off"] = list(state.triggers_off)
    out["lock_triggers"] = list(state.lock_triggers)
    out["prop"] = encode_prop(state.prop)
    return out


def decode_risk(data: Mapping[str, Any]) -> RiskState:
    """The inverse of :func:`encode_risk`; raises ``KeyError``/``TypeError``/``ValueError``. A
    frame written before the S9 state was logged (no ``prop``) has none yet."""
    flatten = data["flatten"]
    prop = data.get("prop")
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
        prop=PropState() if prop is None else decode_prop(prop),
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
