"""What the parts of the paper broker share: its state and the internal steps they call.

:class:`~brokers.paper.broker.PaperBroker` is one class built from parts, each a module of one
concern: the owner's desk at the broker (``brokers/paper/desk.py``: trades and working orders
placed, modified and cancelled by hand) and the harness's controls (``brokers/paper/controls.py``:
hold, release, forced rejections, outages, tokens). Each part subclasses :class:`PaperParts`,
so the type checker knows what it may use, and the broker cannot be built without the steps
the parts call.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from contextlib import AbstractContextManager
from decimal import Decimal

from brokers.base import BrokerEvent, Fill, LegRole, OrderType, TimeInForce
from brokers.paper.book import Book, PaperOrder
from brokers.paper.matching import Matcher
from brokers.paper.terms import Spec


class PaperParts(ABC):
    _lock: threading.RLock
    _book: Book
    _matcher: Matcher
    _prices: dict[str, Decimal]
    _fills: OrderedDict[str, Fill]
    _fill_seq: int
    _id_prefix: str
    _links_down: set[str]
    _tokens_invalid: set[str]
    _held: set[str]
    _held_queue: dict[str, list[str]]
    _reject_next: dict[str, int]
    _fail_snapshot: dict[str, int]
    _token_seq: int
    _codes: dict[str, str]

    @abstractmethod
    def _change(self, *, changes: bool = True) -> AbstractContextManager[None]: ...

    @abstractmethod
    def _tell_session(self, connection: str, event: BrokerEvent) -> None:
        """Give ``event`` to the connection's session, if it has one, whether it delivers or
        not (a token's expiry and issue always reach it)."""

    @abstractmethod
    def _emit(self, connection: str, event: BrokerEvent) -> None: ...

    @abstractmethod
    def _emit_accepted(self, order: PaperOrder, legs: tuple[str, ...] = ()) -> None: ...

    @abstractmethod
    def _execute(
        self, order: PaperOrder, qty: int, price: Decimal, *, order_done: bool
    ) -> Fill: ...

    @abstractmethod
    def _fill_engine_order(self, order: PaperOrder) -> None: ...

    @abstractmethod
    def _is_held(self, order: PaperOrder) -> bool: ...

    @abstractmethod
    def _known_account(self, account: str) -> str: ...

    @abstractmethod
    def _parse_symbol(self, symbol: str) -> None: ...

    @abstractmethod
    def _new_order(
        self,
        client_order_id: str | None,
        connection: str,
        account: str,
        symbol: str,
        *,
        qty: int,
        order_type: OrderType,
        price: Decimal | None = None,
        stop: Decimal | None = None,
        tif: TimeInForce = TimeInForce.DAY,
        role: LegRole | None = None,
    ) -> PaperOrder: ...

    @abstractmethod
    def _open_orders(
        self,
        connection: str,
        account: str,
        symbol: str,
        qty: int,
        tif: TimeInForce,
        main: Spec,
        others: list[Spec],
        *,
        oco: bool,
    ) -> list[PaperOrder]: ...
