"""Positions: average entry price, realized P&L on reductions, crossing zero, and exact decimal
money with each contract's point value (S5.1)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.instruments import ContractTable
from engine.domain.positions import ZERO, Position

D = Decimal
ES = D(50)  # ES: $50 a point
MYM = D("0.5")


def test_s5_1_adding_moves_the_average_entry_price() -> None:
    pos = Position()
    assert pos.apply(2, D(100), ES) == ZERO
    assert (pos.qty, pos.reference) == (2, D(100))
    assert pos.apply(2, D(102), ES) == ZERO
    assert (pos.qty, pos.reference) == (4, D(101))
    assert pos.apply(1, D(106), ES) == ZERO
    assert (pos.qty, pos.reference) == (5, D(102))


def test_s5_1_adding_to_a_short_moves_its_average() -> None:
    pos = Position()
    pos.apply(-1, D("4500.25"), ES)
    pos.apply(-1, D("4500.50"), ES)
    assert (pos.qty, pos.reference) == (-2, D("4500.375"))


def test_s5_1_reducing_a_long_realizes_pnl_and_keeps_the_average() -> None:
    pos = Position(4, D(101))
    realized = pos.apply(-1, D(105), ES)
    assert realized == D(200)  # (105 − 101) · 1 · 50
    assert (pos.qty, pos.reference) == (3, D(101))
    assert pos.apply(-3, D(100), ES) == D(-150)  # (100 − 101) · 3 · 50
    assert (pos.qty, pos.reference) == (0, ZERO)


def test_s5_1_reducing_a_short_realizes_pnl_with_the_right_sign() -> None:
    pos = Position(-2, D(100))
    assert pos.apply(1, D(98), ES) == D(100)  # short gains when price falls
    assert pos.apply(1, D(103), ES) == D(-150)
    assert pos.qty == 0


def test_s5_1_crossing_zero_realizes_the_closed_part_and_opens_at_the_fill_price() -> None:
    pos = Position(2, D(100))
    realized = pos.apply(-5, D(110), ES)
    assert realized == D(1000)  # only the 2 closed contracts: 10 · 2 · 50
    assert (pos.qty, pos.reference) == (-3, D(110))
    realized = pos.apply(4, D(108), ES)
    assert realized == D(300)  # 3 short closed 2 points better: 2 · 3 · 50
    assert (pos.qty, pos.reference) == (1, D(108))


def test_s5_1_money_is_exact_decimal_with_the_point_value() -> None:
    pos = Position()
    pos.apply(1, D("4500.25"), ES)
    pos.apply(1, D("4500.50"), ES)
    realized = pos.apply(-2, D("4501.00"), ES)
    assert isinstance(realized, Decimal)
    assert realized == D("62.50")  # 0.625 · 2 · 50, no float dust
    assert str(realized.normalize()) == "62.5"

    micro = Position()
    micro.apply(3, D(40000), MYM)
    assert micro.apply(-3, D(40001), MYM) == D("1.5")  # 1 point · 3 · $0.50


def test_s5_1_unrealized_uses_last_reference_and_point_value() -> None:
    pos = Position(2, D(100))
    assert pos.unrealized(D("101.25"), ES) == D("125.00")
    assert pos.unrealized(D(99), ES) == D(-100)
    short = Position(-3, D(100))
    assert short.unrealized(D(99), ES) == D(150)
    assert pos.unrealized(None, ES) == ZERO  # no price yet
    assert Position().unrealized(D(123), ES) == ZERO  # flat


def test_point_values_come_from_the_contract_table() -> None:
    table = ContractTable()
    pos = Position(1, D(5000))
    assert pos.unrealized(D(5001), table.point_value("ESZ6")) == D(50)
    assert pos.unrealized(D(5001), table.point_value("MESZ6")) == D(5)
    assert pos.unrealized(D(5001), table.point_value("NQH7")) == D(20)


def test_a_fill_of_zero_contracts_is_refused() -> None:
    with pytest.raises(ValueError, match="zero"):
        Position().apply(0, D(1), ES)
