"""What ``make run`` logs: each leader fill as the broker reports it, every order the engine sends
(with the fill that caused it) and every activity record — and the broker wrapper that lets the
log, the metrics and the event stream see a broker event before the engine does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from brokers.base import Broker, BrokerEvent, BrokerSession, EventSink, Fill
from engine.core.topology import Topology
from engine.domain.activity import ActivityEntry, Kind, Level
from engine.domain.ledger import LedgerRow

log = structlog.get_logger("engine.live.runner")


class Reporter:
    """The log of a live run: leader fills as the broker reports them, every order the engine
    sends (with the fill that caused it), and every activity record.

    JSON lines carry fixed event names and the figures as fields; console lines are written to
    be read (``leader fill     DEMO-LEAD +2 ESZ6 @ 5012.25  (fill X3)``). Called from the actor
    threads and the broker's sinks, so it never raises. Nothing here sees a token.
    """

    def __init__(self, *, json: bool) -> None:
        self.json = json
        self.leaders: frozenset[str] = frozenset()
        self.followers: frozenset[str] = frozenset()

    def learn(self, topology: Topology) -> None:
        self.leaders = frozenset(g.leader for g in topology.groups.values())
        self.followers = frozenset(m.account for g in topology.groups.values() for m in g.members)

    def emit(self, level: str, event: str, summary: str, **fields: Any) -> None:
        try:
            method = getattr(log, level)
            if self.json:
                method(event, **fields)
            else:
                method(f"{event:<15} {summary}")
        except Exception:  # a log line must never break an actor or the broker
            pass

    # -- broker events (wraps the sinks of the engine's sessions) ---------------------------------

    def broker_event(self, event: BrokerEvent) -> None:
        if isinstance(event, Fill) and event.account in self.leaders:
            part = "" if event.order_done else ", partial"
            self.emit(
                "info",
                "leader fill",
                f"{event.account} {event.qty:+d} {event.symbol} @ {event.price}"
                f"  (fill {event.fill_id}{part})",
                account=event.account,
                symbol=event.symbol,
                qty=event.qty,
                price=str(event.price),
                fill_id=event.fill_id,
                order_done=event.order_done,
            )

    # -- records -----------------------------------------------------------------------------------

    def record(self, topic: str, payload: Any) -> None:
        if topic == "order" and isinstance(payload, LedgerRow):
            self._order(payload)
        elif topic == "activity" and isinstance(payload, ActivityEntry):
            self._activity(payload)

    def _order(self, row: LedgerRow) -> None:
        event = "follower order" if row.account in self.followers else "engine order"
        what = (
            f"liquidate {row.symbol}"
            if row.order_type == "liquidate"
            else f"{row.qty:+d} {row.symbol}"
        )
        self.emit(
            "info",
            event,
            f"{row.account} {what}  ({row.kind} of {row.cause}, order {row.client_order_id})",
            account=row.account,
            symbol=row.symbol,
            qty=row.qty,
            order_type=row.order_type,
            kind=row.kind,
            cause=row.cause,
            client_order_id=row.client_order_id,
        )

    def _activity(self, entry: ActivityEntry) -> None:
        if entry.kind is Kind.COPY and entry.fill is not None and entry.account in self.leaders:
            return  # the leader fill's own entry: logged as "leader fill" when the broker said
        level = {Level.INFO: "info", Level.WARNING: "warning", Level.ERROR: "error"}[entry.level]
        who = entry.account or entry.connection or "engine"
        self.emit(
            level,
            "activity",
            f"{who} {entry.message}  [{entry.kind.value}]",
            kind=entry.kind.value,
            account=entry.account,
            connection=entry.connection,
            message=entry.message,
        )


class ObservedBroker(Broker):
    """A broker whose sessions show every event to the observers before the engine gets it, so
    a leader fill is logged (and timed, and streamed) before the orders it causes. OAuth goes
    straight to the broker."""

    def __init__(self, inner: Broker, *observers: Callable[[BrokerEvent], None]) -> None:
        self.inner = inner
        self.observers = list(observers)

    def session(self, connection: str, accounts: tuple[str, ...], sink: EventSink) -> BrokerSession:
        observers = self.observers

        def observed(event: BrokerEvent) -> None:
            for observe in observers:
                try:
                    observe(event)
                except Exception:  # an observer must never keep an event from the engine
                    log.exception("broker event observer failed")
            sink(event)

        return self.inner.session(connection, accounts, observed)

    def authorize_url(self, connection: str, state: str, redirect_uri: str) -> str:
        return self.inner.authorize_url(connection, state, redirect_uri)

    async def exchange_code(self, connection: str, code: str, redirect_uri: str) -> None:
        await self.inner.exchange_code(connection, code, redirect_uri)


__all__ = ["ObservedBroker", "Reporter"]
