"""S8.10 across processes: a paper broker reloaded from its state file keeps working the resting
orders it had — their types, prices, time in force, bracket and OCO links, activity and fills —
and held ones stay held."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brokers.base import (
    Fill,
    LegRole,
    ModifyRequest,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Snapshot,
    TimeInForce,
    WorkingOrder,
)
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from tests.brokers.paper.conftest import bracket, d, pos, stop
from tests.brokers.recording import ES, Recorder


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "paper.json"


def reload(clock: VirtualClock, path: Path) -> tuple[PaperBroker, Recorder]:
    broker = PaperBroker(clock, ContractTable(), state_file=path)
    sink = Recorder()
    broker.session("c1", ("A1",), sink)
    return broker, sink


def test_s8_10_a_reloaded_broker_keeps_working_its_brackets_and_oco_pairs(
    clock: VirtualClock, path: Path
) -> None:
    first, _ = reload(clock, path)
    first.set_price(ES, d(5000))
    session = first.session("c1", ("A1",), Recorder())
    session.place_order(bracket("e", 3, 4990, 4980, 5010, tif=TimeInForce.GTC))
    first.fill_part("O1", 1)
    first.place_oco("A1", ES, -1, stop=d(4970), target=d(5030))
    session.place_order(
        OrderRequest("sl", "A1", ES, -1, OrderType.STOP_LIMIT, price=d(4997), stop=d(4995))
    )
    first.set_price(ES, d(4994))  # triggers the stop-limit, below its limit: not filled
    before = first.working_orders("A1")
    del first, session

    broker, sink = reload(clock, path)
    assert broker.working_orders("A1") == before
    assert before[1] == WorkingOrder(
        "O2",
        "e.s",
        ES,
        -1,
        OrderType.STOP,
        stop=d(4980),
        tif=TimeInForce.GTC,
        role=LegRole.STOP,
        parent="O1",
        oco="O3",
    )
    assert before[0].filled == 1
    broker.set_price(ES, d(4997))  # the stop-limit stayed triggered: a limit at 4997 fills
    assert [f.client_order_id for f in sink.of(Fill)] == ["sl"]
    sink.take()
    broker.set_price(ES, d(4990))  # the entry fills the rest: its legs follow
    assert sink.take()[1:] == [
        Fill("c1", "A1", "X3", "O1", "e", ES, 2, d(4990), clock.now(), True),
        OrderUpdated("c1", "A1", "e.s", "O2", ES, -3, stop=d(4980)),
        OrderUpdated("c1", "A1", "e.t", "O3", ES, -3, price=d(5010)),
    ]
    broker.set_price(ES, d(5030))  # the OCO pair's target, then the bracket's at 5010
    assert [(e.broker_order_id, type(e).__name__) for e in sink.take()[1:]] == [  # type: ignore[union-attr]
        ("O3", "Fill"),
        ("O2", "OrderDone"),
        ("O5", "Fill"),
        ("O4", "OrderDone"),
    ]
    assert pos(broker) == -2  # 3 bought by the entry, 1 sold by the stop-limit, 3 + 1 by legs
    broker2, _ = reload(clock, path)
    assert broker2.working_orders("A1") == []


def test_s8_10_a_reloaded_broker_keeps_a_held_limit_held_and_its_reports(
    clock: VirtualClock, path: Path
) -> None:
    first, _ = reload(clock, path)
    first.set_price(ES, d(5000))
    first.hold("c1")
    first.session("c1", ("A1",), Recorder()).place_order(stop("st", -1, 4990))
    del first

    broker, sink = reload(clock, path)
    broker.set_price(ES, d(4980))
    assert sink.of(Fill) == []
    broker.release("c1")
    assert [f.client_order_id for f in sink.of(Fill)] == ["st"]
    session = broker.session("c1", ("A1",), sink)
    session.modify_order(ModifyRequest("A1", "O1", "st", qty=2))  # done: refused
    sink.take()
    session.request_snapshot("s")
    snapshot = sink.take()[-1]
    assert isinstance(snapshot, Snapshot)
    assert snapshot.accounts["A1"].orders == (OrderReport("st", "O1", OrderStatus.FILLED, 1),)


def test_s8_10_the_state_file_holds_every_field_of_a_resting_order(
    clock: VirtualClock, path: Path
) -> None:
    broker, _ = reload(clock, path)
    broker.place_working(
        "A1", ES, 2, OrderType.LIMIT, price=d(4990), bracket_stop=d(4980), tif=TimeInForce.GTC
    )
    leg = json.loads(path.read_text())["working"][1]
    assert leg == {
        "broker_order_id": "O2",
        "client_order_id": None,
        "connection": "c1",
        "account": "A1",
        "symbol": ES,
        "qty": -2,
        "order_type": "stop",
        "price": None,
        "stop": "4980",
        "tif": "gtc",
        "role": "stop",
        "parent": "O1",
        "oco": None,
        "active": False,
        "filled": 0,
        "triggered": False,
    }


def test_a_state_file_from_before_working_orders_still_loads(
    clock: VirtualClock, path: Path
) -> None:
    broker, _ = reload(clock, path)
    broker.place_manual_working("A1", ES, 1)
    data = json.loads(path.read_text())
    for key in ("price", "stop", "tif", "role", "parent", "oco", "active", "filled", "triggered"):
        del data["working"][0][key]
    path.write_text(json.dumps(data))
    again, _ = reload(clock, path)
    assert again.working_orders("A1") == [WorkingOrder("O1", None, ES, 1, OrderType.MARKET)]
