"""``python -m engine replay --journal FILE``: re-run a recorded live session.

The journal's setup frame rebuilds the store the session started from; its broker events,
quotes and commands are fed, in order and each at its recorded instant, to a fresh engine on a
virtual clock and the deterministic runtime. The engine's own orders go to a broker stand-in that
executes nothing: what the real broker answered is in the journal and arrives in its place. The
report is the final state, as for a scenario — the tool for reproducing an incident.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from brokers.base import Broker, BrokerSession, EventSink, OrderRequest, Quote
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from engine.core.engine import Engine, EngineSettings
from engine.core.topology import CommandRefused
from engine.replay.harness import final_state
from engine.storage.event_codec import WireError, decode
from engine.storage.frames import FrameError
from engine.storage.journal import GAP, JOURNAL_VERSION, read_journal
from engine.storage.store import SCHEMA_VERSION, Store

COMMANDS = frozenset(
    {
        "take_offline",
        "reconnect",
        "delete_connection",
        "add_follower",
        "remove_follower",
        "lock",
        "unlock",
        "set_risk",
        "flatten_account",
        "flatten_group",
        "flatten_all",
        "inject_failure",
        "add_connection",
        "delete_account",
        "add_group",
        "delete_group",
        "update_follower",
    }
)


class JournalError(Exception):
    """The journal cannot be replayed: the message says where and why."""


class _Session(BrokerSession):
    def __init__(self, broker: ReplayBroker, sink: EventSink) -> None:
        self.broker, self.sink = broker, sink

    def place_order(self, order: OrderRequest) -> None:
        self.broker.orders.append(order)

    def cancel_working(
        self, account: str, symbol: str | None, broker_order_ids: tuple[str, ...] = ()
    ) -> None:
        pass  # the recorded broker's answer (OrderDone) is in the journal

    def request_snapshot(self, request_id: str) -> None:
        pass  # likewise its Snapshot

    def close(self) -> None:
        pass

    def open(self) -> None:
        pass


class ReplayBroker(Broker):
    """Stands in for the recorded broker: takes orders, answers nothing by itself."""

    def __init__(self) -> None:
        self.sinks: dict[str, EventSink] = {}
        self.orders: list[OrderRequest] = []

    def session(self, connection: str, accounts: tuple[str, ...], sink: EventSink) -> BrokerSession:
        self.sinks[connection] = sink
        return _Session(self, sink)

    def deliver(self, connection: str, event: Any) -> None:
        sink = self.sinks.get(connection)
        if sink is not None:
            sink(event)

    def quote(self, symbol: str, last: Any, when: datetime) -> None:
        for sink in list(self.sinks.values()):
            sink(Quote(symbol, last, when))


def replay_journal(path: Path) -> dict[str, Any]:
    try:
        records = read_journal(path)
    except (FrameError, OSError, ValueError) as error:
        raise JournalError(f"{path}: {error}") from None
    if not records or records[0][2] != "setup":
        raise JournalError(f"{path}: frame 1: a journal starts with a setup frame")
    broker = ReplayBroker()
    with tempfile.TemporaryDirectory(prefix="journal-") as tmp:
        clock = VirtualClock(records[0][1])
        store = Store(Path(tmp) / "engine.sqlite")
        engine: Engine | None = None
        gaps: list[int] = []
        try:
            for seq, when, kind, payload in records:
                if engine is not None and when > clock.now():
                    engine.advance_to(when)
                if kind == "setup":
                    engine = _start(engine, store, clock, broker, payload, seq, path)
                    continue
                if engine is None:
                    raise JournalError(f"{path}: frame {seq}: event before the setup frame")
                if kind == GAP:
                    gaps.append(seq)  # the session went on; this replay cannot know with what
                    continue
                _apply(engine, broker, kind, payload, when, seq, path)
                engine.wait_idle()
            assert engine is not None
            report = {
                "journal": str(path),
                "frames": len(records),
                "until": clock.now().isoformat(),
                "orders_sent": len(broker.orders),
                "final": final_state(engine),
            }
            if gaps:
                report["gaps"] = gaps  # frames the session could not record: may differ
        finally:
            if engine is not None:
                engine.stop()
            store.close()
    return report


def _start(
    engine: Engine | None,
    store: Store,
    clock: VirtualClock,
    broker: ReplayBroker,
    payload: Any,
    seq: int,
    path: Path,
) -> Engine:
    try:
        payload = decode(payload)
    except WireError as error:
        raise JournalError(f"{path}: frame {seq}: setup: {error}") from None
    if not isinstance(payload, dict) or "store" not in payload:
        raise JournalError(f"{path}: frame {seq}: a setup frame needs the store's rows")
    version, schema = payload.get("version", 0), payload.get("schema", 0)
    if not isinstance(version, int) or not isinstance(schema, int):
        raise JournalError(f"{path}: frame {seq}: setup: version and schema must be integers")
    if version > JOURNAL_VERSION or schema > SCHEMA_VERSION:
        raise JournalError(
            f"{path}: frame {seq}: written by a newer engine (journal {version}, store schema "
            f"{schema}; this engine reads up to {JOURNAL_VERSION} and {SCHEMA_VERSION})"
        )
    if engine is None:
        try:
            store.restore(payload["store"])  # the session's first start
        except (sqlite3.Error, TypeError, ValueError, AttributeError) as error:
            raise JournalError(f"{path}: frame {seq}: setup: the store rows: {error}") from None
    else:
        engine.stop()  # a restart within the session: the store carries on
    brokers: dict[str, Broker] = dict.fromkeys(("paper", "tradovate", "tradovate-sim"), broker)
    # Rows SQLite took may still be nothing an engine can be built from (a balance that is no
    # number, a state that is none): refused as the journal's fault, never raised through.
    unusable = (LookupError, ValueError, TypeError, ArithmeticError, sqlite3.Error, CommandRefused)
    try:
        fresh = Engine(
            store=store,
            clock=clock,
            brokers=brokers,
            contracts=ContractTable(),
            settings=EngineSettings(runtime="deterministic"),
        )
    except unusable as error:
        raise JournalError(
            f"{path}: frame {seq}: setup: no engine can be built from it: {error!r}"
        ) from None
    try:
        fresh.start(reconcile=bool(payload.get("reconcile")))
    except unusable as error:
        fresh.stop()
        raise JournalError(
            f"{path}: frame {seq}: setup: the engine cannot start from it: {error!r}"
        ) from None
    return fresh


def _apply(
    engine: Engine,
    broker: ReplayBroker,
    kind: str,
    payload: Any,
    when: datetime,
    seq: int,
    path: Path,
) -> None:
    try:
        if kind == "broker":
            connection, event = payload[0], decode(payload[1])
            broker.deliver(connection, event)
        elif kind == "quote":
            broker.quote(payload[0], decode(payload[1]), when)
        elif kind == "command":
            name, args = payload[0], [decode(a) for a in payload[1]]
            if name not in COMMANDS:
                raise JournalError(f"{path}: frame {seq}: unknown command {name!r}")
            command: Callable[..., object] = getattr(engine, name)
            with contextlib.suppress(CommandRefused):  # refused in the session too
                command(*args)
        elif kind != "clock":
            raise JournalError(f"{path}: frame {seq}: unknown frame kind {kind!r}")
    except (WireError, TypeError, IndexError, KeyError) as error:
        raise JournalError(f"{path}: frame {seq}: {kind}: {error}") from None
