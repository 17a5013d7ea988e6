"""Reads of the records: pages newest first, filters, windows, and the per-account counts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from brokers.clock import VirtualClock
from engine.domain.activity import Kind, Level
from engine.domain.ledger import LedgerRow
from engine.storage.queries import Queries, Window
from engine.storage.records import Records
from engine.storage.store import Store

START = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)

HoldWriter = Callable[[Store], AbstractContextManager[None]]  # the hold_writer fixture


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Records, Queries, VirtualClock]]:
    store = Store(tmp_path / "engine.sqlite")
    clock = VirtualClock(START)
    records = Records(store, clock)
    yield records, Queries(store), clock
    records.close()
    store.close()


def _order(number: int, account: str) -> LedgerRow:
    return LedgerRow(f"o{number}", account, "c1", "ES", 1, "market", "copy", f"cause{number}")


def test_activity_pages_newest_first_and_sees_every_write_queued_before(
    rig: tuple[Records, Queries, VirtualClock],
) -> None:
    records, queries, clock = rig
    for n in range(5):
        records.activity(Level.INFO, Kind.COPY, f"entry {n}", account="F1")
        clock.advance(timedelta(seconds=1))
    first = queries.activity(Window(limit=2))
    assert [e.message for e in first.items] == ["entry 4", "entry 3"]
    assert first.next_before == first.items[-1].seq
    rest = queries.activity(Window(before=first.next_before, limit=10))
    assert [e.message for e in rest.items] == ["entry 2", "entry 1", "entry 0"]
    assert rest.next_before is None
    window = Window(since=START + timedelta(seconds=1), until=START + timedelta(seconds=3))
    assert [e.message for e in queries.activity(window).items] == ["entry 2", "entry 1"]


def test_activity_filters_and_the_per_account_reads(
    rig: tuple[Records, Queries, VirtualClock],
) -> None:
    records, queries, _ = rig
    records.activity(Level.INFO, Kind.COPY, "copied", account="F1", connection="c1")
    records.activity(Level.WARNING, Kind.REJECTION, "first no", account="F1")
    records.activity(Level.WARNING, Kind.REJECTION, "second no", account="F1")
    records.activity(Level.ERROR, Kind.RESTART, "restarted", connection="c1")
    page = queries.activity(Window(), account="F1", level="warning", kind="rejection")
    assert [e.message for e in page.items] == ["second no", "first no"]
    assert [e.message for e in queries.activity(Window(), connection="c1").items] == [
        "restarted",
        "copied",
    ]
    assert queries.last_message("F1", "rejection") == "second no"
    assert queries.last_message("F2", "rejection") is None
    assert [e.message for e in queries.activity_of("F1")] == ["copied", "first no", "second no"]
    assert [e.kind for e in queries.activity_of("F1", "info")] == ["copy"]


def test_activity_of_one_leader_fill(rig: tuple[Records, Queries, VirtualClock]) -> None:
    """S7.1: a leader fill's own entry and each follower entry it caused carry its key."""
    records, queries, _ = rig
    records.activity(Level.INFO, Kind.COPY, "LEAD filled +1 ESZ6", account="LEAD", fill="LEAD:1")
    records.activity(Level.INFO, Kind.COPY, "LEAD filled +1 ESZ6", account="LEAD", fill="LEAD:2")
    records.activity(Level.INFO, Kind.COPY, "fill +1 ESZ6", account="F1", fill="LEAD:1")
    records.activity(Level.INFO, Kind.SKIP, "skipped", account="F2", fill="LEAD:1")
    records.activity(Level.INFO, Kind.LOCK, "locked", account="F2")
    page = queries.activity(Window(), fill="LEAD:1")
    assert [(e.account, e.kind, e.fill) for e in page.items] == [
        ("F2", "skip", "LEAD:1"),
        ("F1", "copy", "LEAD:1"),
        ("LEAD", "copy", "LEAD:1"),
    ]
    assert [e.fill for e in queries.activity_of("F2")] == ["LEAD:1", None]
    assert queries.activity(Window(), fill="LEAD:9").items == []


def test_orders_and_reconciliations(rig: tuple[Records, Queries, VirtualClock]) -> None:
    records, queries, _ = rig
    records.orders_sending([_order(1, "F1"), _order(2, "F1"), _order(3, "F2")])
    records.order_status("o2", "rejected", "no margin")
    records.reconciliation("F1", "c1", "return", {"ES": 1}, {"ES": 2}, {"ES": 1})
    assert queries.orders_sent("F1") == 2
    assert queries.orders_sent("F9") == 0
    assert queries.reconciliation_count("F1") == 1
    page = queries.orders(Window(limit=1), account="F1")
    assert [o.client_order_id for o in page.items] == ["o2"]
    assert (page.items[0].status, page.items[0].reason) == ("rejected", "no margin")
    assert page.next_before is not None
    rest = queries.orders(Window(before=page.next_before), account="F1")
    assert [o.client_order_id for o in rest.items] == ["o1"]
    assert [o.client_order_id for o in queries.orders(Window(), status="sent").items] == [
        "o3",
        "o1",
    ]
    (reconciliation,) = queries.reconciliations(Window(), account="F1").items
    assert (reconciliation.before, reconciliation.target, reconciliation.orders) == (
        {"ES": 1},
        {"ES": 2},
        {"ES": 1},
    )


def test_order_statuses_queued_together_land_as_one_by_one(
    rig: tuple[Records, Queries, VirtualClock], hold_writer: HoldWriter
) -> None:
    """A burst's order statuses reach the writer together and are written a few statements at
    a time; each order ends with its last status, and an order inserted after an update of the
    others is not touched by it."""
    records, queries, _ = rig
    with hold_writer(records.store):
        records.orders_sending([_order(n, f"F{n}") for n in range(100)])
        for n in range(100):
            records.order_status(f"o{n}", "partially_filled")
        for n in range(0, 100, 2):
            records.order_status(f"o{n}", "filled")
        records.orders_sending([_order(100, "F100")])
        records.order_status("o1", "rejected", "late")
    orders = queries.orders(Window(limit=500)).items
    statuses = {o.client_order_id: (o.status, o.reason) for o in orders}
    assert statuses["o0"] == ("filled", "") and statuses["o98"] == ("filled", "")
    assert statuses["o3"] == ("partially_filled", "")
    assert statuses["o1"] == ("rejected", "late")
    assert statuses["o100"] == ("sent", "")
