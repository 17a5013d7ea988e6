"""An account's book on its own: fills applied to positions, P&L and working orders, S2.2's P
with the engine's working orders, the broker's snapshot replacing it, the S5.8 reset, and what
is made durable and told to the risk actor."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from actors.book import Book, Working
from actors.messages.risk import Holding
from brokers.base import AccountSnapshot, Fill, OrderType, PositionInfo, WorkingOrder
from brokers.instruments import ContractTable
from engine.domain.order_ids import OrderKind
from engine.domain.state import AccountState

D = Decimal
ES, NQ = "ESZ6", "NQZ6"  # 50 and 20 dollars a point
AT = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)


def fill(
    qty: int,
    price: str,
    *,
    symbol: str = ES,
    coid: str | None = None,
    broker_id: str = "b1",
    done: bool = True,
    fill_id: str = "x",
) -> Fill:
    return Fill("c", "A", fill_id, broker_id, coid, symbol, qty, D(price), AT, done)


def book(balance: str = "50000", state: AccountState | None = None) -> Book:
    return Book(ContractTable(), D(balance), state)


def test_a_fill_opens_adds_and_closes_with_realized_pnl_in_both_periods() -> None:
    b = book()
    assert b.apply(fill(2, "5000")) == 0  # the position before it
    assert b.apply(fill(1, "5003")) == 2
    assert b.position(ES) == 3
    assert b.positions[ES].reference == D(5001)
    assert b.apply(fill(-3, "5011")) == 3
    assert b.position(ES) == 0
    assert ES not in b.positions  # a flat position leaves the book
    assert b.realized_daily == b.realized_weekly == D(10) * 3 * 50
    assert b.last_fill[ES] == D(5011)


def test_p_counts_the_engines_working_orders_and_a_liquidation_takes_it_to_zero() -> None:
    b = book()
    b.apply(fill(3, "5000"))
    b.working["C1"] = Working(ES, 2, "C1", None, OrderKind.COPY)
    b.working["t"] = Working(ES, -1, None, "t")  # a trader's own order: not the engine's
    assert b.projected(ES) == 5
    b.working["L1"] = Working(ES, 0, "L1", None, OrderKind.LIQUIDATE)
    assert b.projected(ES) == 2  # flat once the liquidation fills, plus the copy still working
    assert b.projected(NQ) == 0
    assert b.liquidating()
    b.working["C2"] = Working(NQ, -1, "C2", None, OrderKind.COPY)
    assert b.projection() == {ES: 2, NQ: -1}  # every symbol's P in one pass
    assert b.projection() == {s: b.projected(s) for s in (ES, NQ)}


def test_a_fill_reduces_its_working_order_and_ends_it_when_done() -> None:
    b = book()
    b.working["C1"] = Working(ES, 3, "C1", None, OrderKind.COPY)
    b.apply(fill(1, "5000", coid="C1", done=False))
    assert b.working["C1"].qty == 2
    b.apply(fill(2, "5000", coid="C1", done=True, fill_id="y"))
    assert "C1" not in b.working
    b.working["L1"] = Working(ES, 0, "L1", None, OrderKind.LIQUIDATE)
    b.apply(fill(-3, "5000", coid="L1", done=False, fill_id="z"))
    assert b.working["L1"].qty == 0  # a liquidation has no quantity to count down


def test_the_broker_snapshot_replaces_positions_and_working_orders_beside_unanswered_ones() -> None:
    b = book()
    b.apply(fill(5, "5000"))
    unanswered = {"C9": Working(NQ, 1, "C9", None, OrderKind.COPY)}
    snapshot = AccountSnapshot(
        {ES: PositionInfo(2, D("4990")), NQ: PositionInfo(0, D(0))},
        (WorkingOrder("b7", None, ES, -1, OrderType.MARKET),),
    )
    b.confirm(snapshot, unanswered)
    assert b.held() == {ES: 2}
    assert b.positions[ES].reference == D(4990)
    assert set(b.working) == {"C9", "b7"}
    assert b.working["b7"].kind is None
    assert b.leftovers(ES) == ("b7",)  # not the engine's: cancelled once flat (S2.10)


def test_a_daily_reset_marks_to_market_and_rolls_realized_into_the_balance() -> None:
    b = book()
    b.apply(fill(2, "5000"))
    b.apply(fill(-1, "5010"))  # +500 realized
    b.reset("daily", lambda symbol: D(5020))
    assert b.realized_daily == 0
    assert b.balance == D(50000) + D(500) + D(20) * 50  # realized plus the open contract marked
    assert b.realized_weekly == D(500) + D(20) * 50
    assert b.positions[ES].reference == D(5020)
    assert b.unrealized(lambda symbol: D(5020)) == 0
    b.reset("weekly", lambda symbol: None)  # no price: nothing marked
    assert b.realized_weekly == 0


def test_state_and_figures_are_what_is_stored_and_told_to_the_risk_actor() -> None:
    restored = book(
        state=AccountState(D(49000), D(-100), D(-200), {ES: (1, D(5000)), NQ: (0, D(0))})
    )
    assert restored.held() == {ES: 1}
    assert restored.state() == AccountState(D(49000), D(-100), D(-200), {ES: (1, D(5000))})
    restored.working["L1"] = Working(ES, 0, "L1", None, OrderKind.LIQUIDATE)
    restored.working["C1"] = Working(NQ, 1, "C1", None, OrderKind.COPY)
    figures = restored.figures(confirmed=False)
    assert figures.positions[ES].point_value == D(50)
    assert (figures.balance, figures.realized_daily, figures.realized_weekly) == (
        D(49000),
        D(-100),
        D(-200),
    )
    assert figures.liquidations == {ES: "L1"}
    assert figures.working == 1
    assert not figures.confirmed


def test_what_is_shown_of_the_positions_is_made_again_after_each_change_of_them() -> None:
    """The view's positions and the S5.1 holdings are made once per change of the positions
    (a fill, the broker's snapshot, a reset's mark) and are the book's own at every moment."""
    b = book()
    assert b.shown() == {} and b.holdings() == {}
    b.apply(fill(2, "5000", symbol=NQ))
    b.apply(fill(1, "5010"))
    assert list(b.shown().items()) == [(ES, 1), (NQ, 2)]  # in symbol order
    assert b.holdings()[ES] == Holding(1, D(5010), D(50), D(5010))
    assert b.holdings() is b.holdings()  # nothing changed: the same, not made again
    b.apply(fill(1, "5020", fill_id="y"))
    assert b.shown() == {ES: 2, NQ: 2}
    assert b.holdings()[ES] == Holding(2, D(5015), D(50), D(5020))
    b.reset("daily", lambda symbol: D(5030))
    assert b.holdings()[ES].reference == D(5030)  # marked
    b.apply(fill(-2, "5030", fill_id="z"))
    assert b.shown() == {NQ: 2} and set(b.holdings()) == {NQ}
    b.confirm(AccountSnapshot({ES: PositionInfo(-1, D("4990"))}, ()), {})
    assert b.shown() == {ES: -1}
    assert b.holdings() == {ES: Holding(-1, D(4990), D(50), D(5030))}


def test_figures_without_working_orders_hold_p_as_the_positions() -> None:
    b = book()
    b.apply(fill(2, "5000"))
    b.apply(fill(-1, "5000", symbol=NQ))
    figures = b.figures(confirmed=True)
    assert figures.projection == {ES: 2, NQ: -1} == b.projection()
    assert (figures.liquidations, figures.working, figures.resting) == ({}, 0, {})
    assert figures.positions == b.holdings()
