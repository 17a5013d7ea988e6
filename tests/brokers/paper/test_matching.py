"""S8.10: the paper broker works limit, stop and stop-limit orders against the market, brackets
whose legs work once their entry fills, OCO pairs, modifications and cancels — for the engine's
orders (through its session) and the owner's (PaperBroker.place_working, place_oco, modify,
cancel)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.base import (
    Fill,
    LegRole,
    ModifyRejected,
    ModifyRequest,
    OrderAccepted,
    OrderDone,
    OrderRequest,
    OrderType,
    OrderUpdated,
    Quote,
    WorkingOrder,
)
from brokers.clock import VirtualClock
from brokers.paper import (
    DONE_CANCELLED,
    DONE_ENTRY_CANCELLED,
    DONE_MODIFIED_TO_FILLED,
    DONE_OCO_CANCELLED,
    DONE_OCO_FILLED,
    REJECT_UNKNOWN_ORDER,
    PaperBroker,
    PaperBrokerError,
    PaperSession,
    PlacedOrder,
)
from tests.brokers.paper.conftest import bracket, d, limit, pos, stop, target_leg
from tests.brokers.recording import ES, NQ, START, Recorder


def fill(
    broker_id: str, fill_id: str, qty: int, price: int | str, cl: str | None, done: bool = True
) -> Fill:
    return Fill("c1", "A1", fill_id, broker_id, cl, ES, qty, d(price), START, done)


def quote(last: int | str) -> Quote:
    return Quote(ES, d(last), START)


# --- limits, stops, stop-limits ------------------------------------------------------------------


def test_s8_10_a_buy_limit_fills_in_full_at_its_price_once_last_is_at_or_below_it(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(limit("b-1", 2, 4990))
    broker.set_price(ES, d(4991))
    assert sink.take() == [
        quote(5000),
        OrderAccepted("c1", "A1", "b-1", "O1", ES, 2, OrderType.LIMIT, price=d(4990)),
        quote(4991),
    ]
    broker.set_price(ES, d(4985))
    assert sink.take() == [quote(4985), fill("O1", "X1", 2, 4990, "b-1")]
    assert broker.positions("A1")[ES].avg_price == d(4990)
    assert broker.working_orders("A1") == []


def test_s8_10_a_sell_limit_already_reached_fills_when_placed_and_needs_no_quote_to_rest(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    session.place_order(limit("s-0", -1, 5010))  # no price yet: accepted, resting
    assert [type(e) for e in sink.take()] == [OrderAccepted]
    broker.set_price(ES, d(5000))
    session.place_order(limit("s-1", -2, 4995))
    assert sink.take() == [
        quote(5000),
        OrderAccepted("c1", "A1", "s-1", "O2", ES, -2, OrderType.LIMIT, price=d(4995)),
        fill("O2", "X1", -2, 4995, "s-1"),
    ]
    broker.set_price(ES, d(5010))
    assert sink.take() == [quote(5010), fill("O1", "X2", -1, 5010, "s-0")]
    assert pos(broker) == -3


@pytest.mark.parametrize(
    ("qty", "at", "quiet", "hit"), [(1, 5010, 5009, 5012), (-1, 4990, 4991, 4987)]
)
def test_s8_10_a_stop_triggers_at_its_stop_and_fills_at_last(
    broker: PaperBroker,
    session: PaperSession,
    sink: Recorder,
    qty: int,
    at: int,
    quiet: int,
    hit: int,
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(stop("st-1", qty, at))
    broker.set_price(ES, d(quiet))
    assert sink.of(Fill) == []
    sink.take()
    broker.set_price(ES, d(hit))
    assert sink.take() == [quote(hit), fill("O1", "X1", qty, hit, "st-1")]


def test_s8_10_a_stop_limit_becomes_a_limit_once_triggered_and_stays_one(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    request = OrderRequest("sl-1", "A1", ES, 1, OrderType.STOP_LIMIT, price=d(5011), stop=d(5010))
    session.place_order(request)
    broker.set_price(ES, d(5015))  # triggered; a buy limit at 5011 does not fill at 5015
    assert sink.of(Fill) == []
    broker.set_price(ES, d(5008))  # below the stop again, but a limit now: fills at its price
    assert sink.of(Fill) == [fill("O1", "X1", 1, 5011, "sl-1")]


def test_s8_10_a_stop_limit_whose_trigger_also_reaches_its_price_fills_at_once(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(
        OrderRequest("sl-1", "A1", ES, -1, OrderType.STOP_LIMIT, price=d(4985), stop=d(4990))
    )
    sink.take()
    broker.set_price(ES, d(4988))
    assert sink.take() == [quote(4988), fill("O1", "X1", -1, 4985, "sl-1")]


def test_s8_10_orders_of_the_symbol_are_checked_in_acceptance_order_after_the_quote(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    broker.set_price(NQ, d(20000))
    session.place_order(limit("a", 1, 4990))
    session.place_order(OrderRequest("nq", "A1", NQ, 1, OrderType.LIMIT, price=d(21000)))
    session.place_order(limit("b", 2, 4995, account="A2"))
    session.place_order(limit("c", 1, 4980))
    sink.take()
    broker.set_price(ES, d(4990))
    events = sink.take()
    assert events[0] == quote(4990)
    assert [(e.client_order_id, e.price) for e in events[1:] if isinstance(e, Fill)] == [
        ("a", d(4990)),
        ("b", d(4995)),
    ]
    assert [o.client_order_id for o in broker.working_orders("A1")] == ["c"]


# --- brackets -------------------------------------------------------------------------------------


def test_s8_10_a_bracket_is_accepted_with_inactive_legs_that_work_once_the_entry_fills(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    sink.take()
    session.place_order(bracket("e", 2, 4990, 4980, 5010))
    assert sink.take() == [
        OrderAccepted(
            "c1", "A1", "e", "O1", ES, 2, OrderType.LIMIT, price=d(4990), legs=("O2", "O3")
        ),
        OrderAccepted(
            "c1",
            "A1",
            "e.s",
            "O2",
            ES,
            -2,
            OrderType.STOP,
            stop=d(4980),
            role=LegRole.STOP,
            parent="O1",
            oco="O3",
            active=False,
        ),
        OrderAccepted(
            "c1",
            "A1",
            "e.t",
            "O3",
            ES,
            -2,
            OrderType.LIMIT,
            price=d(5010),
            role=LegRole.TARGET,
            parent="O1",
            oco="O2",
            active=False,
        ),
    ]
    broker.set_price(ES, d(5010))  # would fill the take-profit, were it working: it is not
    assert sink.take() == [quote(5010)]
    broker.set_price(ES, d(4989))
    assert sink.take() == [
        quote(4989),
        fill("O1", "X1", 2, 4990, "e"),
        OrderUpdated("c1", "A1", "e.s", "O2", ES, -2, stop=d(4980)),
        OrderUpdated("c1", "A1", "e.t", "O3", ES, -2, price=d(5010)),
    ]
    assert pos(broker) == 2
    assert [(o.qty, o.active) for o in broker.working_orders("A1")] == [(-2, True), (-2, True)]


def test_s8_10_an_entry_fill_activates_its_legs_which_are_checked_against_that_same_last(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(bracket("e", 2, 4990, 4985, 5010))
    sink.take()
    broker.set_price(ES, d(4984))  # fills the entry, then its stop-loss (already reached)
    assert sink.take() == [
        quote(4984),
        fill("O1", "X1", 2, 4990, "e"),
        OrderUpdated("c1", "A1", "e.s", "O2", ES, -2, stop=d(4985)),
        OrderUpdated("c1", "A1", "e.t", "O3", ES, -2, price=d(5010)),
        fill("O2", "X2", -2, 4984, "e.s"),
        OrderDone("c1", "A1", "e.t", "O3", DONE_OCO_FILLED),
    ]
    assert pos(broker) == 0
    assert broker.working_orders("A1") == []


def test_s8_10_a_market_entry_fills_at_once_and_its_take_profit_fills_later_cancelling_the_stop(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(bracket("e", -1, None, 5010, 4990))
    events = sink.take()[1:]
    assert [type(e) for e in events] == [
        OrderAccepted,
        OrderAccepted,
        OrderAccepted,
        Fill,
        OrderUpdated,
        OrderUpdated,
    ]
    assert [o.qty for o in broker.working_orders("A1")] == [1, 1]
    broker.set_price(ES, d(4990))
    assert sink.take() == [
        quote(4990),
        fill("O3", "X2", 1, 4990, "e.t"),
        OrderDone("c1", "A1", "e.s", "O2", DONE_OCO_FILLED),
    ]
    assert pos(broker) == 0


def test_s8_10_legs_work_for_the_entry_filled_quantity_as_it_fills_in_parts(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(bracket("e", 3, 4990, 4980, 5010))
    sink.take()
    assert broker.fill_part("O1", 1) == fill("O1", "X1", 1, 4990, "e", done=False)
    assert sink.take() == [
        fill("O1", "X1", 1, 4990, "e", done=False),
        OrderUpdated("c1", "A1", "e.s", "O2", ES, -1, stop=d(4980)),
        OrderUpdated("c1", "A1", "e.t", "O3", ES, -1, price=d(5010)),
    ]
    working = {o.broker_order_id: o for o in broker.working_orders("A1")}
    assert (working["O1"].qty, working["O1"].filled) == (2, 1)
    broker.fill_part("O1", 2)
    assert sink.take() == [
        fill("O1", "X2", 2, 4990, "e"),
        OrderUpdated("c1", "A1", "e.s", "O2", ES, -3, stop=d(4980)),
        OrderUpdated("c1", "A1", "e.t", "O3", ES, -3, price=d(5010)),
    ]
    with pytest.raises(PaperBrokerError):
        broker.fill_part("O2", 1)  # a stop is no resting limit
    with pytest.raises(PaperBrokerError):
        broker.fill_part("O3", 4)  # more than is left


def test_s8_10_an_entry_cancelled_before_any_fill_cancels_its_legs_after_one_leaves_them(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(bracket("e", 2, 4990, 4980, 5010))
    session.place_order(bracket("f", 2, 4990, 4980, 5010))
    broker.fill_part("O4", 1)
    sink.take()
    session.cancel_working("A1", ES, ("O1",))
    assert sink.take() == [
        OrderDone("c1", "A1", "e", "O1", DONE_CANCELLED),
        OrderDone("c1", "A1", "e.s", "O2", DONE_ENTRY_CANCELLED),
        OrderDone("c1", "A1", "e.t", "O3", DONE_ENTRY_CANCELLED),
    ]
    session.cancel_working("A1", ES, ("O4",))
    assert sink.take() == [OrderDone("c1", "A1", "f", "O4", DONE_CANCELLED)]
    assert [(o.broker_order_id, o.qty, o.active) for o in broker.working_orders("A1")] == [
        ("O5", -1, True),
        ("O6", -1, True),
    ]


def test_s8_10_cancelling_one_leg_ends_its_sibling(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(bracket("e", 1, None, 4980, 5010))
    sink.take()
    session.cancel_working("A1", ES, ("O3",))
    assert sink.take() == [
        OrderDone("c1", "A1", "e.t", "O3", DONE_CANCELLED),
        OrderDone("c1", "A1", "e.s", "O2", DONE_OCO_CANCELLED),
    ]
    assert pos(broker) == 1


def test_s8_10_cancelling_everything_of_a_symbol_reports_each_order_once(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(bracket("e", 2, 4990, 4980, 5010))
    session.place_order(limit("x", 1, 4000, account="A2"))
    sink.take()
    session.cancel_working("A1", None)
    assert [e.broker_order_id for e in sink.of(OrderDone)] == ["O1", "O2", "O3"]
    assert broker.working_orders("A1") == []
    assert len(broker.working_orders("A2")) == 1


def test_s8_10_each_account_lists_its_working_orders_in_acceptance_order_as_others_come_and_go(
    broker: PaperBroker, session: PaperSession
) -> None:
    """Two accounts' orders interleaved, some filled, some held and released: each account
    lists its own in the order accepted, a cancel takes only its own, and a bracket's legs
    follow their entry whatever left the book before them."""
    broker.set_price(ES, d(5000))
    session.place_order(limit("a", 1, 4990))
    session.place_order(limit("b", 1, 4990, account="A2"))
    session.place_order(limit("c", 1, 4980))
    broker.hold("c1")
    session.place_order(limit("d", 1, 4970))
    session.place_order(limit("e", 1, 4970, account="A2"))
    broker.set_price(ES, d(4990))  # a and b fill; d and e are held
    broker.release("c1")

    def listed(account: str) -> list[str | None]:
        return [o.client_order_id for o in broker.working_orders(account)]

    assert (listed("A1"), listed("A2")) == (["c", "d"], ["e"])
    session.cancel_working("A1", ES)
    assert (listed("A1"), listed("A2")) == ([], ["e"])
    session.place_order(bracket("f", 1, None, 4900, 5100))
    assert (listed("A1"), listed("A2")) == (["f.s", "f.t"], ["e"])
    assert [o.active for o in broker.working_orders("A1")] == [True, True]


# --- standalone OCO pairs -------------------------------------------------------------------------


def test_s8_10_an_oco_pair_works_both_orders_and_the_first_to_fill_cancels_the_other(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    broker.trade("A1", ES, 2)
    request = OrderRequest(
        "p",
        "A1",
        ES,
        -2,
        OrderType.STOP,
        stop=d(4980),
        oco=target_leg("p.t", 5020),
        role=LegRole.STOP,
    )
    session.place_order(request)
    assert sink.take()[-2:] == [
        OrderAccepted(
            "c1",
            "A1",
            "p",
            "O2",
            ES,
            -2,
            OrderType.STOP,
            stop=d(4980),
            role=LegRole.STOP,
            oco="O3",
            legs=("O3",),
        ),
        OrderAccepted(
            "c1",
            "A1",
            "p.t",
            "O3",
            ES,
            -2,
            OrderType.LIMIT,
            price=d(5020),
            role=LegRole.TARGET,
            oco="O2",
        ),
    ]
    broker.set_price(ES, d(5021))
    assert sink.take() == [
        quote(5021),
        fill("O3", "X2", -2, 5020, "p.t"),
        OrderDone("c1", "A1", "p", "O2", DONE_OCO_FILLED),
    ]
    assert pos(broker) == 0


# --- modifications (engine) ----------------------------------------------------------------------


def test_s8_10_a_modification_is_reported_then_checked_against_last_at_once(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(limit("b", 2, 4990))
    sink.take()
    session.modify_order(ModifyRequest("A1", "O1", "b", qty=3))
    assert sink.take() == [OrderUpdated("c1", "A1", "b", "O1", ES, 3, price=d(4990))]
    session.modify_order(ModifyRequest("A1", "O1", "b", price=d(5001)))
    assert sink.take() == [
        OrderUpdated("c1", "A1", "b", "O1", ES, 3, price=d(5001)),
        fill("O1", "X1", 3, 5001, "b"),
    ]


def test_s8_10_modifying_a_bracket_entry_quantity_resizes_its_inactive_legs(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(bracket("e", 2, 4990, 4980, 5010))
    sink.take()
    session.modify_order(ModifyRequest("A1", "O1", "e", qty=4))
    assert sink.take() == [
        OrderUpdated("c1", "A1", "e", "O1", ES, 4, price=d(4990)),
        OrderUpdated("c1", "A1", "e.s", "O2", ES, -4, stop=d(4980), active=False),
        OrderUpdated("c1", "A1", "e.t", "O3", ES, -4, price=d(5010), active=False),
    ]
    session.modify_order(ModifyRequest("A1", "O2", "e.s", stop=d(4970)))
    assert [o.stop for o in broker.working_orders("A1")] == [None, d(4970), None]


def test_s8_10_a_modification_below_the_filled_quantity_or_of_an_order_not_working_is_refused(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    session.place_order(limit("b", 3, 4990))
    session.place_order(limit("x", 1, 4990, account="A2"))
    broker.fill_part("O1", 2)
    sink.take()
    session.modify_order(ModifyRequest("A1", "O1", "b", qty=1))
    session.modify_order(ModifyRequest("A1", "O1", "b", price=d(-1)))
    session.modify_order(ModifyRequest("A1", "O9", "z", qty=1))
    session.modify_order(ModifyRequest("A1", "O2", "x", qty=2))  # A2's order
    rejected = sink.take()
    assert all(isinstance(e, ModifyRejected) for e in rejected)
    assert [e.broker_order_id for e in rejected] == ["O1", "O1", "O9", "O2"]  # type: ignore[union-attr]
    assert [e.reason.split(":")[0] for e in rejected] == [  # type: ignore[union-attr]
        "InvalidOrder",
        "InvalidOrder",
        REJECT_UNKNOWN_ORDER,
        REJECT_UNKNOWN_ORDER,
    ]
    assert "below the 2 already filled" in rejected[0].reason  # type: ignore[union-attr]
    assert broker.working_orders("A1")[0].qty == 1
    session.modify_order(ModifyRequest("A1", "O1", "b", qty=2))  # down to what has filled: done
    assert sink.take() == [
        OrderUpdated("c1", "A1", "b", "O1", ES, 0, price=d(4990), filled=2),
        OrderDone("c1", "A1", "b", "O1", DONE_MODIFIED_TO_FILLED),
    ]
    session.modify_order(ModifyRequest("A1", "O1", "b", price=d(4991)))  # done now
    assert [type(e) for e in sink.take()] == [ModifyRejected]


# --- the owner's orders ---------------------------------------------------------------------------


def test_s8_10_the_owner_places_a_bracket_that_works_like_the_engine_s(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    placed = broker.place_working(
        "A1", ES, 2, OrderType.LIMIT, price=d(4990), bracket_stop=d(4980), bracket_target=d(5010)
    )
    assert placed == PlacedOrder("O1", "O2", "O3")
    assert broker.working_orders("A1") == [
        WorkingOrder("O1", None, ES, 2, OrderType.LIMIT, price=d(4990)),
        WorkingOrder(
            "O2",
            None,
            ES,
            -2,
            OrderType.STOP,
            stop=d(4980),
            role=LegRole.STOP,
            parent="O1",
            oco="O3",
            active=False,
        ),
        WorkingOrder(
            "O3",
            None,
            ES,
            -2,
            OrderType.LIMIT,
            price=d(5010),
            role=LegRole.TARGET,
            parent="O1",
            oco="O2",
            active=False,
        ),
    ]
    broker.set_price(ES, d(4990))
    broker.set_price(ES, d(5010))
    fills = [(f.broker_order_id, f.qty, f.price, f.client_order_id) for f in sink.of(Fill)]
    assert fills == [("O1", 2, d(4990), None), ("O3", -2, d(5010), None)]
    assert sink.of(OrderDone) == [OrderDone("c1", "A1", None, "O2", DONE_OCO_FILLED)]


def test_s8_10_the_owner_modifies_and_cancels_with_everything_linked(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    entry = broker.place_working("A1", ES, 1, OrderType.MARKET, bracket_stop=d(4980))
    assert entry == PlacedOrder("O1", "O2", None)
    broker.modify("A1", "O2", stop=d(4985))
    assert broker.working_orders("A1")[0].stop == d(4985)
    pair = broker.place_oco("A1", ES, -1, stop=d(4970), target=d(5050))
    assert pair == PlacedOrder(None, "O3", "O4")
    later = broker.place_working(
        "A1", ES, 1, OrderType.STOP, stop=d(5040), bracket_stop=d(5030), bracket_target=d(5060)
    )
    sink.take()
    broker.cancel("A1", "O1")  # the filled entry: its stop-loss
    broker.cancel("A1", "O4")  # one of the pair: both
    broker.cancel("A1", later.entry or "")  # an entry not filled: with its legs
    assert [(e.broker_order_id, e.reason) for e in sink.take()] == [  # type: ignore[union-attr]
        ("O2", DONE_CANCELLED),
        ("O4", DONE_CANCELLED),
        ("O3", DONE_OCO_CANCELLED),
        ("O5", DONE_CANCELLED),
        ("O6", DONE_ENTRY_CANCELLED),
        ("O7", DONE_ENTRY_CANCELLED),
    ]
    assert broker.working_orders("A1") == []


def test_s8_10_the_owner_cancelling_a_partly_filled_entry_takes_its_working_legs_along(
    broker: PaperBroker, session: PaperSession, sink: Recorder
) -> None:
    broker.set_price(ES, d(5000))
    broker.place_working(
        "A1", ES, 2, OrderType.LIMIT, price=d(4990), bracket_stop=d(4980), bracket_target=d(5010)
    )
    broker.fill_part("O1", 1)
    sink.take()
    broker.cancel("A1", "O1")
    assert [e.broker_order_id for e in sink.of(OrderDone)] == ["O1", "O2", "O3"]
    assert pos(broker) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.place_working("A1", ES, 1, OrderType.LIMIT),  # no price
        lambda b: b.place_working("A1", ES, 1, OrderType.STOP, stop=d(1), price=d(2)),
        lambda b: b.place_working("A1", ES, 0, OrderType.LIMIT, price=d(1)),
        lambda b: b.place_working("A1", ES, 1, OrderType.LIQUIDATE),
        lambda b: b.place_working("A1", ES, 1, OrderType.LIMIT, price=d(1), bracket_stop=d(0)),
        lambda b: b.place_working("A9", ES, 1, OrderType.LIMIT, price=d(1)),
        lambda b: b.place_working("A1", "XXZ6", 1, OrderType.LIMIT, price=d(1)),
        lambda b: b.place_working("A1", NQ, 1, OrderType.MARKET),  # NQ has no price
        lambda b: b.place_oco("A1", ES, 1, stop=d(5010), target=Decimal("NaN")),
        lambda b: b.modify("A1", "O1", qty=0),
        lambda b: b.modify("A1", "O1", stop=d(4000)),  # a limit has no stop
        lambda b: b.modify("A2", "O1", price=d(4000)),  # not A2's
        lambda b: b.modify("A1", "O7", price=d(4000)),
        lambda b: b.cancel("A2", "O1"),
        lambda b: b.cancel("A1", "O7"),
    ],
)
def test_s8_10_the_owner_s_mistakes_raise_a_clear_error_and_change_nothing(
    broker: PaperBroker, session: PaperSession, sink: Recorder, call: object
) -> None:
    broker.set_price(ES, d(5000))
    broker.place_working("A1", ES, 1, OrderType.LIMIT, price=d(4990))
    sink.take()
    with pytest.raises(PaperBrokerError):
        call(broker)  # type: ignore[operator]
    assert sink.take() == []
    assert broker.working_orders("A1") == [
        WorkingOrder("O1", None, ES, 1, OrderType.LIMIT, price=d(4990))
    ]


def test_s8_10_a_modification_by_the_owner_reaching_the_market_fills_at_once(
    broker: PaperBroker, session: PaperSession, sink: Recorder, clock: VirtualClock
) -> None:
    broker.set_price(ES, d(5000))
    broker.place_working("A1", ES, -1, OrderType.STOP, stop=d(4990))
    broker.modify("A1", "O1", stop=d(5000), qty=2)
    assert sink.take()[-2:] == [
        OrderUpdated("c1", "A1", None, "O1", ES, -2, stop=d(5000)),
        Fill("c1", "A1", "X1", "O1", None, ES, -2, d(5000), clock.now(), True),
    ]
