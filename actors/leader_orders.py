"""A leader's working orders, as its group mirrors them (S8.2).

A plain class the leader's AccountActor owns: it turns the broker's order events into
:class:`LeaderOrder` states and says which to announce to the group. Only the trader's own
resting orders count (limit, stop, stop-limit; the engine's orders are never mirrored), and a
bracket is announced whole: an entry the broker reports with its legs waits for them, so the
followers mirror it as a bracket in one request.
"""

from __future__ import annotations

from dataclasses import replace

from brokers.base import AccountSnapshot, Fill, OrderAccepted, OrderDone, OrderUpdated
from engine.domain.mirroring import LeaderOrder
from engine.domain.order_ids import kind_of


class LeaderOrders:
    def __init__(self) -> None:
        self.orders: dict[str, LeaderOrder] = {}  # by broker order id, working ones
        # An entry (or an OCO pair's first order) waiting for the legs reported with it.
        self.waiting: dict[str, set[str]] = {}
        # A bracket leg its entry's fill activated, waiting for its sibling's activation: the
        # two are announced together, so a follower mirrors them as one OCO pair (S8.2).
        self.pairing: set[str] = set()

    def accepted(self, event: OrderAccepted) -> tuple[LeaderOrder, ...]:
        if not event.order_type.working or kind_of(event.client_order_id) is not None:
            return ()
        order = LeaderOrder(
            order_id=event.broker_order_id,
            symbol=event.symbol,
            qty=event.qty,
            order_type=event.order_type,
            price=event.price,
            stop=event.stop,
            tif=event.tif,
            role=event.role,
            parent=event.parent,
            oco=event.oco,
            active=event.active,
        )
        self.orders[order.order_id] = order
        if event.legs:
            self.waiting[order.order_id] = set(event.legs)
            return ()
        for head, legs in list(self.waiting.items()):
            legs.discard(order.order_id)
            if not legs:
                del self.waiting[head]
                return self._group(head)
        return (order,)

    def _group(self, head: str) -> tuple[LeaderOrder, ...]:
        """An entry and the orders placed with it, entry first."""
        first = self.orders.get(head)
        linked = tuple(
            o for o in self.orders.values() if o.order_id != head and head in (o.parent, o.oco)
        )
        return linked if first is None else (first, *linked)

    def updated(self, event: OrderUpdated) -> tuple[LeaderOrder, ...]:
        order = self.orders.get(event.broker_order_id)
        if order is None:
            return ()
        sign = 1 if order.qty > 0 else -1
        changed = replace(
            order,
            qty=sign * (abs(event.qty) + event.filled) if event.qty else order.qty,
            price=event.price,
            stop=event.stop,
            active=event.active,
            filled=event.filled,
        )
        self.orders[order.order_id] = changed
        if self._waits(order.order_id):
            return ()
        sibling = self.orders.get(changed.oco or "")
        if sibling is not None and changed.active and not order.active:
            if not sibling.active:
                self.pairing.add(changed.order_id)
                return ()
            if sibling.order_id in self.pairing:
                self.pairing.discard(sibling.order_id)
                return (sibling, changed)
        return (changed,)

    def filled(self, fill: Fill) -> tuple[LeaderOrder, ...]:
        order = self.orders.get(fill.broker_order_id)
        if order is None:
            return ()
        changed = replace(order, filled=order.filled + abs(fill.qty))
        if not fill.order_done:
            self.orders[order.order_id] = changed
            return ()
        return self._ended(replace(changed, working=False))

    def done(self, event: OrderDone) -> tuple[LeaderOrder, ...]:
        order = self.orders.get(event.broker_order_id)
        if order is None:
            return ()
        return self._ended(replace(order, working=False))

    def _ended(self, order: LeaderOrder) -> tuple[LeaderOrder, ...]:
        del self.orders[order.order_id]
        self.pairing.discard(order.order_id)
        waited = self.waiting.pop(order.order_id, None)
        if waited is not None:
            return ()  # never announced: nothing mirrors it
        if self._waits(order.order_id):
            return ()
        sibling = self.orders.get(order.oco or "")
        if sibling is not None and sibling.order_id in self.pairing:
            self.pairing.discard(sibling.order_id)  # its sibling ended first: it goes alone
            return (order, sibling)
        return (order,)

    def _waits(self, order_id: str) -> bool:
        return order_id in self.waiting or any(order_id in w for w in self.waiting.values())

    def confirm(self, snapshot: AccountSnapshot) -> tuple[LeaderOrder, ...]:
        """The broker's word: every one of the trader's orders working now."""
        self.orders = {}
        self.waiting = {}
        self.pairing = set()
        for w in snapshot.working:
            if not w.order_type.working or kind_of(w.client_order_id) is not None:
                continue
            sign = 1 if w.qty > 0 else -1
            self.orders[w.broker_order_id] = LeaderOrder(
                order_id=w.broker_order_id,
                symbol=w.symbol,
                qty=sign * (abs(w.qty) + w.filled),
                order_type=w.order_type,
                price=w.price,
                stop=w.stop,
                tif=w.tif,
                filled=w.filled,
                role=w.role,
                parent=w.parent,
                oco=w.oco,
                active=w.active,
            )
        return tuple(self.orders.values())
