"""One login's orders as the adapter knows them, and the engine events they turn into.

Tradovate tells an order's story in pieces: ``command`` (carries our ``clOrdId``), ``order``
(account, side, status), ``orderVersion`` (quantity), ``fill`` (each execution), and the HTTP
answer to ``placeorder`` (the order id). They may arrive in any order between the REST answer
and the socket; the tracker emits, for each order, ``OrderAccepted`` once, then its ``Fill``\\ s,
then at most one ``OrderDone``/``OrderRejected`` — whichever piece arrives first.

An order is the engine's when its ``clOrdId`` (through its command) or its id (through the
``placeorder`` answer) matches a request of this process, or a ``clOrdId`` seen in a sync;
anything else is a trade the account's owner made by hand (``client_order_id`` ``None``). A
liquidation has no ``clOrdId``; it is the engine's through the ``liquidateposition`` answer, and
it is done when a fill of it leaves the position flat. Each fill reaches the tracker once (the
stream de-duplicates by fill id); one the broker withdraws is taken back out of its order's
filled quantity (:meth:`OrderTracker.withdraw`), and a sync counts only the fills still active.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from brokers.base import (
    BrokerEvent,
    Fill,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    WorkingOrder,
)
from brokers.tradovate.entities import (
    TvCommand,
    TvFill,
    TvOrder,
    TvOrderVersion,
    report_status,
)

REJECTED_BY_BROKER = "Rejected by Tradovate"


@dataclass
class Tracked:
    order_id: int
    account: str
    symbol: str
    side: int
    client_order_id: str | None = None
    order_type: OrderType = OrderType.MARKET
    qty: int | None = None  # signed quantity ordered; None until known; 0 for a liquidation
    filled: int = 0
    status: str = "Working"
    accepted: bool = False
    finished: bool = False

    def remaining(self) -> int:
        if self.order_type is OrderType.LIQUIDATE or self.qty is None:
            return 0
        return self.qty - self.side * self.filled


class OrderTracker:
    def __init__(
        self,
        connection: str,
        emit: Callable[[BrokerEvent], None],
        now: Callable[[], datetime],
        liquidations: dict[int, OrderRequest] | None = None,
    ) -> None:
        """``liquidations`` (order id → request) outlives this tracker: a liquidation carries no
        ``clOrdId``, so a later session of the connection knows it only from there."""
        self.connection = connection
        self._emit = emit
        self._now = now
        self._liquidations = liquidations if liquidations is not None else {}
        self.orders: dict[int, Tracked] = {}
        self._sent: dict[str, OrderRequest] = {}  # this process's requests by client order id
        self._cl_of: dict[int, str] = {}  # order id -> clOrdId, from commands
        self._rejected: dict[str, str] = {}  # client order id -> account, refused without an id

    # -- the engine's requests -------------------------------------------------------------------

    def sending(self, request: OrderRequest) -> None:
        self._sent[request.client_order_id] = request

    def placed(self, request: OrderRequest, order_id: int) -> None:
        """The REST answer gave ``order_id``."""
        if request.order_type is OrderType.LIQUIDATE:
            self._liquidations[order_id] = request
        tracked = self.orders.get(order_id)
        if tracked is None:
            tracked = self.orders[order_id] = self._ours(order_id, request)
        elif tracked.client_order_id is None:
            tracked.client_order_id = request.client_order_id
            tracked.order_type = request.order_type
            tracked.qty = 0 if request.order_type is OrderType.LIQUIDATE else request.qty
        if tracked.finished and not tracked.accepted:
            return  # refused on the socket before the answer came
        self._accept(tracked)

    def rejected(self, request: OrderRequest, reason: str) -> None:
        """The REST answer refused the order (or it never reached the broker)."""
        cl = request.client_order_id
        if cl in self._rejected or any(
            t.client_order_id == cl and t.finished for t in self.orders.values()
        ):
            return
        self._rejected[cl] = request.account
        self._emit(OrderRejected(self.connection, request.account, cl, reason))

    def is_known(self, order_id: int) -> bool:
        return order_id in self.orders

    def recognises(self, order_id: int) -> bool:
        """Known, or known to be the engine's (its ``clOrdId`` or its answer was seen)."""
        return order_id in self.orders or self._request_of(order_id) is not None

    def knows_client_order(self, client_order_id: str) -> bool:
        return client_order_id in self._rejected or any(
            t.client_order_id == client_order_id for t in self.orders.values()
        )

    # -- Tradovate's pieces ----------------------------------------------------------------------

    def on_command(self, command: TvCommand) -> None:
        if command.cl_ord_id is not None:
            self._cl_of[command.order_id] = command.cl_ord_id

    def on_order(self, order: TvOrder, account: str, symbol: str) -> None:
        tracked = self.orders.get(order.id)
        if tracked is None:
            request = self._request_of(order.id)
            if request is not None and request.account == account:
                tracked = self._ours(order.id, request)
            else:
                tracked = Tracked(order.id, account, symbol, order.side)
                tracked.client_order_id = self._cl_of.get(order.id)
            self.orders[order.id] = tracked
            if request is not None:
                self._accept(tracked)
        tracked.status = order.status
        if order.terminal:
            self._terminal(tracked)

    def on_version(self, version: TvOrderVersion) -> None:
        tracked = self.orders.get(version.order_id)
        if tracked is None or tracked.qty is not None:
            return
        tracked.qty = tracked.side * version.qty
        if not tracked.finished:
            self._accept(tracked)

    def on_fill(self, fill: TvFill, net_after: int) -> None:
        tracked = self.orders.get(fill.order_id)
        if tracked is None:
            return
        self._accept(tracked)
        tracked.filled += abs(fill.qty)
        if tracked.order_type is OrderType.LIQUIDATE:
            done = net_after == 0
        else:
            done = tracked.qty is not None and tracked.filled >= abs(tracked.qty)
        now = self._now()
        when = now if fill.timestamp is None else min(fill.timestamp, now)
        self._emit(
            Fill(
                self.connection,
                tracked.account,
                str(fill.id),
                str(tracked.order_id),
                tracked.client_order_id,
                tracked.symbol,
                fill.qty,
                fill.price,
                when,
                done,
            )
        )
        if done:
            tracked.finished = True

    def withdraw(self, fill: TvFill) -> str | None:
        """A fill counted earlier was withdrawn by the broker: it no longer fills its order.
        Returns the account it was of (``None`` when its order is not tracked)."""
        tracked = self.orders.get(fill.order_id)
        if tracked is None:
            return None
        tracked.filled = max(0, tracked.filled - abs(fill.qty))
        return tracked.account

    # -- a sync: what exists, learned without events (the snapshot tells the engine) --------------

    def load(
        self,
        orders: Iterable[tuple[TvOrder, str, str]],
        versions: Iterable[TvOrderVersion],
        commands: Iterable[TvCommand],
        fills: Iterable[TvFill],
    ) -> None:
        for command in commands:
            self.on_command(command)
        quantities = {v.order_id: v.qty for v in versions}
        filled: dict[int, int] = {}
        for fill in fills:
            if fill.active:  # a withdrawn fill filled nothing
                filled[fill.order_id] = filled.get(fill.order_id, 0) + abs(fill.qty)
        for order, account, symbol in orders:
            tracked = self.orders.get(order.id)
            if tracked is None:
                tracked = Tracked(order.id, account, symbol, order.side)
                tracked.client_order_id = self._cl_of.get(order.id)
                request = self._request_of(order.id)
                if request is not None and request.account == account:
                    tracked.client_order_id = request.client_order_id
                    tracked.order_type = request.order_type
                self.orders[order.id] = tracked
            if tracked.qty is None and order.id in quantities:
                tracked.qty = order.side * quantities[order.id]
            tracked.filled = max(tracked.filled, filled.get(order.id, 0))
            tracked.status = order.status
            tracked.accepted = True
            tracked.finished = order.terminal

    # -- what the engine asks about ----------------------------------------------------------------

    def working(self, account: str) -> list[Tracked]:
        return [
            t
            for t in self.orders.values()
            if t.account == account and not t.finished and t.status not in ("Filled", "Canceled")
        ]

    def working_orders(self, account: str) -> tuple[WorkingOrder, ...]:
        return tuple(
            WorkingOrder(str(t.order_id), t.client_order_id, t.symbol, t.remaining(), t.order_type)
            for t in self.working(account)
        )

    def reports(self, account: str) -> tuple[OrderReport, ...]:
        """Every order of ``account`` known by client order id, with where it stands."""
        out = [
            OrderReport(t.client_order_id, str(t.order_id), report_status(t.status))
            for t in self.orders.values()
            if t.account == account and t.client_order_id is not None
        ]
        out += [
            OrderReport(cl, None, OrderStatus.REJECTED)
            for cl, owner in self._rejected.items()
            if owner == account
        ]
        return tuple(out)

    # -- internals ---------------------------------------------------------------------------------

    def _request_of(self, order_id: int) -> OrderRequest | None:
        liquidation = self._liquidations.get(order_id)
        if liquidation is not None:
            return liquidation
        return self._sent.get(self._cl_of.get(order_id, ""))

    def _ours(self, order_id: int, request: OrderRequest) -> Tracked:
        liquidation = request.order_type is OrderType.LIQUIDATE
        return Tracked(
            order_id,
            request.account,
            request.symbol,
            1 if request.qty >= 0 else -1,
            request.client_order_id,
            request.order_type,
            0 if liquidation else request.qty,
        )

    def _accept(self, tracked: Tracked) -> None:
        if tracked.accepted:
            return
        tracked.accepted = True
        self._emit(
            OrderAccepted(
                self.connection,
                tracked.account,
                tracked.client_order_id,
                str(tracked.order_id),
                tracked.symbol,
                tracked.qty or 0,
                tracked.order_type,
            )
        )

    def _terminal(self, tracked: Tracked) -> None:
        if tracked.finished:
            return
        tracked.finished = True
        if tracked.status == "Rejected":
            if tracked.client_order_id is not None and not tracked.accepted:
                self._rejected[tracked.client_order_id] = tracked.account
                self._emit(
                    OrderRejected(
                        self.connection,
                        tracked.account,
                        tracked.client_order_id,
                        REJECTED_BY_BROKER,
                    )
                )
                return
            if not tracked.accepted:
                return  # a manual order refused before anyone knew of it
        self._accept(tracked)
        reason = "filled" if tracked.status in ("Filled", "Completed") else tracked.status.lower()
        self._emit(
            OrderDone(
                self.connection,
                tracked.account,
                tracked.client_order_id,
                str(tracked.order_id),
                reason,
            )
        )
