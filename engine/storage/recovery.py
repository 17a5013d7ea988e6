"""Start-up recovery from the intent log: what a lost store commit must not make the engine
do twice.

The intent log is written before every order and survives what the store's last commits may
not (a kill between an order and the store writer's commit, or a power cut with
``synchronous = NORMAL``). Before the actors are built, the numbers that name causes — a
connection's returns (``reconcile:<connection>#N``), Cockpit flatten commands (``flatten:N``)
and each account's own flattens (``breach:``/``lock:``/``locked:<account>:N``) — are moved past
every number the intent log shows was used, so no client order id is ever derived twice (S2.6).
Intents the ledger lacks are put in it as ``unknown`` (``Records.recover_intents``).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from typing import Any

from engine.storage.store import Store

_RECONCILE = re.compile(r"^reconcile:(?P<key>.+)#(?P<n>\d+)$")
_FLATTEN_COMMAND = re.compile(r"^flatten:(?P<n>\d+)$")
_ACCOUNT_FLATTEN = re.compile(r"^(?:breach|lock|locked):(?P<key>.+):(?P<n>\d+)$")


def used_numbers(intents: Iterable[Any]) -> tuple[dict[str, int], int, dict[str, int]]:
    """Highest number used per connection return, per flatten command, per account flatten."""
    returns: dict[str, int] = {}
    commands = 0
    flattens: dict[str, int] = {}
    for frame in intents:
        if not isinstance(frame, list | tuple) or len(frame) < 8:
            continue
        cause = str(frame[7])
        if m := _RECONCILE.match(cause):
            key = m["key"]
            returns[key] = max(returns.get(key, 0), int(m["n"]))
        elif m := _FLATTEN_COMMAND.match(cause):
            commands = max(commands, int(m["n"]))
        elif m := _ACCOUNT_FLATTEN.match(cause):
            key = m["key"]
            flattens[key] = max(flattens.get(key, 0), int(m["n"]))
    return returns, commands, flattens


def advance_counters(store: Store, intents: Iterable[Any]) -> None:
    returns, commands, flattens = used_numbers(intents)

    def write(conn: sqlite3.Connection) -> None:
        for connection, n in returns.items():
            conn.execute(
                "UPDATE connections SET reconnects = max(reconnects, ?) WHERE id = ?",
                (n, connection),
            )
        if commands:
            conn.execute(
                "INSERT INTO counters (name, value) VALUES ('flatten_command', ?)"
                " ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
                (commands,),
            )
        for account, n in flattens.items():
            conn.execute(
                "UPDATE risk_state SET flattens = max(flattens, ?) WHERE account = ?",
                (n, account),
            )

    store.write(write, wait=True)
