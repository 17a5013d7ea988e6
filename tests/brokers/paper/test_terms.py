"""S8.10 and S2.6: an engine request the paper broker refuses — bad prices for its type, an
unknown symbol, a bracket leg or an OCO order of the wrong role or type, ``reject_next``
(SCENARIOS), a duplicate client order id, a session that cannot reach the broker — gets one
``OrderRejected`` per client order id of the request, and each id is reported."""

from __future__ import annotations

import pytest

from brokers.base import (
    AccountSnapshot,
    LegRequest,
    LegRole,
    OrderAccepted,
    OrderRejected,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    Snapshot,
)
from brokers.paper import (
    REJECT_DUPLICATE,
    REJECT_FORCED,
    REJECT_SESSION_CLOSED,
    PaperBroker,
    PaperSession,
)
from tests.brokers.paper.conftest import bracket, d, limit, stop_leg, target_leg
from tests.brokers.recording import ES, Recorder


def snapshot_of(session: PaperSession, sink: Recorder, account: str = "A1") -> AccountSnapshot:
    sink.take()
    session.request_snapshot("s")
    return next(e for e in sink.take() if isinstance(e, Snapshot)).accounts[account]


BAD = [
    pytest.param(OrderRequest("e", "A1", ES, 1, OrderType.LIMIT), "needs a price", id="no-price"),
    pytest.param(
        OrderRequest("e", "A1", ES, 1, OrderType.STOP, stop=d(0)), "positive", id="zero-stop"
    ),
    pytest.param(
        OrderRequest("e", "A1", "XXZ6", 1, OrderType.LIMIT, price=d(1)),
        "contract table",
        id="unknown-symbol",
    ),
    pytest.param(
        OrderRequest(
            "e", "A1", ES, 1, bracket=(LegRequest("e.s", LegRole.STOP, OrderType.LIMIT, d(1)),)
        ),
        "stop leg must be a stop or stop_limit",
        id="stop-leg-a-limit",
    ),
    pytest.param(
        OrderRequest("e", "A1", ES, 1, bracket=(stop_leg("e.s", 1), stop_leg("e.x", 2))),
        "at most one stop leg",
        id="two-stop-legs",
    ),
    pytest.param(
        OrderRequest("e", "A1", ES, 1, bracket=(target_leg("e.t", 0),)),
        "positive",
        id="leg-price",
    ),
    pytest.param(
        OrderRequest("e", "A1", ES, 1, OrderType.STOP, stop=d(1), oco=target_leg("e.t", 9)),
        "needs its role",
        id="oco-without-role",
    ),
    pytest.param(
        OrderRequest(
            "e",
            "A1",
            ES,
            1,
            OrderType.LIMIT,
            price=d(1),
            role=LegRole.STOP,
            oco=target_leg("e.t", 9),
        ),
        "stop leg must be",
        id="oco-stop-a-limit",
    ),
    pytest.param(
        OrderRequest("e", "A1", ES, 1, bracket=(stop_leg("e", 1),)),
        "used twice",
        id="same-id-twice",
    ),
    pytest.param(
        OrderRequest("e", "A1", ES, 0, OrderType.LIQUIDATE, bracket=(stop_leg("e.s", 1),)),
        "a liquidation has no bracket",
        id="liquidation-bracket",
    ),
]


@pytest.mark.parametrize(("request_", "why"), BAD)
def test_s8_10_a_malformed_request_is_rejected_once_per_client_order_id_and_reported(
    broker: PaperBroker,
    session: PaperSession,
    sink: Recorder,
    request_: OrderRequest,
    why: str,
) -> None:
    broker.set_price(ES, d(5000))
    sink.take()
    session.place_order(request_)
    rejected = sink.take()
    ids = request_.client_order_ids()
    assert [type(e) for e in rejected] == [OrderRejected] * len(set(ids))
    assert all(isinstance(e, OrderRejected) and why in e.reason for e in rejected)
    assert rejected[0].reason.startswith("InvalidOrder: ")  # type: ignore[union-attr]
    reports = snapshot_of(session, sink).orders
    assert reports == tuple(OrderReport(c, None, OrderStatus.REJECTED) for c in dict.fromkeys(ids))
    assert broker.working_orders("A1") == []
    assert broker.accepted_client_order_ids == ()


def test_s8_10_reject_next_rejects_a_whole_bracket_and_counts_it_as_one_request(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    broker.reject_next("c1")
    sink.take()
    session.place_order(bracket("e", 1, 4990, 4980, 5010))
    assert sink.take() == [
        OrderRejected("c1", "A1", "e", REJECT_FORCED),
        OrderRejected("c1", "A1", "e.s", REJECT_FORCED),
        OrderRejected("c1", "A1", "e.t", REJECT_FORCED),
    ]
    session.place_order(bracket("f", 1, 4990, 4980, 5010))
    assert [type(e) for e in sink.take()] == [OrderAccepted] * 3
    assert broker.accepted_client_order_ids == ("f", "f.s", "f.t")


def test_s2_6_each_order_of_a_bracket_is_reported_with_what_it_filled(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(bracket("e", 3, 4990, 4980, 5010))
    broker.fill_part("O1", 2)
    assert snapshot_of(session, sink).orders == (
        OrderReport("e", "O1", OrderStatus.WORKING, 2),
        OrderReport("e.s", "O2", OrderStatus.WORKING),
        OrderReport("e.t", "O3", OrderStatus.WORKING),
    )
    broker.set_price(ES, d(5010))
    assert snapshot_of(session, sink).orders == (
        OrderReport("e", "O1", OrderStatus.WORKING, 2),
        OrderReport("e.s", "O2", OrderStatus.CANCELLED),
        OrderReport("e.t", "O3", OrderStatus.FILLED, 2),
    )


def test_s2_6_a_bracket_reusing_an_accepted_id_is_rejected_whole_and_the_original_kept(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(limit("e.t", 1, 4000))
    sink.take()
    session.place_order(bracket("e", 1, 4990, 4980, 5010))
    assert sink.take() == [
        OrderRejected("c1", "A1", coid, REJECT_DUPLICATE) for coid in ("e", "e.s", "e.t")
    ]
    assert [r.client_order_id for r in broker.duplicate_rejections] == ["e.t"]
    assert snapshot_of(session, sink).orders == (
        OrderReport("e.t", "O1", OrderStatus.WORKING),
        OrderReport("e", None, OrderStatus.REJECTED),
        OrderReport("e.s", None, OrderStatus.REJECTED),
    )


def test_s8_10_a_bracket_sent_on_a_session_that_cannot_reach_the_broker_is_refused_unreported(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.drop("c1")
    sink.take()
    session.place_order(bracket("e", 1, 4990, 4980, 5010))
    assert sink.take() == [
        OrderRejected("c1", "A1", coid, REJECT_SESSION_CLOSED) for coid in ("e", "e.s", "e.t")
    ]
    session.open()
    assert snapshot_of(session, sink).orders == ()
