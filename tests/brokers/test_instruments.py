"""Futures symbols (ROOT + month letter + year digit), the contract table, and S2.3 symbol
mapping."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.instruments import (
    BUILTIN_CONTRACTS,
    Contract,
    ContractTable,
    Symbol,
    SymbolError,
    copies_root,
    map_symbol,
    split_symbol,
)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("ESZ6", ("ES", "Z", "6")),
        ("M2KH7", ("M2K", "H", "7")),
        ("MESU5", ("MES", "U", "5")),
        ("CLF0", ("CL", "F", "0")),
        ("YMM9", ("YM", "M", "9")),
    ],
)
def test_symbols_split_into_root_month_and_year(text: str, parts: tuple[str, str, str]) -> None:
    symbol = split_symbol(text)
    assert (symbol.root, symbol.month, symbol.year) == parts
    assert str(symbol) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ES",  # too short
        "Z6",
        "esz6",  # lower case
        "ESA6",  # A is no month code
        "ESZX",  # the year must be a digit
        "ES Z6",
        "ES-Z6",
        "2KZ6",  # a root starts with a letter
        "ESZ66",  # month then two digits: 'Z6' is not a month letter + 'Z6'
    ],
)
def test_bad_symbols_are_refused(text: str) -> None:
    for _ in range(2):  # every time: parsed symbols are remembered, refusals are not
        with pytest.raises(SymbolError, match="not a futures symbol"):
            split_symbol(text)


@pytest.mark.parametrize("value", [123, ["ESZ6"]])
def test_a_non_string_is_refused(value: object) -> None:
    with pytest.raises(SymbolError):  # an unhashable one too, though parses are remembered
        split_symbol(value)  # type: ignore[arg-type]


def test_the_table_knows_builtin_roots_and_refuses_unknown_ones() -> None:
    table = ContractTable()
    assert table.parse("M2KH7") == Symbol("M2K", "H", "7")
    assert "ES" in table and "XX" not in table
    with pytest.raises(SymbolError, match="root 'XX' is not in the contract table"):
        table.parse("XXZ6")
    with pytest.raises(SymbolError, match="'XX'"):
        table.contract("XX")
    assert table.roots() == sorted(BUILTIN_CONTRACTS)


def test_point_values_are_exact_decimals() -> None:
    table = ContractTable()
    assert table.point_value("ESZ6") == Decimal(50)
    assert table.point_value("MESZ6") == Decimal(5)
    assert table.point_value("MYMH7") == Decimal("0.5")
    assert table.contract("CL").tick_size == Decimal("0.01")


def test_extra_contracts_add_and_override() -> None:
    table = ContractTable(
        [Contract("ZZ", Decimal(7), Decimal(1)), Contract("ES", Decimal(1), Decimal(1))]
    )
    assert table.parse("ZZF7").root == "ZZ"
    assert table.point_value("ZZF7") == Decimal(7)
    assert table.point_value("ESZ6") == Decimal(1)
    assert ContractTable().point_value("ESZ6") == Decimal(50)  # the built-ins are untouched


@pytest.mark.parametrize(
    ("symbol", "symbol_map", "mapped"),
    [
        ("ESZ6", {"ES": "MES"}, "MESZ6"),  # S2.3's example: the month is kept
        ("ESH7", {"ES": "MES"}, "MESH7"),
        ("RTYU6", {"RTY": "M2K"}, "M2KU6"),
        ("NQZ6", {"ES": "MES"}, "NQZ6"),  # not in the map: unchanged
        ("ESZ6", {}, "ESZ6"),
        ("MESZ6", {"ES": "MES"}, "MESZ6"),  # the map is by whole root, not by prefix
    ],
)
def test_s2_3_map_symbol_maps_the_root_and_keeps_the_month(
    symbol: str, symbol_map: dict[str, str], mapped: str
) -> None:
    assert map_symbol(symbol, symbol_map) == mapped


def test_s2_3_map_symbol_refuses_a_bad_symbol() -> None:
    with pytest.raises(SymbolError):
        map_symbol("nonsense", {"ES": "MES"})


def test_s3_1_copies_root_names_the_roots_the_group_copies_into() -> None:
    symbol_map = {"ES": "MES", "NQ": "MNQ"}
    assert copies_root("MES", symbol_map)  # a mapped-to root
    assert copies_root("MNQ", symbol_map)
    assert not copies_root("ES", symbol_map)  # mapped away: the follower never holds it by copy
    assert not copies_root("NQ", symbol_map)
    assert copies_root("CL", symbol_map)  # unmapped roots are copied as they are
    assert copies_root("ES", {})
    assert copies_root("ES", {"ES": "ES"})
