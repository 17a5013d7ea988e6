"""The paper broker with a state file: it survives its process like a remote broker.

A "crash" here is dropping the broker object without any shutdown and building a new one on the
same file, which is all a ``kill -9`` leaves behind. Rules cited: the state-file contract in
brokers/paper/broker.py (saved after every change, before its events; atomic replace) and S2.6
(a client order id is accepted once, ever).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from brokers.base import (
    BrokerEvent,
    Fill,
    OrderAccepted,
    OrderRejected,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionInfo,
    Quote,
    SessionLost,
    Snapshot,
    SnapshotFailed,
    TokenExpired,
    WorkingOrder,
)
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import REJECT_DUPLICATE, REJECT_FORCED, PaperBroker, PaperBrokerError
from brokers.paper.state import DuplicateRejection

START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
ES = "ESZ6"
NQ = "NQZ6"


class Recorder:
    def __init__(self, on_event: Callable[[BrokerEvent], None] | None = None) -> None:
        self.events: list[BrokerEvent] = []
        self.on_event = on_event

    def __call__(self, event: BrokerEvent) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def take(self) -> list[BrokerEvent]:
        events, self.events = self.events, []
        return events


def market(cl: str, qty: int, account: str = "A1", symbol: str = ES) -> OrderRequest:
    return OrderRequest(cl, account, symbol, qty)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "paper.json"


def new_broker(clock: VirtualClock, path: Path) -> PaperBroker:
    return PaperBroker(clock, ContractTable(), state_file=path)


def on_disk(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_no_file_is_a_fresh_broker_and_nothing_is_written_until_a_change(
    clock: VirtualClock, path: Path
) -> None:
    broker = new_broker(clock, path)
    assert not path.exists()
    assert broker.positions("A1") == {}
    broker.add_accounts("c1", ("A1",))
    assert on_disk(path)["accounts"] == {"A1": "c1"}


def test_reload_after_a_crash_keeps_positions_prices_and_counters(
    clock: VirtualClock, path: Path
) -> None:
    broker = new_broker(clock, path)
    sink = Recorder()
    session = broker.session("c1", ("A1", "A2"), sink)
    broker.set_price(ES, Decimal("5000.25"))
    broker.set_price(NQ, Decimal(18000))
    broker.trade("A1", ES, 1)
    broker.set_price(ES, Decimal("5001.50"))
    broker.trade("A1", ES, 2, (1, 1))  # average 5001.083333...
    session.place_order(market("c-1", -1, "A2", NQ))
    expected = {
        "A1": broker.positions("A1"),
        "A2": broker.positions("A2"),
    }
    assert expected["A1"][ES].qty == 3
    assert expected["A2"] == {NQ: PositionInfo(-1, Decimal(18000))}
    del broker, session  # kill -9: no close, no flush

    again = new_broker(clock, path)
    assert again.positions("A1") == expected["A1"]  # the exact average price, not rounded
    assert again.positions("A2") == expected["A2"]
    assert again.last_price(ES) == Decimal("5001.50")
    assert again.last_price(NQ) == Decimal(18000)
    assert again.account_of("A2") == "c1"
    assert again.accepted_client_order_ids == ("c-1",)

    # Ids continue where the last process stopped: 3 orders and 4 fills were made before.
    sink = Recorder()
    session = again.session("c1", ("A1", "A2"), sink)
    session.place_order(market("c-2", 1))
    assert sink.take() == [
        OrderAccepted("c1", "A1", "c-2", "O4", ES, 1, OrderType.MARKET),
        Fill("c1", "A1", "X5", "O4", "c-2", ES, 1, Decimal("5001.50"), START, True),
    ]
    assert again.positions("A1")[ES].qty == 4


def test_a_client_order_id_is_rejected_as_duplicate_across_reloads_and_recorded(
    clock: VirtualClock, path: Path
) -> None:
    broker = new_broker(clock, path)
    broker.session("c1", ("A1",), Recorder()).place_order(market("c-1", 1))  # no price yet
    broker.set_price(ES, Decimal(5000))
    broker.session("c1", ("A1",), Recorder()).place_order(market("c-2", 1))
    assert broker.accepted_client_order_ids == ("c-2",)  # a rejected order is not accepted
    del broker

    clock.advance(timedelta(seconds=5))
    again = new_broker(clock, path)
    sink = Recorder()
    session = again.session("c1", ("A1",), sink)
    session.place_order(market("c-2", 1))
    session.place_order(market("c-1", 1))  # rejected before for no quote: a new order now
    assert sink.take()[0] == OrderRejected("c1", "A1", "c-2", REJECT_DUPLICATE)
    assert again.positions("A1")[ES].qty == 2
    rejection = DuplicateRejection("c-2", "A1", "c1", (START + timedelta(seconds=5)).isoformat())
    assert again.duplicate_rejections == (rejection,)
    assert again.accepted_client_order_ids == ("c-2", "c-1")
    del again

    third = new_broker(clock, path)
    assert third.duplicate_rejections == (rejection,)
    assert on_disk(path)["duplicate_rejections"] == [
        {"client_order_id": "c-2", "account": "A1", "connection": "c1", "time": rejection.time}
    ]
    assert on_disk(path)["client_order_ids"] == ["c-2", "c-1"]


def test_held_orders_reject_next_and_manual_orders_survive_a_reload(
    clock: VirtualClock, path: Path
) -> None:
    broker = new_broker(clock, path)
    session = broker.session("c1", ("A1",), Recorder())
    broker.set_price(ES, Decimal(5000))
    stop = broker.place_manual_working("A1", ES, -1)
    broker.hold("c1")
    session.place_order(market("c-1", 2))
    session.place_order(OrderRequest("c-2", "A1", ES, 0, OrderType.LIQUIDATE))
    broker.reject_next("c1", 2)
    del broker, session

    again = new_broker(clock, path)
    assert again.working_orders("A1") == [
        WorkingOrder(stop, None, ES, -1, OrderType.MARKET),
        WorkingOrder("O2", "c-1", ES, 2, OrderType.MARKET),
        WorkingOrder("O3", "c-2", ES, 0, OrderType.LIQUIDATE),
    ]
    sink = Recorder()
    session = again.session("c1", ("A1",), sink)
    session.place_order(market("c-3", 1))
    session.place_order(market("c-4", 1))
    assert [e for e in sink.take() if isinstance(e, OrderRejected)] == [
        OrderRejected("c1", "A1", "c-3", REJECT_FORCED),
        OrderRejected("c1", "A1", "c-4", REJECT_FORCED),
    ]
    session.place_order(market("c-5", 1))  # still held: joins the queue
    assert again.positions("A1") == {}
    again.release("c1")  # in the order sent: +2, then liquidate the 2, then +1
    assert again.positions("A1") == {ES: PositionInfo(1, Decimal(5000))}
    assert [o.broker_order_id for o in again.working_orders("A1")] == [stop]
    del again
    assert new_broker(clock, path).positions("A1") == {ES: PositionInfo(1, Decimal(5000))}


def test_s3_5_snapshots_left_to_fail_survive_a_reload(clock: VirtualClock, path: Path) -> None:
    broker = new_broker(clock, path)
    session = broker.session("c1", ("A1",), Recorder())
    broker.fail_snapshot("c1", 3)
    session.request_snapshot("r1")
    assert on_disk(path)["fail_snapshot"] == {"c1": 2}  # the one answered is on disk too
    del broker, session

    again = new_broker(clock, path)
    sink = Recorder()
    session = again.session("c1", ("A1",), sink)
    for n in range(3):
        session.request_snapshot(f"r{n + 2}")
    assert [type(e) for e in sink.take()] == [SnapshotFailed, SnapshotFailed, Snapshot]
    assert "c1" not in on_disk(path)["fail_snapshot"]


def test_outages_and_expired_tokens_outlive_the_process(clock: VirtualClock, path: Path) -> None:
    broker = new_broker(clock, path)
    broker.session("c1", ("A1",), Recorder())
    broker.session("c2", ("A2",), Recorder())
    broker.drop("c1")
    broker.expire_token("c2")
    del broker

    again = new_broker(clock, path)
    one, two = Recorder(), Recorder()
    first = again.session("c1", ("A1",), one)
    second = again.session("c2", ("A2",), two)
    assert not first.delivering
    assert not second.delivering
    first.open()  # the engine reopening its session ends the outage
    assert first.delivering
    again.reauthorize("c2")
    assert second.delivering


def test_the_file_has_every_change_before_its_events_are_delivered(
    clock: VirtualClock, path: Path
) -> None:
    seen: list[tuple[str, Any]] = []

    def look(event: BrokerEvent) -> None:
        data = on_disk(path)
        if isinstance(event, Fill):
            seen.append(("fill", data["positions"]["A1"][ES]["qty"]))
        elif isinstance(event, OrderAccepted):
            seen.append(("accepted", data["client_order_ids"]))
        elif isinstance(event, Quote):
            seen.append(("quote", data["prices"][ES]))
        elif isinstance(event, OrderRejected):
            seen.append(("rejected", len(data["duplicate_rejections"])))

    broker = new_broker(clock, path)
    session = broker.session("c1", ("A1",), Recorder(look))
    broker.set_price(ES, Decimal(5000))
    broker.trade("A1", ES, 3, (1, 2))
    session.place_order(market("c-1", -1))
    session.place_order(market("c-1", -1))
    # Every event saw its whole change already on disk (the trade's second part included).
    assert seen == [
        ("quote", "5000"),
        ("accepted", []),
        ("fill", 3),
        ("fill", 3),
        ("accepted", ["c-1"]),
        ("fill", 2),
        ("rejected", 1),
    ]
    assert not path.with_name(f".{path.name}.tmp").exists()


def test_a_failed_write_leaves_the_old_file_and_delivers_nothing(
    clock: VirtualClock, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = new_broker(clock, path)
    sink = Recorder()
    session = broker.session("c1", ("A1",), sink)
    broker.set_price(ES, Decimal(5000))
    session.place_order(market("c-1", 1))
    sink.take()
    before = path.read_text()

    def dies(*_: object) -> None:
        raise OSError("killed mid-write")

    monkeypatch.setattr(os, "replace", dies)
    with pytest.raises(OSError, match="killed mid-write"):
        session.place_order(market("c-2", 1))
    assert path.read_text() == before  # never torn: the old state, whole
    assert sink.take() == []  # the engine saw nothing the file does not have
    monkeypatch.undo()
    del broker, session

    again = new_broker(clock, path)
    assert again.positions("A1") == {ES: PositionInfo(1, Decimal(5000))}
    assert again.accepted_client_order_ids == ("c-1",)


def test_a_sink_that_calls_back_gets_its_events_after_the_queued_ones(
    clock: VirtualClock, path: Path
) -> None:
    broker = new_broker(clock, path)
    sessions: dict[str, Any] = {}

    def copy(event: BrokerEvent) -> None:  # a follower copying every leader fill, in the sink
        if isinstance(event, Fill) and event.account == "L":
            sessions["f"].place_order(market(f"copy-{event.fill_id}", event.qty, "F"))

    leader, follower = Recorder(copy), Recorder()
    sessions["l"] = broker.session("lead", ("L",), leader)
    sessions["f"] = broker.session("fol", ("F",), follower)
    broker.set_price(ES, Decimal(5000))
    leader.take(), follower.take()
    broker.trade("L", ES, 3, (1, 2))
    assert [type(e).__name__ for e in leader.take()] == ["OrderAccepted", "Fill", "Fill"]
    assert [(type(e).__name__, getattr(e, "client_order_id", None)) for e in follower.take()] == [
        ("OrderAccepted", "copy-X1"),
        ("Fill", "copy-X1"),
        ("OrderAccepted", "copy-X2"),
        ("Fill", "copy-X2"),
    ]
    assert new_broker(clock, path).positions("F") == {ES: PositionInfo(3, Decimal(5000))}


def test_events_lost_to_an_outage_stay_lost_after_a_reload(clock: VirtualClock, path: Path) -> None:
    broker = new_broker(clock, path)
    sink = Recorder()
    broker.session("c1", ("A1",), sink)
    broker.set_price(ES, Decimal(5000))
    broker.drop("c1", "broker outage")
    broker.trade("A1", ES, 1)
    assert sink.take() == [Quote(ES, Decimal(5000), START), SessionLost("c1", "broker outage")]
    broker.expire_token("c1")
    assert sink.take() == [TokenExpired("c1")]
    assert new_broker(clock, path).positions("A1") == {ES: PositionInfo(1, Decimal(5000))}


@pytest.mark.parametrize(
    "content",
    ["", "{", "[]", '{"version": 99}', '{"version": 1}', '{"version": 1, "order_seq": "x"}'],
)
def test_a_file_that_is_not_a_state_file_is_a_clear_error(
    clock: VirtualClock, path: Path, content: str
) -> None:
    path.write_text(content)
    with pytest.raises(PaperBrokerError, match="not a paper broker state file"):
        new_broker(clock, path)


def test_without_a_state_file_nothing_is_written(clock: VirtualClock, tmp_path: Path) -> None:
    broker = PaperBroker(clock, ContractTable())
    sink = Recorder()
    session = broker.session("c1", ("A1",), sink)
    broker.set_price(ES, Decimal(5000))
    session.place_order(market("c-1", 1))
    session.place_order(market("c-1", 1))
    assert broker.state_file is None
    assert list(tmp_path.iterdir()) == []
    assert broker.accepted_client_order_ids == ("c-1",)
    assert [d.client_order_id for d in broker.duplicate_rejections] == ["c-1"]


def test_the_orders_a_snapshot_reports_survive_a_reload(clock: VirtualClock, path: Path) -> None:
    """S2.6: a restarted engine asks the broker about orders of unknown outcome; a broker that
    outlived the engine still knows every order it saw."""
    broker = new_broker(clock, path)
    broker.set_price(ES, Decimal(5000))
    broker.session("c1", ("A1",), Recorder()).place_order(market("c-1", 1))
    del broker

    again = new_broker(clock, path)
    sink = Recorder()
    again.session("c1", ("A1",), sink).request_snapshot("s")
    snapshot = next(e for e in sink.take() if isinstance(e, Snapshot))
    assert snapshot.accounts["A1"].orders == (OrderReport("c-1", "O1", OrderStatus.FILLED, 1),)


def test_a_state_file_from_before_order_reports_still_loads(
    clock: VirtualClock, path: Path
) -> None:
    broker = new_broker(clock, path)
    broker.set_price(ES, Decimal(5000))
    del broker
    data = on_disk(path)
    del data["orders"]
    path.write_text(json.dumps(data))
    assert new_broker(clock, path).last_price(ES) == Decimal(5000)


def test_a_state_file_from_before_fail_snapshot_still_loads(
    clock: VirtualClock, path: Path
) -> None:
    broker = new_broker(clock, path)
    broker.set_price(ES, Decimal(5000))
    del broker
    data = on_disk(path)
    del data["fail_snapshot"]
    path.write_text(json.dumps(data))
    sink = Recorder()
    new_broker(clock, path).session("c1", ("A1",), sink).request_snapshot("s")
    assert [type(e) for e in sink.take()] == [Quote, Snapshot]
