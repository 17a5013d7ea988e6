"""One login's orders as the adapter knows them, and the engine events they turn into.

Tradovate tells an order's story in pieces: ``command`` (carries our ``clOrdId``), ``order``
(account, side, status, and the links of a bracket leg or an OCO pair: ``parentId``,
``ocoId``), ``orderVersion`` (quantity, type, prices, time in force: a new one per
modification), ``fill`` (each execution), ``executionReport`` (a status again), and the HTTP
answer to ``placeorder``/``placeoso``/``placeoco`` (the order ids). They may arrive in any order
between the REST answer and the socket; the tracker emits, for each order, ``OrderAccepted``
once, then its ``Fill``\\ s and ``OrderUpdated``\\ s (a new version; a bracket leg made
active — ``Suspended`` to ``Working`` — or resized by its entry's fill), then at most one
``OrderDone``/``OrderRejected`` — whichever piece arrives first. An entry (or an OCO pair's
first order) is accepted naming the orders placed with it that are still to be reported
(``OrderAccepted.legs``); a request refused is one ``OrderRejected`` per client order id.

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
    OrderUpdated,
    WorkingOrder,
)
from brokers.tradovate.entities import (
    SUSPENDED,
    TERMINAL,
    TvCommand,
    TvFill,
    TvOrder,
    TvOrderVersion,
    report_status,
)
from brokers.tradovate.tracked import Tracked
from brokers.tradovate.working import Placement, placements

REJECTED_BY_BROKER = "Rejected by Tradovate"
TERMINAL_STATUSES = TERMINAL


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
        self._sent: dict[str, Placement] = {}  # this process's orders by client order id
        self._cl_of: dict[int, str] = {}  # order id -> clOrdId, from commands
        self._rejected: dict[str, str] = {}  # client order id -> account, refused without an id
        self._expected: set[int] = set()  # orders with a modification sent: confirmed by a version

    # -- the engine's requests -------------------------------------------------------------------

    def sending(self, request: OrderRequest) -> None:
        for placement in placements(request):
            self._sent[placement.client_order_id] = placement

    def placed(self, request: OrderRequest, ids: dict[str, int]) -> None:
        """The REST answer (or a lookup) gave the order ids, by client order id."""
        if request.order_type is OrderType.LIQUIDATE:
            self._liquidations[ids[request.client_order_id]] = request
        tracked_ids = [
            (ids[p.client_order_id], p) for p in placements(request) if p.client_order_id in ids
        ]
        linked = [self._track_placed(order_id, p) for order_id, p in tracked_ids]
        entry = ids.get(request.client_order_id)
        legs = [t for t in linked if t.order_id != entry]
        for leg in legs:
            if request.bracket:
                leg.parent = leg.parent if leg.parent is not None else entry
                others = [o.order_id for o in legs if o is not leg]
                leg.oco = leg.oco if leg.oco is not None or not others else others[0]
        main = next((t for t in linked if t.order_id == entry), None)
        if main is not None and request.oco is not None and legs and main.oco is None:
            main.oco = legs[0].order_id
            legs[0].oco = legs[0].oco if legs[0].oco is not None else main.order_id
        for tracked in linked:
            if tracked.finished and not tracked.accepted:
                continue  # refused on the socket before the answer came
            self._accept(tracked)

    def _track_placed(self, order_id: int, placement: Placement) -> Tracked:
        tracked = self.orders.get(order_id)
        if tracked is None:
            tracked = self.orders[order_id] = self._ours(order_id, placement)
        elif tracked.client_order_id is None:
            ours = self._ours(order_id, placement)
            ours.status, ours.parent, ours.oco = tracked.status, tracked.parent, tracked.oco
            ours.filled, ours.accepted, ours.finished = (
                tracked.filled,
                tracked.accepted,
                tracked.finished,
            )
            tracked = self.orders[order_id] = ours
        return tracked

    def rejected(self, request: OrderRequest, reason: str) -> None:
        """The REST answer refused the request (or it never reached the broker): one
        ``OrderRejected`` per client order id of it."""
        for cl in request.client_order_ids():
            if cl in self._rejected or any(
                t.client_order_id == cl and (t.finished or t.accepted) for t in self.orders.values()
            ):
                continue
            self._rejected[cl] = request.account
            self._emit(OrderRejected(self.connection, request.account, cl, reason))

    def is_known(self, order_id: int) -> bool:
        return order_id in self.orders

    def recognises(self, order_id: int) -> bool:
        """Known, or known to be the engine's (its ``clOrdId`` or its answer was seen)."""
        return order_id in self.orders or self._placement_of(order_id) is not None

    def knows_client_order(self, client_order_id: str) -> bool:
        return client_order_id in self._rejected or any(
            t.client_order_id == client_order_id for t in self.orders.values()
        )

    def find(self, order_id: int) -> Tracked | None:
        return self.orders.get(order_id)

    def expect_update(self, order_id: int, *, expected: bool = True) -> None:
        """A modification of ``order_id`` is sent (or, ``expected`` off, settled): its next
        version is reported as ``OrderUpdated`` even when its terms are the same."""
        if expected:
            self._expected.add(order_id)
        else:
            self._expected.discard(order_id)

    # -- Tradovate's pieces ----------------------------------------------------------------------

    def on_command(self, command: TvCommand) -> None:
        if command.cl_ord_id is not None:
            self._cl_of[command.order_id] = command.cl_ord_id

    def on_order(self, order: TvOrder, account: str, symbol: str) -> None:
        tracked = self.orders.get(order.id)
        if tracked is None:
            placement = self._placement_of(order.id)
            if placement is not None and placement.request.account == account:
                tracked = self._ours(order.id, placement)
            else:
                tracked = Tracked(order.id, account, symbol, order.side)
                tracked.client_order_id = self._cl_of.get(order.id)
            self.orders[order.id] = tracked
            tracked.link(order)
            tracked.status = order.status
            if placement is not None:
                self._accept(tracked)
        else:
            tracked.link(order)
            self.on_status(order.id, order.status)
            return
        if order.terminal:
            self._terminal(tracked)

    def on_status(self, order_id: int, status: str) -> None:
        """A known order's status (an ``order`` update or an ``executionReport``)."""
        tracked = self.orders.get(order_id)
        if tracked is None or tracked.finished or status == tracked.status:
            return
        before = tracked.terms()
        tracked.status = status
        if status in TERMINAL_STATUSES:
            self._terminal(tracked)
        elif tracked.accepted and tracked.terms() != before:
            self._update(tracked)

    def on_version(self, version: TvOrderVersion) -> None:
        tracked = self.orders.get(version.order_id)
        if tracked is None or tracked.order_type is OrderType.LIQUIDATE:
            return
        if version.id and version.id <= tracked.version:
            return  # an older version than the one applied
        before = tracked.terms()
        tracked.apply(version)
        if tracked.finished:
            return
        expected = version.order_id in self._expected
        self._expected.discard(version.order_id)
        if not tracked.accepted:
            self._accept(tracked)
        elif expected or tracked.terms() != before:
            self._update(tracked)

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
        latest: dict[int, TvOrderVersion] = {}
        for version in versions:
            known = latest.get(version.order_id)
            if known is None or version.id >= known.id:
                latest[version.order_id] = version
        filled: dict[int, int] = {}
        for fill in fills:
            if fill.active:  # a withdrawn fill filled nothing
                filled[fill.order_id] = filled.get(fill.order_id, 0) + abs(fill.qty)
        for order, account, symbol in orders:
            tracked = self.orders.get(order.id)
            if tracked is None:
                placement = self._placement_of(order.id)
                if placement is not None and placement.request.account == account:
                    tracked = self._ours(order.id, placement)
                else:
                    tracked = Tracked(order.id, account, symbol, order.side)
                    tracked.client_order_id = self._cl_of.get(order.id)
                self.orders[order.id] = tracked
            tracked.link(order)
            terms = latest.get(order.id)
            if (
                terms is not None
                and tracked.order_type is not OrderType.LIQUIDATE
                and (terms.id > tracked.version or tracked.qty is None)
            ):
                tracked.apply(terms)
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
        return tuple(t.working_order() for t in self.working(account))

    def reports(self, account: str) -> tuple[OrderReport, ...]:
        """Every order of ``account`` known by client order id, with where it stands."""
        out = [
            OrderReport(t.client_order_id, str(t.order_id), report_status(t.status), t.filled)
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

    def _placement_of(self, order_id: int) -> Placement | None:
        liquidation = self._liquidations.get(order_id)
        if liquidation is not None:
            return Placement(liquidation)
        return self._sent.get(self._cl_of.get(order_id, ""))

    def _ours(self, order_id: int, placement: Placement) -> Tracked:
        return Tracked(
            order_id,
            placement.request.account,
            placement.request.symbol,
            placement.side,
            placement.client_order_id,
            placement.order_type,
            placement.qty,
            price=placement.price,
            stop=placement.stop,
            tif=placement.request.tif,
            role=placement.role,
            status=SUSPENDED if placement.is_leg else "Working",
        )

    def _legs_of(self, tracked: Tracked) -> tuple[str, ...]:
        """The orders placed with ``tracked`` (its bracket, or the second of its OCO pair)
        known and still to be reported: named in its ``OrderAccepted``. The engine's are known
        by their client order ids as soon as their commands are; the owner's by their links."""
        if tracked.parent is not None:
            return ()
        ids: set[int] = set()
        placement = self._sent.get(tracked.client_order_id or "")
        if placement is not None and placement.leg is None:
            others = {p.client_order_id for p in placements(placement.request)[1:]}
            ids.update(oid for oid, cl in self._cl_of.items() if cl in others)
        ids.update(
            t.order_id
            for t in self.orders.values()
            if t.parent == tracked.order_id or (t.parent is None and t.oco == tracked.order_id)
        )
        reported = {t.order_id for t in self.orders.values() if t.accepted or t.finished}
        return tuple(str(oid) for oid in sorted(ids - reported) if oid != tracked.order_id)

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
                tracked.price,
                tracked.stop,
                tracked.tif,
                tracked.role_or_guess(),
                None if tracked.parent is None else str(tracked.parent),
                None if tracked.oco is None else str(tracked.oco),
                tracked.active,
                self._legs_of(tracked),
            )
        )

    def _update(self, tracked: Tracked) -> None:
        self._emit(
            OrderUpdated(
                self.connection,
                tracked.account,
                tracked.client_order_id,
                str(tracked.order_id),
                tracked.symbol,
                tracked.remaining(),
                tracked.price,
                tracked.stop,
                tracked.active,
                tracked.filled,
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
