"""S8.10 with the paper broker's harness controls (SCENARIOS ``hold``, ``release``): a held
connection's limits and stops are not matched until released; cancels, modifications and the
owner's orders are never held. And what a snapshot shows of working orders."""

from __future__ import annotations

from brokers.base import (
    Fill,
    LegRole,
    ModifyRequest,
    OrderAccepted,
    OrderDone,
    OrderRequest,
    OrderType,
    OrderUpdated,
    Quote,
    Snapshot,
    TimeInForce,
    WorkingOrder,
)
from brokers.paper import DONE_CANCELLED, PaperBroker, PaperSession
from tests.brokers.paper.conftest import bracket, d, limit, pos, stop
from tests.brokers.recording import ES, START, Recorder


def test_s8_10_a_held_stop_is_not_matched_until_release_then_works_against_the_current_last(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    broker.hold("c1")
    session.place_order(stop("st", -1, 4990))
    session.place_order(stop("later", -1, 4900))
    broker.set_price(ES, d(4985))  # reaches the stop, but the connection is held
    assert sink.of(Fill) == []
    assert [o.client_order_id for o in broker.working_orders("A1")] == ["st", "later"]
    sink.take()
    broker.release("c1")  # marketable at the current last: fills at once, the other works on
    assert sink.take() == [
        Fill("c1", "A1", "X1", "O1", "st", ES, -1, d(4985), START, True),
    ]
    broker.set_price(ES, d(4900))
    assert [f.client_order_id for f in sink.of(Fill)] == ["later"]


def test_s8_10_held_orders_release_in_the_order_sent_a_market_bracket_entry_with_its_legs(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    broker.hold("c1")
    session.place_order(bracket("e", 1, None, 4995, 5010))
    session.place_order(limit("b", 1, 4999))
    broker.set_price(ES, d(4994))
    assert pos(broker) == 0
    sink.take()
    broker.release("c1")
    assert [
        (type(e).__name__, e.broker_order_id)  # type: ignore[union-attr]
        for e in sink.take()
    ] == [
        ("Fill", "O1"),  # the entry, at last
        ("OrderUpdated", "O2"),
        ("OrderUpdated", "O3"),
        ("Fill", "O2"),  # its stop-loss, already reached
        ("OrderDone", "O3"),
        ("Fill", "O4"),  # then the limit
    ]
    assert pos(broker) == 1


def test_s8_10_cancels_modifications_and_the_owner_s_orders_are_never_held(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    broker.hold("c1")
    session.place_order(limit("a", 1, 4990))
    session.place_order(limit("b", 1, 4990))
    sink.take()
    session.cancel_working("A1", ES, ("O1",))
    session.modify_order(ModifyRequest("A1", "O2", "b", qty=2))
    assert sink.take() == [
        OrderDone("c1", "A1", "a", "O1", DONE_CANCELLED),
        OrderUpdated("c1", "A1", "b", "O2", ES, 2, price=d(4990)),
    ]
    broker.place_working("A1", ES, 1, OrderType.LIMIT, price=d(5001))  # the owner's: fills
    assert [f.broker_order_id for f in sink.of(Fill)] == ["O3"]
    broker.release("c1")
    broker.set_price(ES, d(4990))
    assert [f.broker_order_id for f in sink.of(Fill)] == ["O3", "O2"]
    assert pos(broker) == 3


def test_s8_10_a_snapshot_lists_every_working_order_with_its_terms_and_links(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(bracket("e", 3, 4990, 4980, 5010, tif=TimeInForce.GTC))
    session.place_order(
        OrderRequest("sl", "A1", ES, 1, OrderType.STOP_LIMIT, price=d(5021), stop=d(5020))
    )
    broker.fill_part("O1", 1)
    sink.take()
    session.request_snapshot("s")
    events = sink.take()
    assert isinstance(events[0], Quote)
    snapshot = events[-1]
    assert isinstance(snapshot, Snapshot)
    assert snapshot.accounts["A1"].working == (
        WorkingOrder(
            "O1", "e", ES, 2, OrderType.LIMIT, price=d(4990), tif=TimeInForce.GTC, filled=1
        ),
        WorkingOrder(
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
        ),
        WorkingOrder(
            "O3",
            "e.t",
            ES,
            -1,
            OrderType.LIMIT,
            price=d(5010),
            tif=TimeInForce.GTC,
            role=LegRole.TARGET,
            parent="O1",
            oco="O2",
        ),
        WorkingOrder("O4", "sl", ES, 1, OrderType.STOP_LIMIT, price=d(5021), stop=d(5020)),
    )


def test_s8_10_an_inactive_leg_shows_as_inactive_in_a_snapshot(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    session.place_order(bracket("e", 1, 4990, 4980, 5010))  # no price needed to rest
    assert [type(e) for e in sink.take()] == [OrderAccepted] * 3
    session.request_snapshot("s")
    snapshot = sink.take()[-1]
    assert isinstance(snapshot, Snapshot)
    assert [(o.client_order_id, o.active) for o in snapshot.accounts["A1"].working] == [
        ("e", True),
        ("e.s", False),
        ("e.t", False),
    ]
