"""``python -m engine replay --journal PATH``: re-run a recorded live session.

``PATH`` is a data directory, its journal's segment directory (``DATA/journal/``), or one
segment file. The first frame rebuilds the store the replay starts from; the broker events,
quotes and commands after it are fed, in order and each at its recorded instant, to a fresh
engine on a virtual clock and the deterministic runtime. The engine's own orders go to a broker
stand-in that executes nothing: what the real broker answered is in the journal and arrives in
its place. The report is the final state, as for a scenario — the tool for reproducing an
incident.

A journal whose oldest segments were deleted (its retention, decision 0013) begins with a
``checkpoint``: the store as it was when that segment was begun, while the engine ran. A replay
from it is of a partial history: the engine is built from those rows, and the broker's answer
to each connection's first snapshot is the positions the store held then — working orders,
timers and snapshots in flight at that moment are not in it, and an event the engine was still
handling when the checkpoint was taken may be missing from the positions. What follows replays
as recorded. A later checkpoint changes nothing (the replay carries on); a later ``setup`` is a
restart within the session, as it was live.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from brokers.base import (
    AccountSnapshot,
    Broker,
    BrokerSession,
    EventSink,
    ModifyRequest,
    OrderRequest,
    PositionInfo,
    Quote,
    Snapshot,
)
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from engine.core.engine import Engine, EngineSettings
from engine.core.topology import CommandRefused
from engine.replay.harness import final_state
from engine.storage.event_codec import WireError, decode
from engine.storage.frames import FrameError
from engine.storage.journal import CHECKPOINT, GAP, JOURNAL_VERSION, SETUP, iter_journal
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
        "sync",
        "sync_group",
        "inject_failure",
        "add_connection",
        "delete_account",
        "add_group",
        "delete_group",
        "update_follower",
        "set_on_drift",
        "unset_risk",
        "set_profile",
        "unset_profile_keys",
        "delete_profile",
        "set_account_profile",
        "add_blackout",
        "remove_blackout",
    }
)


class JournalError(Exception):
    """The journal cannot be replayed: the message says where and why."""


class _Session(BrokerSession):
    def __init__(
        self, broker: ReplayBroker, connection: str, accounts: tuple[str, ...], sink: EventSink
    ) -> None:
        self.broker, self.connection, self.accounts, self.sink = broker, connection, accounts, sink

    def place_order(self, order: OrderRequest) -> None:
        self.broker.orders.append(order)

    def modify_order(self, request: ModifyRequest) -> None:
        self.broker.modifications.append(request)  # its answer, too, is in the journal

    def cancel_working(
        self, account: str, symbol: str | None, broker_order_ids: tuple[str, ...] = ()
    ) -> None:
        pass  # the recorded broker's answer (OrderDone) is in the journal

    def request_snapshot(self, request_id: str) -> None:
        # Likewise its Snapshot — but for the first request of a replay begun at a
        # checkpoint, asked before anything recorded: answered from the checkpoint's rows.
        positions = self.broker.checkpoint_positions.pop(self.connection, None)
        if positions is None:
            return
        accounts = {
            account: AccountSnapshot(positions.get(account, {}), ()) for account in self.accounts
        }
        self.sink(Snapshot(self.connection, request_id, accounts))

    def close(self) -> None:
        pass

    def open(self) -> None:
        pass


class ReplayBroker(Broker):
    """Stands in for the recorded broker: takes orders, answers nothing by itself."""

    def __init__(self) -> None:
        self.sinks: dict[str, EventSink] = {}
        self.orders: list[OrderRequest] = []
        self.modifications: list[ModifyRequest] = []
        # A replay begun at a checkpoint: each connection's positions as the store held them.
        self.checkpoint_positions: dict[str, dict[str, dict[str, PositionInfo]]] = {}

    def session(self, connection: str, accounts: tuple[str, ...], sink: EventSink) -> BrokerSession:
        self.sinks[connection] = sink
        return _Session(self, connection, accounts, sink)

    def deliver(self, connection: str, event: Any) -> None:
        sink = self.sinks.get(connection)
        if sink is not None:
            sink(event)

    def quote(self, symbol: str, last: Any, when: datetime) -> None:
        for sink in list(self.sinks.values()):
            sink(Quote(symbol, last, when))


def replay_journal(path: Path) -> dict[str, Any]:
    broker = ReplayBroker()
    with tempfile.TemporaryDirectory(prefix="journal-") as tmp:
        store = Store(Path(tmp) / "engine.sqlite")
        engine: Engine | None = None
        clock: VirtualClock | None = None
        gaps: list[int] = []
        frames, segments = 0, 0
        try:
            for segment, records in _segments(path):
                segments += 1
                for number, (seq, when, kind, payload) in enumerate(records, 1):
                    frames += 1
                    where = f"{segment}: frame {number}"
                    if clock is None:
                        if kind not in (SETUP, CHECKPOINT):
                            raise JournalError(f"{where}: a journal starts with a setup frame")
                        clock = VirtualClock(when)
                    if engine is not None and when > clock.now():
                        engine.advance_to(when)
                    if kind == SETUP or (kind == CHECKPOINT and engine is None):
                        engine = _start(engine, store, clock, broker, payload, kind, where)
                        continue
                    if kind == CHECKPOINT:
                        continue  # the engine carries on: it is where the checkpoint was
                    if engine is None:
                        raise JournalError(f"{where}: event before the setup frame")
                    if kind == GAP:
                        gaps.append(seq)  # the session went on; this replay cannot know with what
                        continue
                    _apply(engine, broker, kind, payload, when, where)
                    engine.wait_idle()
            if engine is None or clock is None:
                raise JournalError(f"{path}: frame 1: a journal starts with a setup frame")
            report = {
                "journal": str(path),
                "segments": segments,
                "frames": frames,
                "until": clock.now().isoformat(),
                "orders_sent": orders_sent(broker.orders),
                "final": final_state(engine),
            }
            if gaps:
                report["gaps"] = gaps  # frames the session could not record: may differ
        finally:
            if engine is not None:
                engine.stop()
            store.close()
    return report


def orders_sent(requests: list[OrderRequest]) -> int:
    """Each order the engine placed counts once, a bracket's and an OCO pair's legs included,
    however many requests carried them (SCENARIOS.md ``orders_sent``)."""
    return sum(len(request.client_order_ids()) for request in requests)


def _segments(path: Path) -> Iterator[tuple[Path, list[tuple[int, datetime, str, Any]]]]:
    try:
        yield from iter_journal(path)
    except (FrameError, OSError, ValueError) as error:
        message = str(error)
        raise JournalError(message if str(path) in message else f"{path}: {message}") from None


def _start(
    engine: Engine | None,
    store: Store,
    clock: VirtualClock,
    broker: ReplayBroker,
    payload: Any,
    kind: str,
    where: str,
) -> Engine:
    try:
        payload = decode(payload)
    except WireError as error:
        raise JournalError(f"{where}: {kind}: {error}") from None
    if not isinstance(payload, dict) or "store" not in payload:
        raise JournalError(f"{where}: a {kind} frame needs the store's rows")
    version, schema = payload.get("version", 0), payload.get("schema", 0)
    if not isinstance(version, int) or not isinstance(schema, int):
        raise JournalError(f"{where}: {kind}: version and schema must be integers")
    if version > JOURNAL_VERSION or schema > SCHEMA_VERSION:
        raise JournalError(
            f"{where}: written by a newer engine (journal {version}, store schema "
            f"{schema}; this engine reads up to {JOURNAL_VERSION} and {SCHEMA_VERSION})"
        )
    if engine is None:
        try:
            store.restore(payload["store"])  # the first start of the replay
            if kind == CHECKPOINT:
                _from_checkpoint(store, broker)
        except (sqlite3.Error, TypeError, ValueError, AttributeError) as error:
            raise JournalError(f"{where}: {kind}: the store rows: {error}") from None
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
        raise JournalError(f"{where}: {kind}: no engine can be built from it: {error!r}") from None
    try:
        fresh.start(reconcile=bool(payload.get("reconcile")))
    except unusable as error:
        fresh.stop()
        raise JournalError(f"{where}: {kind}: the engine cannot start from it: {error!r}") from None
    return fresh


def _from_checkpoint(store: Store, broker: ReplayBroker) -> None:
    """A replay begun at a checkpoint: each connection's first snapshot is answered with the
    positions the store held, under the number of the session's last request (so the requests
    after it carry the numbers the session's recorded answers do)."""
    rows = store.query(
        "SELECT a.connection, p.account, p.symbol, p.qty, p.reference"
        " FROM positions p JOIN accounts a ON a.id = p.account"
    )
    positions: dict[str, dict[str, dict[str, PositionInfo]]] = {}
    for connection, account, symbol, qty, reference in rows:
        held = positions.setdefault(str(connection), {}).setdefault(str(account), {})
        held[str(symbol)] = PositionInfo(int(qty), Decimal(str(reference)))
    for (connection,) in store.query("SELECT id FROM connections"):
        broker.checkpoint_positions[str(connection)] = positions.get(str(connection), {})
    store.write(
        lambda conn: conn.execute("UPDATE connections SET reconnects = max(reconnects - 1, 0)"),
        wait=True,
    )


def _apply(
    engine: Engine,
    broker: ReplayBroker,
    kind: str,
    payload: Any,
    when: datetime,
    where: str,
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
                raise JournalError(f"{where}: unknown command {name!r}")
            command: Callable[..., object] = getattr(engine, name)
            with contextlib.suppress(CommandRefused):  # refused in the session too
                command(*args)
        elif kind != "clock":
            raise JournalError(f"{where}: unknown frame kind {kind!r}")
    except (WireError, TypeError, IndexError, KeyError) as error:
        raise JournalError(f"{where}: {kind}: {error}") from None
