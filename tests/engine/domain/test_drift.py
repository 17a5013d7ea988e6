"""S10.1: the expected position of a follower is S2.2's t(L) with its terms, in its symbols."""

from __future__ import annotations

from decimal import Decimal

from engine.domain.drift import DriftTerms, expected, mapped

ONE = DriftTerms(Decimal(1))
MICRO = DriftTerms(Decimal("0.5"), 3, (("ES", "MES"),))


def test_expected_is_t_of_the_leaders_position() -> None:
    assert expected({"ESZ6": 2}, "ESZ6", ONE) == 2
    assert expected({"ESZ6": -3}, "ESZ6", ONE) == -3
    assert expected({}, "ESZ6", ONE) == 0
    assert expected({"NQZ6": 2}, "ESZ6", ONE) == 0  # another symbol


def test_expected_rounds_half_up_caps_and_maps() -> None:
    assert expected({"ESZ6": 3}, "MESZ6", MICRO) == 2  # round(1.5) half up
    assert expected({"ESZ6": -9}, "MESZ6", MICRO) == -3  # capped at max_qty
    assert expected({"ESZ6": 3}, "ESZ6", MICRO) == 0  # the leader's symbol is mapped away


def test_two_leader_symbols_mapped_to_one_are_summed() -> None:
    both = DriftTerms(Decimal(1), None, (("ES", "MES"),))
    assert expected({"ESZ6": 2, "MESZ6": 1}, "MESZ6", both) == 3


def test_mapped_keeps_the_contract_month() -> None:
    assert mapped({"ESZ6", "NQH7"}, MICRO) == {"MESZ6", "NQH7"}
