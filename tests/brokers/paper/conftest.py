"""The paper broker's working orders, tested through its public API: a broker, one session on
connection ``c1`` (accounts A1, A2) whose events a recorder keeps, and request builders."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.base import (
    LegRequest,
    LegRole,
    OrderRequest,
    OrderType,
    TimeInForce,
)
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker, PaperSession
from tests.brokers.recording import ES, START, Recorder


def d(value: str | int) -> Decimal:
    return Decimal(value)


def limit(cl: str, qty: int, price: str | int, account: str = "A1") -> OrderRequest:
    return OrderRequest(cl, account, ES, qty, OrderType.LIMIT, price=d(price))


def stop(cl: str, qty: int, at: str | int, account: str = "A1") -> OrderRequest:
    return OrderRequest(cl, account, ES, qty, OrderType.STOP, stop=d(at))


def stop_leg(cl: str, at: str | int) -> LegRequest:
    return LegRequest(cl, LegRole.STOP, OrderType.STOP, stop=d(at))


def target_leg(cl: str, price: str | int) -> LegRequest:
    return LegRequest(cl, LegRole.TARGET, OrderType.LIMIT, price=d(price))


def bracket(
    cl: str,
    qty: int,
    entry: str | int | None,
    loss: str | int,
    profit: str | int,
    tif: TimeInForce = TimeInForce.DAY,
) -> OrderRequest:
    """An entry (a limit at ``entry``, a market order for ``None``) with a stop-loss at
    ``loss`` and a take-profit at ``profit``; legs ``CL.s`` and ``CL.t``."""
    legs = (stop_leg(f"{cl}.s", loss), target_leg(f"{cl}.t", profit))
    if entry is None:
        return OrderRequest(cl, "A1", ES, qty, tif=tif, bracket=legs)
    return OrderRequest(cl, "A1", ES, qty, OrderType.LIMIT, price=d(entry), tif=tif, bracket=legs)


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


def pos(broker: PaperBroker, account: str = "A1", symbol: str = ES) -> int:
    info = broker.positions(account).get(symbol)
    return info.qty if info is not None else 0
