"""The owner's desk at the paper broker: trades at the market, and working orders, brackets
and OCO pairs placed, modified and cancelled by hand (S8.10) — what a trader does in the
broker's own app. Part of :class:`~brokers.paper.broker.PaperBroker`."""

from __future__ import annotations

from decimal import Decimal

from brokers.base import (
    Fill,
    LegRole,
    OrderType,
    PlacedOrder,
    TimeInForce,
)
from brokers.paper.book import PaperBrokerError, PaperOrder
from brokers.paper.checks import (
    DONE_CANCELLED,
    check_qty,
    no_quote,
)
from brokers.paper.parts import PaperParts
from brokers.paper.terms import (
    Spec,
    oco_specs,
    owner_specs,
    specs_problem,
)


class OwnerDesk(PaperParts):
    def trade(
        self, account: str, symbol: str, qty: int, fills: tuple[int, ...] | None = None
    ) -> tuple[Fill, ...]:
        """The account's owner trades at the broker: a market order filled at ``last``.

        ``fills`` splits it into parts (positive, or signed like ``qty``; summing to ``|qty|``),
        one ``Fill`` each, returned. The position changes whether or not the session is
        delivering.
        """
        qty = check_qty(qty, f"trade {account} {symbol}")
        parts = self._split(qty, fills)
        self._parse_symbol(symbol)
        with self._change():
            connection = self._known_account(account)
            price = self._prices.get(symbol)
            if price is None:
                raise PaperBrokerError(no_quote(symbol))
            order = self._new_order(
                None, connection, account, symbol, qty=qty, order_type=OrderType.MARKET
            )
            self._emit_accepted(order)
            return tuple(
                self._execute(order, part, price, order_done=index == len(parts) - 1)
                for index, part in enumerate(parts)
            )

    def place_manual_working(self, account: str, symbol: str, qty: int) -> str:
        """A resting order the trader placed by hand (a stop, say); it never fills by itself."""
        qty = check_qty(qty, f"manual order {account} {symbol}")
        self._parse_symbol(symbol)
        with self._change():
            connection = self._known_account(account)
            order = self._new_order(
                None, connection, account, symbol, qty=qty, order_type=OrderType.MARKET
            )
            self._book.add_working(order)
            self._emit_accepted(order)
            return order.broker_order_id

    # -- the owner's working orders (S8.10; SCENARIOS order, oco, modify, cancel) --------------

    def place_working(
        self,
        account: str,
        symbol: str,
        qty: int,
        order_type: OrderType,
        *,
        price: Decimal | None = None,
        stop: Decimal | None = None,
        tif: TimeInForce = TimeInForce.DAY,
        bracket_stop: Decimal | None = None,
        bracket_target: Decimal | None = None,
    ) -> PlacedOrder:
        """The owner places an order (a market one fills at ``last`` at once); with
        ``bracket_stop`` and/or ``bracket_target`` a bracket whose stop-loss (a stop) and
        take-profit (a limit) work once it fills, for its filled quantity."""
        main, legs = owner_specs(order_type, price, stop, bracket_stop, bracket_target)
        qty = self._check_owner_order(f"order {account} {symbol}", qty, symbol, main, legs, tif)
        with self._change():
            connection = self._known_account(account)
            last = self._prices.get(symbol)
            if order_type is OrderType.MARKET and last is None:
                raise PaperBrokerError(no_quote(symbol))
            orders = self._open_orders(connection, account, symbol, qty, tif, main, legs, oco=False)
            entry = orders[0]
            if last is not None and order_type is OrderType.MARKET:
                self._matcher.fill(entry, qty, last)
            else:
                self._matcher.check(entry.broker_order_id)
            return PlacedOrder(entry.broker_order_id, *self._leg_ids(orders[1:]))

    def place_oco(
        self,
        account: str,
        symbol: str,
        qty: int,
        *,
        stop: Decimal,
        target: Decimal,
        tif: TimeInForce = TimeInForce.DAY,
    ) -> PlacedOrder:
        """The owner places a standalone OCO pair, both of ``qty``: a stop at ``stop`` and a
        limit at ``target``; the first to fill cancels the other."""
        loss, profit = oco_specs(stop, target)
        qty = self._check_owner_order(f"OCO {account} {symbol}", qty, symbol, loss, profit, tif)
        with self._change():
            connection = self._known_account(account)
            orders = self._open_orders(
                connection, account, symbol, qty, tif, loss, profit, oco=True
            )
            for order in orders:
                self._matcher.check(order.broker_order_id)
            return PlacedOrder(None, *self._leg_ids(orders))

    def modify(
        self,
        account: str,
        broker_order_id: str,
        *,
        qty: int | None = None,
        price: Decimal | None = None,
        stop: Decimal | None = None,
    ) -> None:
        """The owner changes a working order: ``qty`` its new total quantity (unsigned, not
        below what has filled), ``price``, ``stop``; checked against the market at once."""
        with self._change():
            order = self._owned(account, broker_order_id)
            problem = self._matcher.modify(order, qty, price, stop)
            if problem is not None:
                raise PaperBrokerError(f"modify {broker_order_id} of {account}: {problem}")

    def cancel(self, account: str, broker_order_id: str) -> None:
        """The owner cancels an order with everything linked to it: a bracket's entry with its
        legs (also once the entry has filled), an OCO order with its sibling."""
        with self._change():
            legs = [g for g in self._book.legs_of(broker_order_id) if g.account == account]
            order = self._book.get_working(broker_order_id)
            if order is None and legs:  # a filled entry: its legs
                for leg in legs:
                    if self._book.get_working(leg.broker_order_id) is not None:
                        self._matcher.cancel(leg, DONE_CANCELLED)
                return
            self._matcher.cancel(
                self._owned(account, broker_order_id), DONE_CANCELLED, every_leg=True
            )

    def fill_part(self, broker_order_id: str, qty: int) -> Fill:
        """The market takes ``qty`` (unsigned, less than or all of what is left) of a working
        limit (or triggered stop-limit) at its price: a partial fill."""
        qty = check_qty(qty, f"partial fill of {broker_order_id}")
        with self._change():
            order = self._book.get_working(broker_order_id)
            if order is None:
                raise PaperBrokerError(f"no working order {broker_order_id!r}")
            limit = order.order_type is OrderType.LIMIT or order.triggered
            if not (limit and order.active) or self._is_held(order):
                raise PaperBrokerError(f"{broker_order_id} is not a working limit")
            if qty < 0 or qty > abs(order.qty):
                raise PaperBrokerError(f"{broker_order_id} has {abs(order.qty)} left, not {qty}")
            assert order.price is not None
            side = 1 if order.qty > 0 else -1
            fill_id = f"{self._id_prefix}X{self._fill_seq + 1}"
            self._matcher.fill(order, side * qty, order.price)
            return self._fills[fill_id]

    def _owned(self, account: str, broker_order_id: str) -> PaperOrder:
        order = self._book.get_working(broker_order_id)
        if order is None or order.account != account:
            raise PaperBrokerError(f"{account} has no working order {broker_order_id!r}")
        return order

    def _check_owner_order(
        self, what: str, qty: int, symbol: str, main: Spec, others: list[Spec], tif: object
    ) -> int:
        qty = check_qty(qty, what)
        self._parse_symbol(symbol)
        problem = specs_problem(main, others, tif)
        if problem is not None:
            raise PaperBrokerError(f"{what}: {problem}")
        return qty

    @staticmethod
    def _leg_ids(orders: list[PaperOrder]) -> tuple[str | None, str | None]:
        """The broker order ids of the stop leg and of the target leg among ``orders``."""
        by_role = {order.role: order.broker_order_id for order in orders}
        return by_role.get(LegRole.STOP), by_role.get(LegRole.TARGET)

    @staticmethod
    def _split(qty: int, fills: tuple[int, ...] | None) -> list[int]:
        if fills is None:
            return [qty]
        parts = [check_qty(part, "trade fill part") for part in fills]
        sign = 1 if qty > 0 else -1
        if not parts or not (
            all(part > 0 for part in parts) or all(part * sign > 0 for part in parts)
        ):
            raise PaperBrokerError(f"trade fills {fills!r}: parts must be positive")
        signed = [abs(part) * sign for part in parts]
        if sum(signed) != qty:
            raise PaperBrokerError(f"trade fills {fills!r} do not sum to |{qty}|")
        return signed
