"""The paper broker: immediate fills, hold/release, reject_next, fail_snapshot, outages, tokens,
positions, withdrawn fills.

Rules cited: SCENARIOS `price`, `trade`, `hold`, `release`, `reject_next`, `fail_snapshot` rows,
SEMANTICS S3.5, and the paper broker's contract in brokers/base.py (requests return at once;
outcomes arrive as events).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
import trio

from brokers.base import (
    AccountSnapshot,
    AuthorizationError,
    BrokerEvent,
    Fill,
    FillCorrected,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionInfo,
    Quote,
    SessionLost,
    SessionRestored,
    Snapshot,
    SnapshotFailed,
    TokenExpired,
    TokenIssued,
    WorkingOrder,
)
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import (
    REJECT_DUPLICATE,
    REJECT_FORCED,
    REJECT_SESSION_CLOSED,
    REJECT_UNAUTHORIZED,
    SNAPSHOT_FORCED,
    PaperBroker,
    PaperBrokerError,
    PaperSession,
)
from brokers.paper.book import Position, apply_fill
from tests.brokers.recording import ES, NQ, START, Recorder


def market(cl: str, qty: int, account: str = "A1", symbol: str = ES) -> OrderRequest:
    return OrderRequest(cl, account, symbol, qty)


def liquidate(cl: str, account: str = "A1", symbol: str = ES) -> OrderRequest:
    return OrderRequest(cl, account, symbol, 0, OrderType.LIQUIDATE)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def broker(clock: VirtualClock) -> PaperBroker:
    return PaperBroker(clock, ContractTable())


@pytest.fixture
def sink() -> Recorder:
    return Recorder()


@pytest.fixture
def session(broker: PaperBroker, sink: Recorder) -> PaperSession:
    return broker.session("c1", ("A1", "A2"), sink)


def pos(broker: PaperBroker, account: str, symbol: str = ES) -> int:
    info = broker.positions(account).get(symbol)
    return info.qty if info is not None else 0


# --- immediate fills and quotes (SCENARIOS price) -------------------------------------------------


def test_market_order_is_accepted_then_filled_at_last(
    broker: PaperBroker, session: PaperSession, sink: Recorder, clock: VirtualClock
) -> None:
    broker.set_price(ES, Decimal("5000.25"))
    sink.take()
    clock.advance(timedelta(seconds=3))
    session.place_order(market("c-1", 2))
    assert sink.take() == [
        OrderAccepted("c1", "A1", "c-1", "O1", ES, 2, OrderType.MARKET),
        Fill("c1", "A1", "X1", "O1", "c-1", ES, 2, Decimal("5000.25"), clock.now(), True),
    ]
    assert broker.positions("A1") == {ES: PositionInfo(2, Decimal("5000.25"))}
    assert broker.working_orders("A1") == []


def test_set_price_quotes_every_delivering_session(
    broker: PaperBroker, clock: VirtualClock
) -> None:
    one, two, three = Recorder(), Recorder(), Recorder()
    broker.session("c1", ("A1",), one)
    broker.session("c2", ("A2",), two)
    broker.session("c3", ("A3",), three).close()
    broker.set_price(ES, Decimal(5000))
    quote = Quote(ES, Decimal(5000), clock.now())
    assert one.events == [quote]
    assert two.events == [quote]
    assert three.events == []
    assert broker.last_price(ES) == Decimal(5000)
    assert broker.last_price(NQ) is None


def test_market_order_without_a_price_is_rejected_no_quote(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    """SCENARIOS price: an order for a symbol with no price yet is rejected: NoQuote."""
    session.place_order(market("c-1", 1))
    assert sink.take() == [OrderRejected("c1", "A1", "c-1", "NoQuote: no price for ESZ6")]
    assert broker.positions("A1") == {}
    with pytest.raises(PaperBrokerError, match="NoQuote"):
        broker.trade("A1", ES, 1)


# --- hold / release (SCENARIOS hold, release) -----------------------------------------------------


def test_hold_keeps_orders_working_and_release_fills_them_in_order_at_current_last(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, Decimal(5000))
    broker.set_price(NQ, Decimal(20000))
    broker.hold("c1")
    session.place_order(market("c-1", 1))
    session.place_order(market("c-2", -3, account="A2", symbol=NQ))
    session.place_order(market("c-3", 2))
    assert [type(e) for e in sink.take()] == [Quote, Quote, *[OrderAccepted] * 3]
    assert broker.positions("A1") == {}
    assert broker.working_orders("A1") == [
        WorkingOrder("O1", "c-1", ES, 1, OrderType.MARKET),
        WorkingOrder("O3", "c-3", ES, 2, OrderType.MARKET),
    ]
    broker.set_price(ES, Decimal(5010))
    sink.take()
    broker.release("c1")
    fills = sink.of(Fill)
    assert [(f.client_order_id, f.qty, f.price) for f in fills] == [
        ("c-1", 1, Decimal(5010)),
        ("c-2", -3, Decimal(20000)),
        ("c-3", 2, Decimal(5010)),
    ]
    assert all(f.order_done for f in fills)
    assert broker.working_orders("A1") == []
    assert broker.positions("A1") == {ES: PositionInfo(3, Decimal(5010))}
    assert broker.positions("A2") == {NQ: PositionInfo(-3, Decimal(20000))}
    # Filling is immediate again.
    sink.take()
    session.place_order(market("c-4", -3))
    assert [type(e) for e in sink.take()] == [OrderAccepted, Fill]
    assert broker.positions("A1") == {}


def test_hold_is_per_connection(broker: PaperBroker, session: PaperSession) -> None:
    other = Recorder()
    other_session = broker.session("c2", ("B1",), other)
    broker.set_price(ES, Decimal(5000))
    broker.hold("c2")
    session.place_order(market("c-1", 1))
    other_session.place_order(market("d-1", 1, account="B1"))
    assert pos(broker, "A1") == 1
    assert pos(broker, "B1") == 0


def test_held_liquidation_closes_what_is_open_when_released(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    """SCENARIOS release: a liquidation closes whatever is open when it fills."""
    broker.set_price(ES, Decimal(5000))
    broker.trade("A1", ES, 2)
    broker.hold("c1")
    session.place_order(liquidate("liq-1"))
    sink.take()
    assert broker.working_orders("A1") == [WorkingOrder("O2", "liq-1", ES, 0, OrderType.LIQUIDATE)]
    broker.trade("A1", ES, 3)  # the trader adds by hand meanwhile: 5 open now
    broker.set_price(ES, Decimal(4990))
    sink.take()
    broker.release("c1")
    assert sink.take() == [
        Fill("c1", "A1", "X3", "O2", "liq-1", ES, -5, Decimal(4990), START, True),
    ]
    assert broker.positions("A1") == {}


def test_liquidation_accepted_with_qty_zero_and_fills_at_once(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, Decimal(5000))
    broker.trade("A1", ES, -4)
    sink.take()
    session.place_order(liquidate("liq-1"))
    accepted, fill = sink.take()
    assert accepted == OrderAccepted("c1", "A1", "liq-1", "O2", ES, 0, OrderType.LIQUIDATE)
    assert isinstance(fill, Fill)
    assert (fill.qty, fill.order_done) == (4, True)
    assert broker.positions("A1") == {}


def test_liquidation_of_flat_is_done_with_nothing_to_liquidate(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, Decimal(5000))
    sink.take()
    session.place_order(liquidate("liq-1"))
    assert sink.take() == [
        OrderAccepted("c1", "A1", "liq-1", "O1", ES, 0, OrderType.LIQUIDATE),
        OrderDone("c1", "A1", "liq-1", "O1", "nothing to liquidate"),
    ]
    # Under hold: open when sent, flat by the time it is released.
    broker.trade("A1", ES, 1)
    broker.hold("c1")
    session.place_order(liquidate("liq-2"))
    broker.trade("A1", ES, -1)
    sink.take()
    broker.release("c1")
    assert sink.take() == [OrderDone("c1", "A1", "liq-2", "O3", "nothing to liquidate")]
    # A liquidation of a symbol that never had a price: nothing open, so nothing to liquidate.
    session.place_order(liquidate("liq-3", symbol=NQ))
    assert sink.take()[-1] == OrderDone("c1", "A1", "liq-3", "O5", "nothing to liquidate")


# --- reject_next (SCENARIOS reject_next) ----------------------------------------------------------


def test_reject_next_rejects_that_many_engine_orders_liquidations_included(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, Decimal(5000))
    broker.trade("A1", ES, 1)
    broker.reject_next("c1", 2)
    broker.trade("A1", ES, 1)  # a manual trade is not an engine order: not counted
    sink.take()
    session.place_order(liquidate("liq-1"))
    session.place_order(market("c-1", 1, account="A2"))
    session.place_order(market("c-2", 1, account="A2"))
    events = sink.take()
    assert events[:2] == [
        OrderRejected("c1", "A1", "liq-1", REJECT_FORCED),
        OrderRejected("c1", "A2", "c-1", REJECT_FORCED),
    ]
    assert [type(e) for e in events[2:]] == [OrderAccepted, Fill]
    assert pos(broker, "A1") == 2
    assert pos(broker, "A2") == 1
    # A rejected order's id was never accepted: a retry with the same id goes through.
    session.place_order(liquidate("liq-1"))
    assert pos(broker, "A1") == 0


def test_reject_next_is_per_connection_and_adds_up(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    other = Recorder()
    other_session = broker.session("c2", ("B1",), other)
    broker.set_price(ES, Decimal(5000))
    broker.reject_next("c1")
    broker.reject_next("c1")
    other_session.place_order(market("d-1", 1, account="B1"))
    assert pos(broker, "B1") == 1
    for n in range(3):
        session.place_order(market(f"c-{n}", 1))
    assert [e.reason for e in sink.of(OrderRejected)] == [REJECT_FORCED, REJECT_FORCED]
    assert pos(broker, "A1") == 1
    with pytest.raises(PaperBrokerError):
        broker.reject_next("c1", 0)


# --- fail_snapshot (SCENARIOS fail_snapshot, SEMANTICS S3.5) ------------------------------------


def test_s3_5_fail_snapshot_answers_that_many_requests_with_a_broker_error(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, Decimal(5000))
    broker.trade("A1", ES, 2)
    broker.fail_snapshot("c1", 2)
    sink.take()
    session.request_snapshot("r1")
    session.request_snapshot("r2")
    assert sink.take() == [
        SnapshotFailed("c1", "r1", SNAPSHOT_FORCED),
        SnapshotFailed("c1", "r2", SNAPSHOT_FORCED),
    ]
    assert SNAPSHOT_FORCED.startswith("BrokerError")
    session.place_order(market("c-1", 1))  # orders are not affected
    assert [type(e) for e in sink.take()] == [OrderAccepted, Fill]
    session.request_snapshot("r3")
    quote, snapshot = sink.take()
    assert isinstance(quote, Quote)
    assert isinstance(snapshot, Snapshot)
    assert snapshot.request_id == "r3"
    assert snapshot.accounts["A1"].positions == {ES: PositionInfo(3, Decimal(5000))}


def test_s3_5_fail_snapshot_is_per_connection_adds_up_and_waits_for_a_request_that_arrives(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    other = Recorder()
    other_session = broker.session("c2", ("B1",), other)
    broker.fail_snapshot("c1")
    broker.fail_snapshot("c1")
    other_session.request_snapshot("o1")
    assert [type(e) for e in other.take()] == [Snapshot]
    broker.drop("c1")
    sink.take()
    session.request_snapshot("lost")  # does not reach the broker: nothing counted
    assert sink.take() == []
    session.open()
    sink.take()
    for n in range(3):
        session.request_snapshot(f"r{n}")
    assert [type(e) for e in sink.take()] == [SnapshotFailed, SnapshotFailed, Snapshot]


@pytest.mark.parametrize("count", [0, -1, 1.5, True, "2"])
def test_fail_snapshot_refuses_a_count_that_is_not_a_positive_int(
    broker: PaperBroker, session: PaperSession, sink: Recorder, count: object
) -> None:
    with pytest.raises(PaperBrokerError):
        broker.fail_snapshot("c1", count)  # type: ignore[arg-type]
    sink.take()
    session.request_snapshot("r1")
    assert [type(e) for e in sink.take()] == [Snapshot]


@pytest.mark.parametrize("bad", ["", None, 3])
def test_fail_snapshot_refuses_a_malformed_connection_id(broker: PaperBroker, bad: object) -> None:
    with pytest.raises(PaperBrokerError):
        broker.fail_snapshot(bad)  # type: ignore[arg-type]


# --- a withdrawn fill (FillCorrected) -------------------------------------------------------------


def test_correct_fill_takes_the_fill_out_of_the_position_and_tells_the_session(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, Decimal(5000))
    broker.trade("A1", ES, 2)
    session.place_order(market("c-1", 1))
    (fill,) = [e for e in sink.take() if isinstance(e, Fill) and e.client_order_id == "c-1"]
    assert broker.fill_ids("A1") == ("X1", fill.fill_id)
    assert pos(broker, "A1") == 3
    broker.correct_fill(fill.fill_id, "busted")
    assert sink.take() == [FillCorrected("c1", "A1", fill.fill_id, "busted")]
    assert pos(broker, "A1") == 2
    assert broker.fill_ids("A1") == ("X1",)
    with pytest.raises(PaperBrokerError, match="unknown fill"):
        broker.correct_fill(fill.fill_id)  # withdrawn once
    with pytest.raises(PaperBrokerError, match="unknown fill"):
        broker.correct_fill("X999")


# --- outages, close/open, tokens -----------------------------------------------------------------


def test_drop_loses_events_until_reopened_and_snapshot_resynchronises(
    broker: PaperBroker, session: PaperSession, sink: Recorder, clock: VirtualClock
) -> None:
    broker.set_price(ES, Decimal(5000))
    sink.take()
    broker.drop("c1", "broker outage")
    assert sink.take() == [SessionLost("c1", "broker outage")]
    assert not session.delivering
    broker.drop("c1")  # already down: nothing more
    broker.set_price(ES, Decimal(5001))
    broker.trade("A1", ES, 2)  # the position changes even though nothing is delivered
    session.place_order(market("c-1", 1))
    assert sink.take() == [OrderRejected("c1", "A1", "c-1", REJECT_SESSION_CLOSED)]
    session.request_snapshot("snap-lost")  # does not reach the broker
    assert sink.take() == []
    assert pos(broker, "A1") == 2
    session.open()
    assert sink.take() == [SessionRestored("c1")]
    assert session.delivering
    session.request_snapshot("snap-1")
    quote, *rest = sink.take()
    assert isinstance(quote, Quote)  # the current price comes before the snapshot
    assert rest == [
        Snapshot(
            "c1",
            "snap-1",
            {
                "A1": AccountSnapshot({ES: PositionInfo(2, Decimal(5001))}, ()),
                "A2": AccountSnapshot({}, ()),
            },
        )
    ]


def test_close_stops_delivery_and_orders_until_open(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, Decimal(5000))
    session.close()
    sink.take()
    broker.set_price(ES, Decimal(5001))
    broker.trade("A1", ES, 1)
    session.place_order(market("c-1", 1))
    assert sink.take() == [OrderRejected("c1", "A1", "c-1", REJECT_SESSION_CLOSED)]
    assert pos(broker, "A1") == 1
    session.open()
    session.place_order(market("c-1", 1))
    assert [type(e) for e in sink.take()] == [SessionRestored, OrderAccepted, Fill]
    assert pos(broker, "A1") == 2


def test_expire_token_then_reauthorize(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, Decimal(5000))
    sink.take()
    broker.expire_token("c1")
    assert sink.take() == [TokenExpired("c1")]
    broker.set_price(ES, Decimal(5001))
    broker.trade("A1", ES, 1)
    session.place_order(market("c-1", 1))
    assert sink.take() == [OrderRejected("c1", "A1", "c-1", REJECT_UNAUTHORIZED)]
    broker.reauthorize("c1")
    (issued,) = sink.take()
    assert issued == TokenIssued("c1", token="paper-token-1")
    assert "paper-token" not in repr(issued)
    session.place_order(market("c-1", 1))
    assert [type(e) for e in sink.take()] == [OrderAccepted, Fill]
    assert pos(broker, "A1") == 2


def test_token_issued_reaches_the_sink_even_while_the_link_is_down(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.drop("c1")
    broker.expire_token("c1")  # the engine tracks expiry itself: delivered even while down
    assert sink.take() == [SessionLost("c1", "network outage"), TokenExpired("c1")]
    broker.reauthorize("c1")
    assert sink.take() == [TokenIssued("c1", token="paper-token-1")]
    assert not session.delivering  # still dropped
    session.open()
    assert sink.take() == [SessionRestored("c1")]
    assert session.delivering


def test_a_new_session_replaces_the_old_one_and_the_broker_keeps_its_state(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, Decimal(5000))
    broker.trade("A1", ES, 2)
    broker.hold("c1")
    session.place_order(market("c-1", 1))
    sink.take()
    fresh = Recorder()
    restarted = broker.session("c1", ("A1", "A2"), fresh)
    broker.set_price(ES, Decimal(5002))
    assert sink.take() == []  # the old session is inert
    session.place_order(market("c-2", 1))
    assert sink.take() == [OrderRejected("c1", "A1", "c-2", REJECT_SESSION_CLOSED)]
    session.open()
    assert sink.take() == []
    restarted.place_order(market("c-1", 1))  # the same order again after the restart
    restarted.request_snapshot("s")
    events = fresh.take()
    assert events[:2] == [
        Quote(ES, Decimal(5002), START),
        OrderRejected("c1", "A1", "c-1", REJECT_DUPLICATE),
    ]
    assert events[2] == Quote(ES, Decimal(5002), START)  # the current price comes first
    snapshot = events[3]
    assert isinstance(snapshot, Snapshot)
    assert snapshot.accounts["A1"] == AccountSnapshot(
        {ES: PositionInfo(2, Decimal(5000))},
        (WorkingOrder("O2", "c-1", ES, 1, OrderType.MARKET),),
        orders=(OrderReport("c-1", "O2", OrderStatus.WORKING),),  # the duplicate is not new
    )
    broker.release("c1")
    assert [type(e) for e in fresh.take()] == [Fill]
    assert pos(broker, "A1") == 3


# --- manual trading (SCENARIOS trade) -------------------------------------------------------------


def test_manual_trade_in_parts(broker: PaperBroker, session: PaperSession, sink: Recorder) -> None:
    """SCENARIOS trade: one fill or one per part listed in `fills`, all at last."""
    broker.set_price(ES, Decimal(5000))
    sink.take()
    broker.trade("A1", ES, -3, fills=(1, 2))
    assert sink.take() == [
        OrderAccepted("c1", "A1", None, "O1", ES, -3, OrderType.MARKET),
        Fill("c1", "A1", "X1", "O1", None, ES, -1, Decimal(5000), START, False),
        Fill("c1", "A1", "X2", "O1", None, ES, -2, Decimal(5000), START, True),
    ]
    broker.trade("A1", ES, -2, fills=(-1, -1))  # parts signed like qty are fine too
    assert [f.qty for f in sink.of(Fill)] == [-1, -1]
    assert broker.positions("A1") == {ES: PositionInfo(-5, Decimal(5000))}
    for bad in ((1, 1), (), (0, 3), (-1, 3), (1, -4)):
        with pytest.raises(PaperBrokerError):
            broker.trade("A1", ES, 3, fills=bad)
    assert pos(broker, "A1") == -5


def test_manual_working_order_rests_until_cancelled(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    stop = broker.place_manual_working("A1", ES, -1)
    assert stop == "O1"
    assert sink.take() == [OrderAccepted("c1", "A1", None, "O1", ES, -1, OrderType.MARKET)]
    broker.set_price(ES, Decimal(5000))
    broker.release("c1")
    assert broker.working_orders("A1") == [WorkingOrder("O1", None, ES, -1, OrderType.MARKET)]


def test_cancel_working(broker: PaperBroker, session: PaperSession, sink: Recorder) -> None:
    broker.set_price(ES, Decimal(5000))
    broker.set_price(NQ, Decimal(20000))
    a = broker.place_manual_working("A1", ES, -1)
    b = broker.place_manual_working("A1", NQ, -1)
    c = broker.place_manual_working("A1", ES, 2)
    d = broker.place_manual_working("A2", ES, 1)
    broker.hold("c1")
    session.place_order(market("c-1", 1))  # held engine order O5
    sink.take()
    session.cancel_working("A1", ES, (c, "O999"))  # only listed ids; unknown ids ignored
    assert sink.take() == [OrderDone("c1", "A1", None, c, "cancelled")]
    session.cancel_working("A1", ES)
    assert sink.take() == [
        OrderDone("c1", "A1", None, a, "cancelled"),
        OrderDone("c1", "A1", "c-1", "O5", "cancelled"),
    ]
    session.cancel_working("A1", None)
    assert sink.take() == [OrderDone("c1", "A1", None, b, "cancelled")]
    assert broker.working_orders("A1") == []
    assert [o.broker_order_id for o in broker.working_orders("A2")] == [d]
    broker.release("c1")  # the cancelled held order does not fill
    assert sink.take() == []
    assert broker.positions("A1") == {}
    with pytest.raises(PaperBrokerError):
        session.cancel_working("B9", None)


def test_duplicate_client_order_id_is_rejected(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, Decimal(5000))
    session.place_order(market("c-1", 1))
    sink.take()
    session.place_order(market("c-1", 1, account="A2"))
    assert sink.take() == [OrderRejected("c1", "A2", "c-1", REJECT_DUPLICATE)]
    assert pos(broker, "A1") == 1
    assert pos(broker, "A2") == 0


# --- validation at the edge ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda s, b: s.place_order(market("x", 1, account="B9")),  # not this session's account
        lambda s, b: s.place_order(market("x", 0)),
        lambda s, b: s.place_order(OrderRequest("x", "A1", ES, True)),  # a bool is no quantity
        lambda s, b: s.place_order(market("", 1)),
        lambda s, b: b.trade("B9", ES, 1),
        lambda s, b: b.trade("A1", ES, 0),
        lambda s, b: b.place_manual_working("A1", ES, 0),
        lambda s, b: b.set_price(ES, Decimal(0)),
        lambda s, b: b.set_price(ES, 5000.0),
        lambda s, b: b.set_price("XXZ6", Decimal(1)),
    ],
)
def test_programming_errors_raise(
    broker: PaperBroker,
    session: PaperSession,
    sink: Recorder,
    call: Callable[[PaperSession, PaperBroker], None],
) -> None:
    broker.set_price(ES, Decimal(5000))
    sink.take()
    with pytest.raises(PaperBrokerError):
        call(session, broker)
    assert sink.events == []


def test_accounts_declared_without_a_session_can_trade(broker: PaperBroker) -> None:
    broker.add_accounts("c9", ("Z1",))
    broker.set_price(ES, Decimal(5000))
    broker.trade("Z1", ES, 1)
    assert broker.account_of("Z1") == "c9"
    assert broker.account_of("nobody") is None
    assert pos(broker, "Z1") == 1


# --- positions -----------------------------------------------------------------------------------


def test_position_average_price_rules(broker: PaperBroker, session: PaperSession) -> None:
    broker.set_price(ES, Decimal(5000))
    broker.trade("A1", ES, 1)
    broker.set_price(ES, Decimal("5010.50"))
    broker.trade("A1", ES, 3)  # adding moves the average: (5000 + 3 x 5010.50) / 4
    assert broker.positions("A1")[ES] == PositionInfo(4, Decimal("5007.875"))
    broker.set_price(ES, Decimal(5020))
    broker.trade("A1", ES, -1)  # reducing keeps it
    assert broker.positions("A1")[ES] == PositionInfo(3, Decimal("5007.875"))
    broker.trade("A1", ES, -5)  # crossing zero starts the new side at the fill price
    assert broker.positions("A1")[ES] == PositionInfo(-2, Decimal(5020))
    broker.trade("A1", ES, 2)  # flat: removed
    assert broker.positions("A1") == {}


def test_apply_fill_unit() -> None:
    assert apply_fill(None, -2, Decimal(10)) == Position(-2, Decimal(10))
    assert apply_fill(Position(-2, Decimal(10)), -2, Decimal(20)) == Position(-4, Decimal(15))
    assert apply_fill(Position(-4, Decimal(15)), 1, Decimal(30)) == Position(-3, Decimal(15))
    assert apply_fill(Position(-3, Decimal(15)), 3, Decimal(30)) is None
    assert apply_fill(Position(-3, Decimal(15)), 4, Decimal(30)) == Position(1, Decimal(30))


# --- concurrency and determinism -----------------------------------------------------------------


def test_thread_safety_smoke(broker: PaperBroker) -> None:
    """Several threads place orders concurrently: every fill is applied once, sums are right."""
    threads_n, orders_n = 8, 150
    sinks = [Recorder() for _ in range(threads_n)]
    accounts = [f"T{n}" for n in range(threads_n)]
    sessions = [broker.session(f"c{n}", (accounts[n],), sinks[n]) for n in range(threads_n)]
    shared = broker.session("cs", ("S",), Recorder())
    broker.set_price(ES, Decimal(5000))
    start = threading.Barrier(threads_n + 1)

    def work(n: int) -> None:
        start.wait()
        for i in range(orders_n):
            qty = 1 if i % 3 else -2
            sessions[n].place_order(market(f"t{n}-{i}", qty, account=accounts[n]))
            shared.place_order(market(f"s{n}-{i}", 1, account="S"))
            if i % 25 == 0:
                broker.set_price(ES, Decimal(5000 + i))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join()

    expected = sum(1 if i % 3 else -2 for i in range(orders_n))
    all_fills: list[Fill] = []
    for n in range(threads_n):
        assert pos(broker, accounts[n]) == expected
        fills = sinks[n].of(Fill)
        assert len(fills) == orders_n
        assert sum(f.qty for f in fills) == expected
        # Per session, each order's acceptance comes right before its fill.
        kinds = [type(e) for e in sinks[n].events if not isinstance(e, Quote)]
        assert kinds == [OrderAccepted, Fill] * orders_n
        all_fills.extend(fills)
    assert pos(broker, "S") == threads_n * orders_n
    fill_ids = [f.fill_id for f in all_fills]
    assert len(set(fill_ids)) == len(fill_ids)


def _script(broker: PaperBroker, clock: VirtualClock) -> list[BrokerEvent]:
    sink = Recorder()
    session = broker.session("c1", ("A1", "A2"), sink)
    broker.set_price(ES, Decimal(5000))
    broker.trade("A1", ES, 3, fills=(1, 2))
    broker.hold("c1")
    session.place_order(market("c-1", 1, account="A2"))
    session.place_order(liquidate("liq-1"))
    clock.advance(timedelta(seconds=5))
    broker.set_price(ES, Decimal("5000.25"))
    broker.release("c1")
    broker.reject_next("c1")
    session.place_order(market("c-2", 1))
    broker.expire_token("c1")
    broker.reauthorize("c1")
    broker.drop("c1")
    broker.trade("A2", ES, -1)
    session.open()
    session.request_snapshot("s1")
    return sink.events


def test_same_calls_give_the_same_events() -> None:
    runs = []
    for _ in range(2):
        clock = VirtualClock(START)
        runs.append(_script(PaperBroker(clock, ContractTable()), clock))
    assert runs[0] == runs[1]
    assert len(runs[0]) > 10
    assert [f.fill_id for f in runs[0] if isinstance(f, Fill)] == ["X1", "X2", "X3", "X4"]


# --- orders known by client order id (S2.6: resolving an unknown outcome) ---------------------


def snapshot_of(session: PaperSession, sink: Recorder, account: str = "A1") -> AccountSnapshot:
    sink.take()
    session.request_snapshot("s")
    snapshots = [e for e in sink.take() if isinstance(e, Snapshot)]
    return snapshots[-1].accounts[account]


def test_a_snapshot_reports_every_engine_order_the_broker_has_seen_with_its_status(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, Decimal(5000))
    session.place_order(market("filled", 1))
    broker.reject_next("c1")
    session.place_order(market("refused", 1))
    broker.hold("c1")
    session.place_order(market("resting", 1))
    session.place_order(market("cancelled", -1))
    order_ids = {e.client_order_id: e.broker_order_id for e in sink.of(OrderAccepted)}
    session.cancel_working("A1", ES, (order_ids["cancelled"],))
    broker.drop("c1")
    session.place_order(market("lost", 1))  # never reaches the broker
    session.open()  # the link is back
    reports = {r.client_order_id: r for r in snapshot_of(session, sink).orders}
    assert {c: r.status for c, r in reports.items()} == {
        "filled": OrderStatus.FILLED,
        "refused": OrderStatus.REJECTED,
        "resting": OrderStatus.WORKING,
        "cancelled": OrderStatus.CANCELLED,
    }
    assert reports["filled"].broker_order_id == order_ids["filled"]
    assert snapshot_of(session, sink, "A2").orders == ()  # per account


def test_the_paper_authorize_url_returns_a_single_use_code_that_reauthorizes(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.expire_token("c1")
    url = broker.authorize_url("c1", "st4te", "http://127.0.0.1:8080/oauth/callback")
    assert url.startswith("http://127.0.0.1:8080/oauth/callback?code=")
    assert url.endswith("&state=st4te")
    code = url.split("code=")[1].split("&")[0]
    sink.take()
    trio.run(broker.exchange_code, "c1", code, "http://127.0.0.1:8080/oauth/callback")
    assert [type(e) for e in sink.take()] == [TokenIssued]
    with pytest.raises(AuthorizationError, match="does not know"):
        trio.run(broker.exchange_code, "c1", code, "http://127.0.0.1:8080/oauth/callback")
