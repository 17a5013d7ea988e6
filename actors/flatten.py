"""A flatten run (S5.3 step 1, S5.6, S6): its steps, its retries, and what each liquidation's
outcome means for it.

The RiskActor owns the run and carries out what it decides — persisting it first, then telling
the connection — so a run here decides and counts, and sends nothing itself. A step cancels the
account's working orders (once per run) and liquidates every open contract not already being
liquidated; each liquidation's attempt number is counted before it is sent, so a restart never
sends the same one twice. A rejected liquidation backs off on S5.6's schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from actors.messages.connection import Placement
from brokers.base import OrderRequest, OrderType
from engine.domain.backoff import backoff
from engine.domain.order_ids import OrderKind, client_order_id, label
from engine.domain.state import FlattenRecord


class Purpose(StrEnum):
    COMMAND = "command"  # S6: no status change when flat
    LOCK = "lock"  # S5.3 / S5.7: LOCKED (or OK) when flat


@dataclass(frozen=True, slots=True)
class Step:
    """A flatten's next step: cancel the working orders first, then these liquidations."""

    cancel: bool
    orders: tuple[Placement, ...]


@dataclass(slots=True)
class FlattenRun:
    number: int
    cause: str
    purpose: Purpose
    failures: int = 0
    backing_off: bool = False
    waiting_connection: bool = False
    sends: dict[str, int] = field(default_factory=dict)
    restored: bool = False  # rebuilt after a restart: wait for the book before sending
    cancelled: bool = False  # the account's working orders were cancelled for this flatten

    @classmethod
    def restore(cls, record: FlattenRecord) -> FlattenRun:
        """The run a restart carries on: it waits for the broker's book before sending (its
        liquidations still working are recognised then, never re-sent blindly)."""
        return cls(
            record.number,
            record.cause,
            Purpose(record.purpose),
            record.failures,
            # Backing off when it stopped: the caller sets the retry timer again (the old one
            # may be gone with the old process).
            backing_off=bool(record.failures),
            sends=dict(record.sends),
            restored=True,
            # A run that had sent liquidations had cancelled the working orders first; doing it
            # again now would cancel its own liquidations still working at the broker.
            cancelled=bool(record.sends),
        )

    def record(self) -> FlattenRecord:
        """What is durable of the run (S7.2)."""
        return FlattenRecord(
            self.number, self.cause, self.purpose.value, self.failures, dict(self.sends)
        )

    def retry_delay(self) -> timedelta:
        """S5.6: the wait before the retry after this run's last failure."""
        return backoff(self.failures)

    def step(
        self,
        account: str,
        positions: Mapping[str, int],
        liquidating: dict[str, str],
        *,
        connected: bool,
    ) -> Step | None:
        """What the run does next, decided (its attempt numbers counted, its liquidations
        entered in ``liquidating``) but not yet sent; ``None`` while it waits (a back-off, the
        connection, the broker's book)."""
        if self.backing_off or self.waiting_connection or self.restored:
            return None
        if not connected:
            self.waiting_connection = True
            return None
        # S5.3 step 1: every working order too, also when sent on return
        cancel, self.cancelled = not self.cancelled, True
        orders: list[Placement] = []
        for symbol, qty in sorted(positions.items()):
            if not qty or symbol in liquidating:
                continue
            attempt = self.sends.get(symbol, 0) + 1
            self.sends[symbol] = attempt
            coid = client_order_id(OrderKind.LIQUIDATE, self.cause, account, symbol, attempt)
            liquidating[symbol] = coid
            request = OrderRequest(coid, account, symbol, 0, OrderType.LIQUIDATE)
            orders.append(Placement(request, label(OrderKind.LIQUIDATE), self.cause))
        return Step(cancel, tuple(orders))

    def rejected(self) -> timedelta:
        """A liquidation was rejected: back off (S5.6); returns the wait before the retry."""
        self.failures += 1
        self.backing_off = True
        return self.retry_delay()

    def retry_due(self, number: int, failures: int) -> bool:
        """A retry timer fired: whether it is this run's current one (then the back-off
        ends). A timer of an earlier run, or set before a later failure, is not."""
        if self.number != number or self.failures != failures:
            return False
        self.backing_off = False
        return True

    def answered(self, outcome: str, *, connected: bool, confirmed: bool) -> bool:
        """A liquidation ended other than rejected (filled, done, not sent); whether the run
        takes its next step now."""
        if outcome == "not_sent":
            self.waiting_connection = not connected
        # "done" with nothing open to liquidate while the book still holds a position the
        # broker has not confirmed (its snapshot is unknown, S3.5): liquidating it again
        # would find nothing again, forever. The confirmed book, when it comes, drives the rest.
        return not (outcome == "done" and not confirmed)

    def connection_returned(self) -> None:
        self.waiting_connection = False
