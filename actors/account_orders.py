"""An account's part in the broker's order events: fills (a leader's fanned out, S2.1; a
mirror's matched, S8.4), acceptances, changes, rejections (a closing copy retried, S2.8) and
orders that ended or were never sent; a flat position's leftover orders cancelled (S2.10).
Part of ``AccountActor``.
"""

from __future__ import annotations

from actors import addresses
from actors.account_parts import AccountParts
from actors.book import Working
from actors.messages.account import (
    OrderNotSent,
    RetryCopy,
)
from actors.messages.connection import CancelWorking
from actors.messages.group import (
    LeaderFilled,
    LeaderOrdersChanged,
)
from actors.messages.risk import (
    LiquidationOutcome,
)
from brokers.base import (
    Fill,
    ModifyRejected,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderType,
    OrderUpdated,
)
from engine.domain.activity import Kind, Level
from engine.domain.backoff import backoff
from engine.domain.copy_rule import closing_part
from engine.domain.copying import LeaderFill
from engine.domain.mirroring import LeaderOrder
from engine.domain.order_ids import OrderKind, kind_of, label, leader_fill_of


class OrderEvents(AccountParts):
    # -- broker events -------------------------------------------------------------------------

    def _fill(self, fill: Fill) -> None:
        if fill.fill_id in self.seen_fills:
            return
        self.seen_fills.add(fill.fill_id)
        symbol = fill.symbol
        order = self.book.working.get(fill.client_order_id or fill.broker_order_id)
        cause = "" if order is None else order.cause  # the leader fill a copy copies
        charged = self.book.commissions
        before = self.book.apply(fill)
        after = before + fill.qty
        kind = kind_of(fill.client_order_id)
        if self.role.leader and self.role.group is not None:
            if self.synced:  # the fan-out first: it is the hot path
                filled = LeaderFill(
                    self.id,
                    fill.fill_id,
                    symbol,
                    before,
                    after,
                    fill.time,
                    fill.price,
                    fill.broker_order_id,
                    fill.order_done,
                )
                self.ctx.storage.leader_fill(self.role.group, filled)
                self.ctx.tell(addresses.group(self.role.group), LeaderFilled(filled))
                self._tell_orders(self.leader_orders.filled(fill))
            else:
                # On an unknown position "before" and "after" mean nothing (S3.5): fanned
                # out once the snapshot says where the leader stood.
                self.unfanned.append((fill.fill_id, symbol, fill.qty, fill.time, fill.price))
        self.ctx.storage.fill(fill, self.book.commissions - charged)  # S10.5, after the fan-out
        self._persist()
        self._tell_risk()  # the risk actor sees the new book before the liquidation's outcome
        if kind is OrderKind.LIQUIDATE and fill.order_done:
            self.ctx.tell(
                self.risk, LiquidationOutcome(fill.client_order_id or "", symbol, "filled", "")
            )
        if kind is not None:
            self.ctx.storage.order_status(
                fill.client_order_id or "", "filled" if fill.order_done else "partially_filled"
            )
            self.ctx.storage.activity(
                Level.INFO,
                _FILL_KINDS[kind],
                f"fill {fill.qty:+d} {symbol} @ {fill.price} ({label(kind)}); position {after:+d}",
                account=self.id,
                fill=leader_fill_of(kind, cause),
            )
            if after == 0:
                self._cancel_leftovers(symbol)  # S2.10
                self.mirrors.flat_leftovers(symbol)
        if kind is OrderKind.MIRROR:
            self.mirrors.mirror_fill(fill)
        if self.mirrors.tracking:
            self.mirrors.position_changed(symbol)  # S8.3: closing mirrors within the position
        self.prices.changed(symbol)  # S10.3

    def _cancel_leftovers(self, symbol: str) -> None:
        leftovers = self.book.leftovers(symbol)
        if leftovers:
            self.ctx.tell(
                addresses.connection(self.connection),
                CancelWorking(self.id, symbol, leftovers),
            )

    def _accepted(self, event: OrderAccepted) -> bool:
        """Returns whether anything the drift check reads may have changed: not for a market
        order of its own the engine already counted in flight (a copy now at the broker)."""
        key = event.client_order_id or event.broker_order_id
        order = self.book.working.get(key)
        known = order is not None
        if order is None:
            order = self.book.working[key] = Working(
                event.symbol,
                event.qty,
                event.client_order_id,
                event.broker_order_id,
                kind_of(event.client_order_id),
            )
        else:
            order.broker_order_id = event.broker_order_id
        order.order_type = event.order_type.value
        order.price, order.stop, order.active = event.price, event.stop, event.active
        order.role = None if event.role is None else event.role.value
        order.parent, order.oco = event.parent, event.oco
        if event.order_type is OrderType.LIQUIDATE:
            self._tell_risk()
        elif event.order_type.working and event.client_order_id and order.kind is not None:
            # A resting order of the engine's (a mirror, S8) is answered: the ledger says so,
            # so a stop while it rests does not leave its outcome unknown (S2.6).
            self.ctx.storage.order_status(event.client_order_id, "working")
            self.mirrors.accepted(event.client_order_id)
        if self.role.leader and self.role.group is not None:
            self._tell_orders(self.leader_orders.accepted(event))
        return not (known and event.order_type is OrderType.MARKET)

    def _tell_orders(self, orders: tuple[LeaderOrder, ...]) -> None:
        """S8.2: the leader's working orders that changed, to its group — only while its
        broker's word is known (S3.5): what changes meanwhile, its next snapshot says."""
        if orders and self.role.group is not None and self.synced:
            self.ctx.tell(addresses.group(self.role.group), LeaderOrdersChanged(orders))

    def _changed(self, event: OrderUpdated | ModifyRejected) -> None:
        """A working order was modified (or refused to be), or a bracket leg made active by
        its entry's fill."""
        if isinstance(event, ModifyRejected):
            self.ctx.storage.activity(
                Level.WARNING,
                Kind.REJECTION,
                f"broker refused to modify order "
                f"{event.client_order_id or event.broker_order_id}: {event.reason}",
                account=self.id,
            )
            return
        order = self.book.working.get(event.client_order_id or event.broker_order_id)
        if order is not None:
            order.qty = event.qty
            order.price, order.stop, order.active = event.price, event.stop, event.active
        if kind_of(event.client_order_id) is OrderKind.MIRROR and event.active:
            self.mirrors.resized(event.client_order_id, event.qty)
        if self.role.leader and self.role.group is not None:
            self._tell_orders(self.leader_orders.updated(event))

    def _rejected(self, event: OrderRejected) -> None:
        order = self.book.working.pop(event.client_order_id, None)
        kind = kind_of(event.client_order_id)
        if kind is OrderKind.MIRROR:
            self.mirrors.ended(event.client_order_id)
        self.ctx.storage.order_status(event.client_order_id, "rejected", event.reason)
        if kind is OrderKind.LIQUIDATE:
            symbol = order.symbol if order else ""
            self.ctx.tell(
                self.risk,
                LiquidationOutcome(event.client_order_id, symbol, "rejected", event.reason),
            )
            return
        if order is None:
            return
        closing = closing_part(self.book.projected(order.symbol), order.qty)
        retry = kind in _RETRIED and closing != 0
        self.ctx.storage.activity(
            Level.ERROR if retry else Level.WARNING,
            Kind.REJECTION,
            f"broker rejected {label(kind)} order {order.qty:+d} {order.symbol}: {event.reason}"
            + (" — closing copy, retrying" if retry else ""),
            account=self.id,
            fill=leader_fill_of(kind, order.cause),
        )
        if retry:
            self.ctx.schedule(
                backoff(order.attempt),
                self.ctx.address,
                RetryCopy(
                    order.cause, order.symbol, closing, order.attempt + 1, kind or OrderKind.COPY
                ),
            )

    def _done(self, event: OrderDone) -> None:
        key = event.client_order_id or event.broker_order_id
        order = self.book.working.pop(key, None)
        if kind_of(event.client_order_id) is OrderKind.MIRROR:
            self.mirrors.ended(event.client_order_id)
        if self.role.leader and self.role.group is not None:
            self._tell_orders(self.leader_orders.done(event))
        if event.client_order_id:
            self.ctx.storage.order_status(event.client_order_id, "done", event.reason)
        self._tell_risk()
        if kind_of(event.client_order_id) is OrderKind.LIQUIDATE:
            symbol = order.symbol if order else ""
            self.ctx.tell(
                self.risk, LiquidationOutcome(event.client_order_id or "", symbol, "done", "")
            )

    def _not_sent(self, event: OrderNotSent) -> None:
        order = self.book.working.pop(event.client_order_id, None)
        if order is not None and order.kind is OrderKind.MIRROR:
            self.mirrors.ended(event.client_order_id)
        if order is not None and order.kind is OrderKind.COPY:
            self.ctx.storage.copy_settled(order.cause, self.id)
        self._tell_risk()
        if kind_of(event.client_order_id) is OrderKind.LIQUIDATE:
            self.ctx.tell(
                self.risk,
                LiquidationOutcome(event.client_order_id, event.symbol, "not_sent", event.reason),
            )
        else:
            self.ctx.storage.activity(
                Level.INFO,
                Kind.SKIP,
                f"order {event.client_order_id} not sent: {event.reason}",
                account=self.id,
                fill=None if order is None else leader_fill_of(order.kind, order.cause),
            )


# S2.8: a rejected closing copy is retried; a drift reduction (always closing) the same way
# (S10.2).
_RETRIED = frozenset({OrderKind.COPY, OrderKind.DRIFT})

_FILL_KINDS = {
    OrderKind.COPY: Kind.COPY,
    OrderKind.RECONCILE: Kind.RECONCILIATION,
    OrderKind.LIQUIDATE: Kind.FLATTEN,
    OrderKind.SYNC: Kind.RECONCILIATION,
    OrderKind.MIRROR: Kind.COPY,
    OrderKind.REDUCE: Kind.RECONCILIATION,  # S9.2's warning is the risk actor's
    OrderKind.DRIFT: Kind.RECONCILIATION,  # S10.2
}
