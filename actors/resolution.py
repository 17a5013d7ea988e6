"""What a snapshot settles of the orders the engine sent and never heard back about (S2.6).

Two kinds: orders sent in this run whose answer has not come (the link dropped, or a lookup
failed) — kept beside the broker's working orders unless the broker reports them done — and, at
an engine start, orders sent before the stop whose outcome the ledger does not know, each
looked up by its client order id among the orders the broker knows, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping

from actors.book import Working
from brokers.base import AccountSnapshot, OrderStatus
from engine.domain.activity import Kind, Level
from engine.domain.ledger import UnresolvedOrder
from engine.domain.order_ids import OrderKind
from engine.host.storage import Storage


def unanswered(
    account: str, working: Mapping[str, Working], snapshot: AccountSnapshot, storage: Storage
) -> dict[str, Working]:
    """The orders sent that the broker has not answered yet, to keep beside its working
    ones — less those the broker reports done: their answer was lost (the link dropped, or
    a lookup of an unknown outcome failed), and the snapshot's positions hold their fills.
    An order the broker does not report at all may still be on its way, and stays."""
    # Those the broker answered are replaced by the snapshot's working orders.
    waiting = {k: w for k, w in working.items() if w.broker_order_id is None}
    if not waiting:
        return waiting  # the usual case: no need to read every order the broker reports
    done = {
        r.client_order_id: r.status for r in snapshot.orders if r.status is not OrderStatus.WORKING
    }
    kept: dict[str, Working] = {}
    for key, order in waiting.items():
        status = done.get(order.client_order_id or "")
        if status is None:
            kept[key] = order
            continue
        storage.order_status(key, status.value)
        storage.activity(
            Level.WARNING,
            Kind.RECONCILIATION,
            f"order {key} ({order.symbol} {order.qty:+d}) is {status.value} at the broker;"
            " its answer never came, the broker's positions stand",
            account=account,
        )
    return kept


class Unresolved:
    """At an engine start: orders sent before the stop whose outcome the engine never heard,
    asked about by client order id in the first snapshot (S2.6); and copies that never reached
    the broker, by cause, with the attempt that was lost."""

    def __init__(self, orders: tuple[UnresolvedOrder, ...] = ()) -> None:
        self.orders = orders
        self.lost_copies: dict[str, int] = {}

    def next_attempt(self, cause: str) -> int:
        """The attempt number of a copy decided for ``cause``: the one after a lost one."""
        return self.lost_copies.pop(cause, 0) + 1

    def resolve(self, account: str, snapshot: AccountSnapshot, storage: Storage) -> None:
        """Known to the broker: its status goes in the ledger, and it is never sent again.
        Unknown to the broker: it never arrived — a copy is then decided again, with the next
        attempt number, when its fan-out is completed (S2.9); a liquidation or a
        reconciliation is redone by the flatten in flight or this start's reconciliation."""
        reports = {r.client_order_id: r for r in snapshot.orders}
        orders, self.orders = self.orders, ()
        for order in orders:
            report = reports.get(order.client_order_id)
            if report is None:
                storage.order_status(order.client_order_id, "not_received")
                if order.kind is OrderKind.COPY:
                    self.lost_copies[order.cause] = max(
                        self.lost_copies.get(order.cause, 0), order.attempt
                    )
                outcome = "never reached the broker"
            else:
                storage.order_status(order.client_order_id, report.status.value)
                if order.kind is OrderKind.COPY:
                    storage.decide_copy(order.cause, account)
                    self.lost_copies.pop(order.cause, None)
                outcome = f"is {report.status.value} at the broker"
            storage.activity(
                Level.INFO if report is not None else Level.WARNING,
                Kind.RESTART,
                f"order {order.client_order_id} sent before the restart, outcome unknown: "
                f"{outcome}",
                account=account,
            )
