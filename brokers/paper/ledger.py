"""The orders the paper broker knows by client order id, as a broker lists the day's orders
(S2.6): the ids it accepted and a report of each engine order, rejected ones included.

Both are kept for the current UTC day and the one before; older ones are forgotten at the first
order of a new day, unless still working. A broker process running for months keeps a bounded
memory, and its state file a bounded size. Nothing here locks; the broker holds its lock.
"""

from __future__ import annotations

from datetime import date, timedelta

from brokers.base import OrderReport, OrderStatus
from brokers.paper.book import PaperOrder


class OrderLedger:
    def __init__(self, today: date) -> None:
        self._today = today
        # Client order ids accepted, in order, with the day each was (of two days: above).
        self._accepted: dict[str, date] = {}
        self._reports: dict[str, OrderReport] = {}  # engine orders by client order id
        self._accounts: dict[str, str] = {}  # client order id -> account
        self._days: dict[str, date] = {}  # client order id -> the day first reported

    @property
    def accepted(self) -> tuple[str, ...]:
        """The client order ids accepted, in order."""
        return tuple(self._accepted)

    def accepted_among(self, client_order_ids: tuple[str, ...]) -> list[str]:
        """Those of ``client_order_ids`` accepted already, in their order."""
        return [coid for coid in client_order_ids if coid in self._accepted]

    def is_known(self, client_order_id: str) -> bool:
        """Whether the broker has a report of ``client_order_id`` (accepted or rejected)."""
        return client_order_id in self._reports

    def accept(self, client_order_id: str) -> None:
        self._accepted[client_order_id] = self._today

    def report(
        self,
        client_order_id: str,
        account: str,
        broker_order_id: str | None,
        status: OrderStatus,
        filled: int = 0,
    ) -> None:
        self._reports[client_order_id] = OrderReport(
            client_order_id, broker_order_id, status, filled
        )
        self._accounts[client_order_id] = account
        self._days.setdefault(client_order_id, self._today)

    def settle(self, order: PaperOrder, status: OrderStatus) -> None:
        """An engine order's report follows it: its status and what it has filled."""
        if order.client_order_id is not None and order.client_order_id in self._reports:
            self.report(
                order.client_order_id, order.account, order.broker_order_id, status, order.filled
            )

    def reports_of(self, account: str) -> tuple[OrderReport, ...]:
        return tuple(
            report for coid, report in self._reports.items() if self._accounts[coid] == account
        )

    def new_day(self, today: date) -> None:
        """At the first order of a new day: forget the ids and the reports of the days before
        yesterday (a report of an order still working stays)."""
        if today == self._today:
            return
        self._today = today
        oldest = today - timedelta(days=1)
        self._accepted = {c: d for c, d in self._accepted.items() if d >= oldest}
        gone = [
            coid
            for coid, day in self._days.items()
            if day < oldest and self._reports[coid].status is not OrderStatus.WORKING
        ]
        for coid in gone:
            del self._reports[coid], self._accounts[coid], self._days[coid]

    def reports(self) -> list[tuple[str, OrderReport]]:
        """Every report with its account (for the state file)."""
        return [(self._accounts[c], r) for c, r in self._reports.items()]

    def restore(self, accepted: list[str], reports: list[tuple[str, OrderReport]]) -> None:
        """Put back what a state file held (all of it counted as of today)."""
        self._accepted = dict.fromkeys(accepted, self._today)
        for account, r in reports:
            self.report(r.client_order_id, account, r.broker_order_id, r.status, r.filled)
