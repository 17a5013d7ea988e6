"""The market service's part in S10.3: the instant of each symbol's last price, and telling an
account that waits for a symbol's prices when the next one comes (decision 0003: a tick is
never a message per account)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from engine.host.address import Address
from engine.host.market import Market, PriceBack, TicksPending

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


CONN: Address = ("connection", "c1")


def test_ticks_are_coalesced_until_the_connection_takes_them() -> None:
    """Decision 0003: one TicksPending per look, however many prices came."""
    m, told = market()
    m.watch("c1", CONN, "ESZ6", on=True)
    for price in (5000, 5001, 4999):
        m.on_quote("ESZ6", Decimal(price), T0)
    assert told == [(CONN, TicksPending())]
    assert m.take("c1") == {"ESZ6": (Decimal(4999), Decimal(5001))}


def test_a_price_at_the_alarm_is_told_urgently_once_per_take() -> None:
    """Decision 0030: a price at or beyond the connection's alarm (where one of its accounts
    may breach) is told urgently, even while a plain TicksPending waits — once until the
    connection takes the ranges, which then hold that price."""
    m, told = market()
    m.watch("c1", CONN, "ESZ6", on=True)
    m.alarm("c1", "ESZ6", Decimal(4990), Decimal(5020))
    m.on_quote("ESZ6", Decimal(5000), T0)
    m.on_quote("ESZ6", Decimal(4990), T0)  # at the low alarm
    m.on_quote("ESZ6", Decimal(4989), T0)
    assert told == [(CONN, TicksPending()), (CONN, TicksPending(urgent=True))]
    assert told[1][1].urgent
    assert m.take("c1") == {"ESZ6": (Decimal(4989), Decimal(5000))}
    m.on_quote("ESZ6", Decimal(5020), T0)  # the high alarm: urgent again after the take
    assert told[2:] == [(CONN, TicksPending(urgent=True))]


def test_an_alarm_cleared_tells_plainly_again() -> None:
    m, told = market()
    m.watch("c1", CONN, "ESZ6", on=True)
    m.alarm("c1", "ESZ6", Decimal(4990), None)
    m.alarm("c1", "ESZ6", None, None)
    m.on_quote("ESZ6", Decimal(4980), T0)
    assert told == [(CONN, TicksPending())]
