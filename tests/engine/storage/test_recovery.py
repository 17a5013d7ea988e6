"""Start-up recovery from the intent log (S2.6, S7.2): no cause number is ever reused, and an
intent the ledger lacks is put in it as ``unknown``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from brokers.clock import VirtualClock
from engine.domain.ledger import LedgerRow
from engine.storage.records import Records
from engine.storage.recovery import advance_counters, used_numbers
from engine.storage.store import Store

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def intent(coid: str, cause: str) -> tuple[object, ...]:
    return (coid, "F1", "f1", "ESZ6", -1, "market", "reconciliation", cause, T0.isoformat())


def test_used_numbers_reads_every_kind_of_cause() -> None:
    returns, commands, flattens = used_numbers(
        [
            intent("R1-1", "reconcile:lead#4"),
            intent("R2-1", "reconcile:lead#2"),
            intent("R3-1", "reconcile:f1#7"),
            intent("L1-1", "flatten:3"),
            intent("L2-1", "breach:F1:2"),
            intent("L3-1", "locked:F1:5"),
            intent("C1-1", "LEAD:X9"),
            ["torn"],
        ]
    )
    assert returns == {"lead": 4, "f1": 7}
    assert commands == 3
    assert flattens == {"F1": 5}


def test_counters_move_past_numbers_a_lost_commit_forgot(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    try:
        store.write(
            lambda c: c.execute(
                "INSERT INTO connections (id, broker, state, reconnects) VALUES ('lead', 'paper',"
                " 'connected', 1)"
            ),
            wait=True,
        )
        advance_counters(store, [intent("R1-1", "reconcile:lead#4"), intent("L", "flatten:2")])
        assert store.query("SELECT reconnects FROM connections")[0][0] == 4
        assert store.query("SELECT value FROM counters WHERE name = 'flatten_command'")[0][0] == 2
        advance_counters(store, [intent("R1-1", "reconcile:lead#2")])  # never goes back
        assert store.query("SELECT reconnects FROM connections")[0][0] == 4
    finally:
        store.close()


def test_an_intent_the_ledger_lacks_is_recorded_as_unknown(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    records = Records(store, VirtualClock(T0))
    try:
        row = LedgerRow("C1-1", "F1", "f1", "ESZ6", 1, "market", "copy", "LEAD:X1")
        records.orders_sending([row])
        store.flush()
        store.write(lambda c: c.execute("DELETE FROM orders"), wait=True)  # the lost commit
        assert records.recover_intents() == 1
        (status,) = store.query("SELECT status FROM orders WHERE client_order_id = 'C1-1'")[0]
        assert status == "unknown"
        assert records.recover_intents() == 0
    finally:
        records.close()
        store.close()
