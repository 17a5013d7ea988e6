"""The market service's part in S10.3: the instant of each symbol's last price, and telling an
account that waits for a symbol's prices when the next one comes (decision 0003: a tick is
never a message per account)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from engine.host.address import Address
from engine.host.market import Market, PriceBack

T0 = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)
A: Address = ("account", "A")
B: Address = ("account", "B")


def market() -> tuple[Market, list[tuple[Address, object]]]:
    told: list[tuple[Address, object]] = []
    return Market(lambda to, message: told.append((to, message))), told


def test_s10_3_each_symbol_keeps_the_instant_of_its_last_price_a_repeated_one_included() -> None:
    m, _ = market()
    assert m.priced_at("ESZ6") is None
    assert m.on_quote("ESZ6", Decimal(5000), T0)
    assert not m.on_quote("ESZ6", Decimal(5000), T0 + timedelta(seconds=20))  # same price
    assert m.priced_at("ESZ6") == T0 + timedelta(seconds=20)
    assert m.priced_at("NQZ6") is None


def test_s10_3_an_account_awaiting_a_symbol_is_told_once_at_its_next_price() -> None:
    m, told = market()
    m.on_quote("ESZ6", Decimal(5000), T0)
    assert m.await_price("ESZ6", A, T0)
    assert m.await_price("ESZ6", B, T0)
    assert m.await_price("ESZ6", A, T0)  # one wait per account
    m.on_quote("NQZ6", Decimal(20000), T0 + timedelta(seconds=40))
    assert told == []
    m.on_quote("ESZ6", Decimal(5000), T0 + timedelta(seconds=45))  # a repeat is a price too
    assert sorted(told) == [(A, PriceBack("ESZ6")), (B, PriceBack("ESZ6"))]
    m.on_quote("ESZ6", Decimal(5001), T0 + timedelta(seconds=46))
    assert len(told) == 2  # told once


def test_s10_3_a_price_after_the_instant_read_means_no_wait() -> None:
    """An account read the last price's instant, and another price came before it asked to
    wait: it is not stale, and nothing is awaited."""
    m, told = market()
    m.on_quote("ESZ6", Decimal(5000), T0)
    m.on_quote("ESZ6", Decimal(5001), T0 + timedelta(seconds=31))
    assert not m.await_price("ESZ6", A, T0)
    m.on_quote("ESZ6", Decimal(5002), T0 + timedelta(seconds=32))
    assert told == []
