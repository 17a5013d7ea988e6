"""The durable state actors are rebuilt from (S7.2): an account's commissions (S9.1) and its
risk actor's S9 state round trip through the store and the status log; rows and frames written
before either existed read as none yet."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.domain.state import AccountState, FlattenRecord, PropState, RiskState
from engine.storage import durable
from engine.storage.frames import encode_frame
from engine.storage.status_log import StatusLog
from engine.storage.store import Store

PROP = PropState(
    start_balance=Decimal("50000.00"),
    peak=Decimal("51250.25"),
    session_closed="2026-11-24",
    blackouts_begun=("2026-11-25T13:29:00+00:00/2026-11-25T13:45:00+00:00/CPI",),
    days=(("2026-11-23", Decimal("-120.5")), ("2026-11-24", Decimal(800))),
    consistency_warned="2026-11-24",
)

HoldWriter = Callable[[Store], AbstractContextManager[None]]  # the hold_writer fixture


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "engine.sqlite")
    yield s
    s.close()


def _risk(prop: PropState = PROP) -> RiskState:
    return RiskState(
        "LOCKED",
        "risk_breach_account",
        Decimal("51250.25"),
        triggers_off=("max_loss",),
        flatten=FlattenRecord(1, "breach:F1:1", "breach", 0, {"ESZ6": 1}),
        flattens=1,
        version=7,
        prop=prop,
    )


def test_s9_1_an_accounts_commissions_round_trip(store: Store) -> None:
    state = AccountState(
        Decimal(49000),
        Decimal("-12.6"),
        Decimal(-40),
        {"ESZ6": (2, Decimal(5000))},
        Decimal("8.40"),
    )
    durable.save_account(store, "F1", state)
    store.flush()
    assert durable.load_account(store, "F1") == state
    durable.save_account(store, "F1", AccountState(Decimal(1), Decimal(0), Decimal(0)))
    store.flush()
    loaded = durable.load_account(store, "F1")
    assert loaded is not None and loaded.commissions == Decimal(0)


@pytest.mark.parametrize("prop", [PROP, PropState()])
def test_s9_the_risk_actors_state_round_trips_through_the_store(
    store: Store, prop: PropState
) -> None:
    durable.save_risk(store, "F1", _risk(prop), wait=True)
    assert durable.load_risk(store, "F1") == _risk(prop)
    text = store.query("SELECT prop FROM risk_state")[0]["prop"]
    if prop.peak is not None:
        assert '"peak": "51250.25"' in text  # decimals as strings, exactly


def test_s9_an_empty_prop_column_is_no_s9_state_yet(store: Store) -> None:
    """A row from before schema 7 (the column's default '')."""
    durable.save_risk(store, "F1", _risk(), wait=True)
    store.write(lambda conn: conn.execute("UPDATE risk_state SET prop = ''"), wait=True)
    loaded = durable.load_risk(store, "F1")
    assert loaded is not None and loaded.prop == PropState()


def test_s9_the_status_log_carries_the_s9_state(tmp_path: Path) -> None:
    log = StatusLog(tmp_path / "x.status")
    log.record("F1", _risk())
    log.close()
    assert StatusLog(tmp_path / "x.status").latest() == {"F1": _risk()}


def test_s9_a_status_frame_written_before_the_s9_state_reads_as_none_yet(tmp_path: Path) -> None:
    frame = durable.encode_risk(_risk())
    del frame["prop"]
    path = tmp_path / "x.status"
    path.write_bytes(encode_frame(["F1", frame]))
    assert StatusLog(path).latest() == {"F1": _risk(PropState())}


def test_s9_keys_missing_from_stored_state_are_their_defaults_and_unknown_ones_ignored() -> None:
    """The S9 state may gain or lose a field between versions of the engine."""
    assert durable.decode_prop({"peak": "1", "gone": True}) == PropState(peak=Decimal(1))


@pytest.mark.parametrize("bad", [[], {"peak": [1]}, {"days": [["d", "x"]]}, {"days": 3}])
def test_s9_a_stored_state_that_is_not_one_is_an_error(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError, ArithmeticError)):
        durable.decode_prop(bad)


def test_every_field_of_the_s9_state_can_be_stored() -> None:
    """A field added to PropState of a type the store cannot read back fails here first."""
    for f in fields(PropState):
        assert str(f.type) in durable.PROP_FIELD_TYPES, f.name
    assert durable.decode_prop(durable.encode_prop(PROP)) == PROP


def test_deleting_an_accounts_state_removes_its_s9_rows_too(store: Store) -> None:
    durable.save_account(store, "F1", AccountState(Decimal(1), Decimal(0), Decimal(0)))
    durable.save_risk(store, "F1", _risk(), wait=True)

    def delete(conn: sqlite3.Connection) -> None:
        durable.delete_account_state(conn, "F1")

    store.write(delete, wait=True)
    assert durable.load_account(store, "F1") is None
    assert durable.load_risk(store, "F1") is None


def test_account_states_queued_together_are_written_at_once_as_one_by_one(
    store: Store, hold_writer: HoldWriter
) -> None:
    """A burst's account states reach the writer together and are written in three
    statements; what is stored is each account's last state, as if written one at a time —
    positions a later state no longer holds are gone."""
    first = AccountState(Decimal(1000), Decimal(0), Decimal(0), {"ESZ6": (1, Decimal(5000))})
    last = AccountState(Decimal(990), Decimal(-10), Decimal(-10), {"NQZ6": (-2, Decimal(21000))})
    other = AccountState(Decimal(500), Decimal(0), Decimal(0), {"ESZ6": (3, Decimal(5001))})
    accounts = {f"F{n}": AccountState(Decimal(n), Decimal(0), Decimal(0)) for n in range(100)}
    with hold_writer(store):
        durable.save_account(store, "A", first)
        durable.save_account(store, "B", other)
        for account, state in accounts.items():
            durable.save_account(store, account, state)
        durable.save_account(store, "A", last)
    store.flush()
    assert durable.load_account(store, "A") == last
    assert durable.load_account(store, "B") == other
    assert all(durable.load_account(store, a) == s for a, s in accounts.items())
