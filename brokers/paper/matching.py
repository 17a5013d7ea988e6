"""Working orders against the market (S8.10): when a limit, a stop or a stop-limit fills, what
a fill does to the orders linked to it, what a cancel ends, and how a modification applies.

- A buy limit fills in full at its price when ``last <= price`` (a sell limit when
  ``last >= price``). A buy stop triggers when ``last >= stop`` (a sell stop when
  ``last <= stop``) and fills at ``last``; a stop-limit, once triggered, is a limit at its price.
- A bracket's legs (``parent`` = the entry) work once their entry fills, for the entry's filled
  quantity; newly active legs are checked against the same ``last`` at once.
- An order with an OCO sibling (``oco``) cancels it when it fills, and ends it when cancelled.
- An entry cancelled before any fill ends its legs; once it has filled its legs protect that.

Nothing here locks or emits: the broker holds its lock, and the :class:`Venue` it hands in
executes fills, ends orders and reports changes as events.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from brokers.base import OrderStatus, OrderType, check_terms
from brokers.paper.book import Book, PaperOrder

DONE_OCO_FILLED = "cancelled: its OCO sibling filled"
DONE_OCO_CANCELLED = "cancelled with its OCO sibling"
DONE_ENTRY_CANCELLED = "cancelled with its bracket's entry"
DONE_MODIFIED_TO_FILLED = "modified down to its filled quantity"


class Venue(Protocol):
    """What the matcher needs of the broker (called with the broker's lock held)."""

    def last(self, symbol: str) -> Decimal | None:
        """The symbol's last price, if it has one."""

    def held(self, order: PaperOrder) -> bool:
        """Whether the order was sent on a held connection and not released yet."""

    def execute(self, order: PaperOrder, qty: int, price: Decimal, *, order_done: bool) -> object:
        """A fill of ``qty`` at ``price``: the position, ``order.filled``, the report, the event."""

    def end(self, order: PaperOrder, reason: str, status: OrderStatus) -> None:
        """The order left the book (already removed): its report and an ``OrderDone``."""

    def updated(self, order: PaperOrder) -> None:
        """The order changed (modified, or a leg activated or resized): an ``OrderUpdated``."""


def reached(buying: bool, stop: Decimal, last: Decimal) -> bool:
    """Whether ``last`` triggers a stop at ``stop`` of a buy (``buying``) or a sell."""
    return last >= stop if buying else last <= stop


def limit_reached(buying: bool, price: Decimal, last: Decimal) -> bool:
    """Whether a limit at ``price`` of a buy (``buying``) or a sell fills at ``last``."""
    return last <= price if buying else last >= price


def fill_price(order: PaperOrder, last: Decimal) -> Decimal | None:
    """At what price ``order`` fills with the market at ``last``, or ``None`` (not yet).
    A stop-limit whose stop ``last`` reaches is marked triggered: a limit from now on."""
    buying = order.qty > 0
    if order.order_type is OrderType.STOP:
        assert order.stop is not None
        return last if reached(buying, order.stop, last) else None
    if order.order_type is OrderType.STOP_LIMIT and not order.triggered:
        assert order.stop is not None
        if not reached(buying, order.stop, last):
            return None
        order.triggered = True
    if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        assert order.price is not None
        return order.price if limit_reached(buying, order.price, last) else None
    return None  # a market order resting (held or manual) is never matched


def link_bracket(entry: PaperOrder, legs: list[PaperOrder]) -> None:
    """Make ``legs`` the bracket of ``entry``: each names the entry, and the other leg as its
    OCO sibling; inactive, for the entry's quantity on the opposite side, until it fills."""
    for leg in legs:
        leg.parent = entry.broker_order_id
        leg.active = False
        leg.qty = -entry.qty
        leg.tif = entry.tif
    if len(legs) == 2:
        link_oco(legs[0], legs[1])


def link_oco(first: PaperOrder, second: PaperOrder) -> None:
    first.oco, second.oco = second.broker_order_id, first.broker_order_id


class Matcher:
    """Works the book's working orders for a :class:`Venue`."""

    def __init__(self, book: Book, venue: Venue) -> None:
        self._book = book
        self._venue = venue

    def tick(self, symbol: str) -> None:
        """The market moved: every working order of ``symbol``, in acceptance order."""
        for order in self._book.all_working():
            if order.symbol == symbol:
                self.check(order.broker_order_id)

    def check(self, broker_order_id: str) -> None:
        """Fill the order now if the current ``last`` reaches it (active, not held)."""
        order = self._book.get_working(broker_order_id)
        if order is None or not order.active or not order.order_type.working:
            return
        last = self._venue.last(order.symbol)
        if last is None or self._venue.held(order):
            return
        price = fill_price(order, last)
        if price is not None:
            self.fill(order, order.qty, price)

    def fill(self, order: PaperOrder, qty: int, price: Decimal) -> None:
        """Execute ``qty`` of ``order`` at ``price``; then its legs work for what it has filled,
        and its OCO sibling is cancelled."""
        order.qty -= qty
        done = order.qty == 0
        if done:
            self._book.remove_working(order.broker_order_id)
        self._venue.execute(order, qty, price, order_done=done)
        self._activate_legs(order)
        if order.oco is not None:
            self._end_linked(order.oco, DONE_OCO_FILLED)

    def cancel(self, order: PaperOrder, reason: str, *, every_leg: bool = False) -> None:
        """End ``order`` and what goes with it: its OCO sibling, and its bracket's legs while
        they are inactive (all of them with ``every_leg``)."""
        self._book.remove_working(order.broker_order_id)
        self._venue.end(order, reason, OrderStatus.CANCELLED)
        if order.oco is not None:
            self._end_linked(order.oco, DONE_OCO_CANCELLED)
        for leg in self._book.legs_of(order.broker_order_id):
            if every_leg or not leg.active:
                self._end_linked(leg.broker_order_id, DONE_ENTRY_CANCELLED)

    def modify(
        self, order: PaperOrder, qty: int | None, price: Decimal | None, stop: Decimal | None
    ) -> str | None:
        """Apply a modification (``qty`` the new total unsigned quantity), report it and check
        the order against the market at once; or what is wrong with it (nothing changes)."""
        if not order.order_type.working:
            return f"a {order.order_type.value} order cannot be modified"
        new_price = order.price if price is None else price
        new_stop = order.stop if stop is None else stop
        problem = check_terms(order.order_type, new_price, new_stop)
        if problem is not None:
            return problem
        if qty is not None:
            if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
                return f"quantity {qty!r} is not a positive whole number"
            if qty < order.filled:
                return f"quantity {qty} is below the {order.filled} already filled"
        side = 1 if order.qty > 0 else -1
        order.price, order.stop = new_price, new_stop
        if qty is not None:
            order.qty = side * (qty - order.filled)
        self._venue.updated(order)
        if qty is not None:
            for leg in self._book.legs_of(order.broker_order_id):
                if not leg.active:  # the entry has not filled: its legs follow its size
                    leg.qty = -side * qty
                    self._venue.updated(leg)
        if order.qty == 0:
            self._book.remove_working(order.broker_order_id)
            self._venue.end(order, DONE_MODIFIED_TO_FILLED, OrderStatus.FILLED)
            return None
        self.check(order.broker_order_id)
        return None

    def _activate_legs(self, entry: PaperOrder) -> None:
        changed: list[str] = []
        for leg in self._book.legs_of(entry.broker_order_id):
            side = 1 if leg.qty > 0 else -1
            qty = side * (entry.filled - leg.filled)
            if leg.active and leg.qty == qty:
                continue
            leg.active, leg.qty = True, qty
            self._venue.updated(leg)
            changed.append(leg.broker_order_id)
        for broker_order_id in changed:
            self.check(broker_order_id)

    def _end_linked(self, broker_order_id: str, reason: str) -> None:
        sibling = self._book.remove_working(broker_order_id)
        if sibling is not None:
            self._venue.end(sibling, reason, OrderStatus.CANCELLED)
