"""AccountActor: one broker trading account.

Owns positions and average prices, the engine's working orders, realized and unrealized P&L.
Applies its fills and ticks and tells its RiskActor of every change. A leader's account tells
its group of each fill (S2.1); a follower's account turns the group's copy offers into orders by
the S2.2 rule, computed here against its own position, and sends them through its risk gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import structlog

from actors import addresses
from actors.connection import (
    CancelWorking,
    ConnectionState,
    OrderNotSent,
    StateChanged,
    Synced,
)
from actors.copy_messages import CopyOffer, LeaderFilled, MemberSynced, ReconcileOrder
from actors.failure import InjectedFailure, fail
from actors.risk_messages import (
    AccountChanged,
    ApplyReset,
    FlattenActive,
    GateDecision,
    GateOrder,
    Holding,
    LiquidationOutcome,
    OrderIntent,
    ResetApplied,
)
from brokers.base import (
    AccountSnapshot,
    Fill,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderStatus,
    OrderType,
)
from engine.copy_rule import closing_part, copy_quantity, reconciliation_quantity, target
from engine.durable import AccountState, save_account
from engine.instruments import ContractTable, copies_root, map_symbol, split_symbol
from engine.order_ids import OrderKind, client_order_id, kind_of
from engine.positions import ZERO, Position
from engine.records import Kind, Level, UnresolvedOrder
from engine.runtime.base import ActorContext

log = structlog.get_logger("actors.account")

RETRY_CAP = timedelta(seconds=60)


def backoff(attempt: int) -> timedelta:
    """S5.6's schedule, shared by S2.8: 1, 2, 4, 8 … seconds, capped at 60."""
    return min(timedelta(seconds=2 ** max(attempt - 1, 0)), RETRY_CAP)


@dataclass(slots=True)
class Working:
    """An order working at the broker (or on its way there) for this account."""

    symbol: str
    qty: int  # signed remaining; 0 for a liquidation
    client_order_id: str | None
    broker_order_id: str | None = None
    kind: OrderKind | None = None
    cause: str = ""
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Role:
    """How the account takes part in copying: leader of a group, follower of one, or neither."""

    group: str | None = None
    leader: bool = False


@dataclass(frozen=True, slots=True)
class SetRole:
    role: Role


@dataclass(frozen=True, slots=True)
class RetryCopy:
    """S2.8: re-send a rejected closing copy (same cause, next attempt)."""

    cause: str
    symbol: str
    qty: int
    attempt: int


@dataclass(frozen=True, slots=True)
class SendBook:
    """From a restarted risk actor: tell me your book again."""


@dataclass(frozen=True, slots=True)
class SendPositions:
    """From a restarted group: tell me the leader's positions again (no reconciliation)."""


@dataclass(frozen=True, slots=True)
class AccountSettings:
    id: str
    connection: str
    balance: Decimal
    max_copy_age: timedelta = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class AccountView:
    """What the harness, the API and the status command read of an account."""

    id: str
    connection: str
    connection_state: str
    positions: Mapping[str, int]
    balance: Decimal
    realized_daily: Decimal
    realized_weekly: Decimal
    unrealized: Decimal
    role: Role
    working: int = 0
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def daily_pnl(self) -> Decimal:
        return self.realized_daily + self.unrealized

    @property
    def weekly_pnl(self) -> Decimal:
        return self.realized_weekly + self.unrealized

    @property
    def equity(self) -> Decimal:
        return self.balance + self.daily_pnl


class AccountActor:
    def __init__(
        self,
        ctx: ActorContext,
        settings: AccountSettings,
        contracts: ContractTable,
        connection_state: ConnectionState,
        role: Role,
        state: AccountState | None = None,
        unresolved: tuple[UnresolvedOrder, ...] = (),
    ) -> None:
        self.ctx = ctx
        self.id = settings.id
        self.connection = settings.connection
        self.max_copy_age = settings.max_copy_age
        self.contracts = contracts
        self.connection_state = connection_state
        self.role = role
        self.positions: dict[str, Position] = {}
        self.last_fill: dict[str, Decimal] = {}  # a price for P&L before any quote arrives
        self.flattening = False
        self.synced = False  # positions confirmed by the broker since the session started
        # What this actor knows of working orders is complete: always for a new account; for
        # one rebuilt from the store (working orders are not stored), once a snapshot came in.
        self.confirmed = state is None
        self.pending_reconcile: ReconcileOrder | None = None
        # At an engine start: orders sent before the stop whose outcome the engine never
        # heard, asked about by client order id in the first snapshot (S2.6); fan-outs to
        # complete once that snapshot is in (S2.9); copies that never reached the broker,
        # by cause, with the attempt that was lost.
        self.unresolved = unresolved
        self.pending_completions: list[CopyOffer] = []
        self.lost_copies: dict[str, int] = {}
        self.working: dict[str, Working] = {}  # by client order id, else broker order id
        self.balance = settings.balance
        self.realized_daily = ZERO
        self.realized_weekly = ZERO
        self.risk = addresses.risk(self.id)
        if state is not None:  # rebuilt from the store, never from memory (S7.2)
            self.balance = state.balance
            self.realized_daily = state.realized_daily
            self.realized_weekly = state.realized_weekly
            self.positions = {s: Position(q, r) for s, (q, r) in state.positions.items() if q}
            # The risk actor guards the remembered book at once, even before (or without) the
            # broker's snapshot: a connection down at a restart must not leave it unguarded.
            self.ctx.tell(self.risk, self.book())
        self.seen_fills: set[str] = set()

    # -- dispatch ------------------------------------------------------------------------------

    def receive(self, message: object) -> None:
        match message:
            case InjectedFailure():
                fail(f"account {self.id}")
            case CopyOffer():
                self._copy(message)
            case Fill():
                self._fill(message)
            case OrderAccepted():
                self._accepted(message)
            case OrderRejected():
                self._rejected(message)
            case OrderDone():
                self._done(message)
            case GateDecision():
                self._gate_decision(message)
            case OrderNotSent():
                self._not_sent(message)
            case ReconcileOrder():
                self._reconcile(message)
            case Synced():
                self._synced(message)
            case StateChanged(state=state):
                self.connection_state = state
                unconfirmed = state is not ConnectionState.CONNECTED and self.confirmed
                if state is not ConnectionState.CONNECTED:
                    # Trades made at the broker meanwhile are unknown until the next snapshot:
                    # the book stops being the broker's word (a held flatten must not call the
                    # account flat on it the moment the connection returns, S5.3).
                    self.synced = self.confirmed = False
                self.ctx.tell(self.risk, message)
                if unconfirmed:
                    self._tell_risk()
                if self.role.leader and self.role.group:
                    self.ctx.tell(addresses.group(self.role.group), message)
            case RetryCopy():
                self._retry(message)
            case ApplyReset():
                self._reset(message)
            case FlattenActive(active=active):
                self.flattening = active
            case SendBook():
                self._tell_risk()
            case SendPositions():
                self._tell_group_positions()
            case SetRole(role=role):
                self.role = role
            case _:
                log.warning("unknown message", account=self.id, message=repr(message))

    # -- figures -------------------------------------------------------------------------------

    def position(self, symbol: str) -> int:
        pos = self.positions.get(symbol)
        return pos.qty if pos else 0

    def projected(self, symbol: str) -> int:
        """P of S2.2: the position once the engine's working orders in ``symbol`` have filled.
        A working liquidation takes the position to zero whatever it is when it fills."""
        base = self.position(symbol)
        extra = 0
        for order in self.working.values():
            if order.symbol != symbol or order.kind is None:
                continue
            if order.kind is OrderKind.LIQUIDATE:
                base = 0
            else:
                extra += order.qty
        return base + extra

    def last_price(self, symbol: str) -> Decimal | None:
        price = self.ctx.market.last(symbol)
        return price if price is not None else self.last_fill.get(symbol)

    def unrealized(self) -> Decimal:
        total = ZERO
        for symbol, pos in self.positions.items():
            total += pos.unrealized(self.last_price(symbol), self.contracts.point_value(symbol))
        return total

    def view(self) -> AccountView:
        return AccountView(
            id=self.id,
            connection=self.connection,
            connection_state=self.connection_state.value,
            positions={s: p.qty for s, p in sorted(self.positions.items()) if p.qty},
            balance=self.balance,
            realized_daily=self.realized_daily,
            realized_weekly=self.realized_weekly,
            unrealized=self.unrealized(),
            role=self.role,
            working=len(self.working),
        )

    def book(self) -> AccountChanged:
        point_value = self.contracts.point_value
        return AccountChanged(
            positions={
                s: Holding(p.qty, p.reference, point_value(s))
                for s, p in self.positions.items()
                if p.qty
            },
            realized_daily=self.realized_daily,
            realized_weekly=self.realized_weekly,
            balance=self.balance,
            liquidations={
                w.symbol: w.client_order_id
                for w in self.working.values()
                if w.kind is OrderKind.LIQUIDATE and w.client_order_id
            },
            confirmed=self.confirmed,
            working=sum(1 for w in self.working.values() if w.kind is not OrderKind.LIQUIDATE),
        )

    def _tell_risk(self) -> None:
        self.ctx.tell(self.risk, self.book())

    def _persist(self) -> None:
        save_account(
            self.ctx.records.store,
            self.id,
            AccountState(
                self.balance,
                self.realized_daily,
                self.realized_weekly,
                {s: (p.qty, p.reference) for s, p in self.positions.items() if p.qty},
            ),
        )

    def _tell_group_positions(self) -> None:
        # Only positions the broker is confirming now: a leader that is down has none to give
        # (a follower must never be reconciled toward a stale leader, S3.1).
        connected = self.connection_state is ConnectionState.CONNECTED
        if connected and self.role.leader and self.role.group is not None:
            self.ctx.tell(
                addresses.group(self.role.group),
                MemberSynced(
                    account=self.id,
                    leader=True,
                    positions={s: p.qty for s, p in self.positions.items() if p.qty},
                    cause="restart",
                    reconcile=False,
                ),
            )

    # -- S5.8: resets ------------------------------------------------------------------------------

    def _reset(self, reset: ApplyReset) -> None:
        """Mark open positions to the last price (futures settle daily), roll realized into
        the balance, and zero the period's figures."""
        for symbol, pos in self.positions.items():
            last = self.last_price(symbol)
            if last is None or not pos.qty:
                continue
            marked = pos.unrealized(last, self.contracts.point_value(symbol))
            self.realized_daily += marked
            self.realized_weekly += marked
            pos.reference = last
        self.balance += self.realized_daily
        self.realized_daily = ZERO
        if reset.kind == "weekly":
            self.realized_weekly = ZERO
        self._persist()
        self.ctx.tell(self.risk, ResetApplied(reset.kind, self.book()))

    # -- S2: copying -----------------------------------------------------------------------------

    def _copy(self, offer: CopyOffer) -> None:
        connected = self.connection_state is ConnectionState.CONNECTED
        if offer.completion and connected and not self.synced:
            self.pending_completions.append(offer)  # decided on the broker's position (S2.9)
            return
        records = self.ctx.records
        if not records.decide_copy(offer.cause, self.id):
            return  # decided already: a completion of a fan-out that was not cut short here
        if not connected:
            records.activity(
                Level.INFO,
                Kind.SKIP,
                f"copy of leader fill {offer.fill_id} skipped: connection {self.connection} "
                f"is {self.connection_state.value}",
                account=self.id,
            )
            records.copy_settled(offer.cause, self.id)
            return
        symbol = offer.symbol
        current = self.projected(symbol)
        qty = copy_quantity(offer.before, offer.after, current, offer.ratio, offer.max_qty)
        if qty == 0:
            records.copy_settled(offer.cause, self.id)
            return
        closing = closing_part(current, qty)
        age = self.ctx.now() - offer.fill_time
        if qty != closing and age > self.max_copy_age:
            self.ctx.records.activity(
                Level.INFO,
                Kind.SKIP,
                f"opening copy of leader fill {offer.fill_id} skipped: stale "
                f"({age.total_seconds():.1f} s old, limit {self.max_copy_age.total_seconds():g} s)",
                account=self.id,
            )
            qty = closing
            if qty == 0:
                records.copy_settled(offer.cause, self.id)
                return
        attempt = self.lost_copies.pop(offer.cause, 0) + 1
        self._request(OrderKind.COPY, offer.cause, symbol, qty, attempt=attempt)

    def _request(self, kind: OrderKind, cause: str, symbol: str, qty: int, attempt: int) -> None:
        coid = client_order_id(kind, cause, self.id, symbol, attempt)
        if coid in self.working:
            return
        self.working[coid] = Working(symbol, qty, coid, None, kind, cause, attempt)
        self.ctx.tell(
            self.risk,
            GateOrder(
                OrderIntent(
                    client_order_id=coid,
                    kind=kind,
                    cause=cause,
                    symbol=symbol,
                    qty=qty,
                    position=self.position(symbol),
                    projected=self.projected(symbol) - qty,
                    attempt=attempt,
                )
            ),
        )

    def _gate_decision(self, decision: GateDecision) -> None:
        order = self.working.get(decision.client_order_id)
        if order is None:
            return
        if decision.qty == 0:
            del self.working[decision.client_order_id]
            if order.kind is OrderKind.COPY:
                self.ctx.records.copy_settled(order.cause, self.id)
        else:
            order.qty = decision.qty

    def _retry(self, retry: RetryCopy) -> None:
        current = self.projected(retry.symbol)
        qty = closing_part(current, retry.qty)
        if qty == 0 or self.connection_state is not ConnectionState.CONNECTED:
            return
        self._request(OrderKind.COPY, retry.cause, retry.symbol, qty, retry.attempt)

    # -- S3: reconciliation --------------------------------------------------------------------

    def _reconcile(self, order: ReconcileOrder) -> None:
        if self.connection_state is not ConnectionState.CONNECTED:
            return
        if not self.synced:
            # Positions not yet confirmed by the broker since the session (re)started: act
            # once the snapshot is in, never on what the store remembered (S3.2).
            self.pending_reconcile = order
            return
        symbol_map = dict(order.symbol_map)
        targets: dict[str, int] = {}
        for leader_symbol, qty in order.leader_positions.items():
            mine = map_symbol(leader_symbol, symbol_map)
            targets[mine] = targets.get(mine, 0) + target(qty, order.ratio, order.max_qty)
        symbols = sorted({s for s, p in self.positions.items() if p.qty} | set(targets))
        before: dict[str, int] = {}
        wanted: dict[str, int] = {}
        sent: dict[str, int] = {}
        liquidating = self.flattening or any(
            w.kind is OrderKind.LIQUIDATE for w in self.working.values()
        )
        for symbol in symbols:
            if not copies_root(split_symbol(symbol).root, symbol_map):
                continue
            current = self.projected(symbol)
            goal = targets.get(symbol, 0)
            before[symbol] = self.position(symbol)
            wanted[symbol] = goal
            if liquidating:
                continue  # S3.2: the flatten in flight covers it
            qty = reconciliation_quantity(current, goal)
            if qty:
                sent[symbol] = qty
                self._request(OrderKind.RECONCILE, order.cause, symbol, qty, attempt=1)
        self.ctx.records.reconciliation(self.id, self.connection, order.cause, before, wanted, sent)
        described = ", ".join(f"{s} {q:+d}" for s, q in sent.items()) or "nothing sent"
        self.ctx.records.activity(
            Level.INFO,
            Kind.RECONCILIATION,
            f"flatten-only reconciliation toward the leader ({order.cause}): {described}",
            account=self.id,
        )

    def _synced(self, synced: Synced) -> None:
        snapshot = synced.snapshot
        if not isinstance(snapshot, AccountSnapshot):
            return
        positions: dict[str, Position] = {}
        for symbol, info in snapshot.positions.items():
            if info.qty:
                positions[symbol] = Position(info.qty, info.avg_price)
        self.positions = positions
        kept = self._unanswered(snapshot)
        for order in snapshot.working:
            key = order.client_order_id or order.broker_order_id
            kept[key] = Working(
                order.symbol,
                order.qty,
                order.client_order_id,
                order.broker_order_id,
                kind_of(order.client_order_id),
            )
        self.working = kept
        self.synced = True
        self.confirmed = True
        if self.unresolved:
            self._resolve(snapshot)
        self._persist()
        self._tell_risk()
        if self.role.group is not None:
            self.ctx.tell(
                addresses.group(self.role.group),
                MemberSynced(
                    account=self.id,
                    leader=self.role.leader,
                    positions={s: p.qty for s, p in positions.items()},
                    cause=synced.cause,
                    reconcile=synced.reconcile,
                    start=synced.start,
                ),
            )
        if self.pending_reconcile is not None:
            deferred, self.pending_reconcile = self.pending_reconcile, None
            self._reconcile(deferred)
        completions, self.pending_completions = self.pending_completions, []
        for offer in completions:
            self._copy(offer)

    def _unanswered(self, snapshot: AccountSnapshot) -> dict[str, Working]:
        """The orders sent that the broker has not answered yet, to keep beside its working
        ones — less those the broker reports done: their answer was lost (the link dropped, or
        a lookup of an unknown outcome failed), and the snapshot's positions hold their fills.
        An order the broker does not report at all may still be on its way, and stays."""
        # Those the broker answered are replaced by the snapshot's working orders.
        unanswered = {k: w for k, w in self.working.items() if w.broker_order_id is None}
        if not unanswered:
            return unanswered  # the usual case: no need to read every order the broker reports
        done = {
            r.client_order_id: r.status
            for r in snapshot.orders
            if r.status is not OrderStatus.WORKING
        }
        kept: dict[str, Working] = {}
        for key, order in unanswered.items():
            status = done.get(order.client_order_id or "")
            if status is None:
                kept[key] = order
                continue
            self.ctx.records.order_status(key, status.value)
            self.ctx.records.activity(
                Level.WARNING,
                Kind.RECONCILIATION,
                f"order {key} ({order.symbol} {order.qty:+d}) is {status.value} at the broker;"
                " its answer never came, the broker's positions stand",
                account=self.id,
            )
        return kept

    def _resolve(self, snapshot: AccountSnapshot) -> None:
        """S2.6: each order of unknown outcome is looked up by its client order id among the
        orders the broker knows. Known: its status goes in the ledger, and it is never sent
        again. Unknown to the broker: it never arrived — a copy is then decided again, with
        the next attempt number, when its fan-out is completed (S2.9); a liquidation or a
        reconciliation is redone by the flatten in flight or this start's reconciliation."""
        reports = {r.client_order_id: r for r in snapshot.orders}
        records = self.ctx.records
        unresolved, self.unresolved = self.unresolved, ()
        for order in unresolved:
            report = reports.get(order.client_order_id)
            if report is None:
                records.order_status(order.client_order_id, "not_received")
                if order.kind is OrderKind.COPY:
                    self.lost_copies[order.cause] = max(
                        self.lost_copies.get(order.cause, 0), order.attempt
                    )
                outcome = "never reached the broker"
            else:
                records.order_status(order.client_order_id, report.status.value)
                if order.kind is OrderKind.COPY:
                    records.decide_copy(order.cause, self.id)
                    self.lost_copies.pop(order.cause, None)
                outcome = f"is {report.status.value} at the broker"
            records.activity(
                Level.INFO if report is not None else Level.WARNING,
                Kind.RESTART,
                f"order {order.client_order_id} sent before the restart, outcome unknown: "
                f"{outcome}",
                account=self.id,
            )

    # -- broker events -------------------------------------------------------------------------

    def _fill(self, fill: Fill) -> None:
        if fill.fill_id in self.seen_fills:
            return
        self.seen_fills.add(fill.fill_id)
        symbol = fill.symbol
        before = self.position(symbol)
        pos = self.positions.setdefault(symbol, Position())
        realized = pos.apply(fill.qty, fill.price, self.contracts.point_value(symbol))
        self.realized_daily += realized
        self.realized_weekly += realized
        self.last_fill[symbol] = fill.price
        if pos.qty == 0:
            del self.positions[symbol]
        after = before + fill.qty
        key = fill.client_order_id or fill.broker_order_id
        kind = kind_of(fill.client_order_id)
        order = self.working.get(key)
        if order is not None:
            order.qty -= 0 if order.kind is OrderKind.LIQUIDATE else fill.qty
            if fill.order_done:
                del self.working[key]
        if (
            self.role.leader and self.role.group is not None
        ):  # the fan-out first: it is the hot path
            filled = LeaderFilled(self.id, fill.fill_id, symbol, before, after, fill.time)
            self.ctx.records.leader_fill(self.role.group, filled)
            self.ctx.tell(addresses.group(self.role.group), filled)
        self._persist()
        self._tell_risk()  # the risk actor sees the new book before the liquidation's outcome
        if kind is OrderKind.LIQUIDATE and fill.order_done:
            self.ctx.tell(
                self.risk, LiquidationOutcome(fill.client_order_id or "", symbol, "filled", "")
            )
        if kind is not None:
            self.ctx.records.order_status(
                fill.client_order_id or "", "filled" if fill.order_done else "partially_filled"
            )
            self.ctx.records.activity(
                Level.INFO,
                _FILL_KINDS[kind],
                f"fill {fill.qty:+d} {symbol} @ {fill.price} ({_origin(kind)}); "
                f"position {after:+d}",
                account=self.id,
            )
            if after == 0:
                self._cancel_leftovers(symbol)  # S2.10

    def _cancel_leftovers(self, symbol: str) -> None:
        leftovers = tuple(
            w.broker_order_id
            for w in self.working.values()
            if w.symbol == symbol and w.kind is None and w.broker_order_id
        )
        if leftovers:
            self.ctx.tell(
                addresses.connection(self.connection),
                CancelWorking(self.id, symbol, leftovers),
            )

    def _accepted(self, event: OrderAccepted) -> None:
        key = event.client_order_id or event.broker_order_id
        order = self.working.get(key)
        if order is None:
            self.working[key] = Working(
                event.symbol,
                event.qty,
                event.client_order_id,
                event.broker_order_id,
                kind_of(event.client_order_id),
            )
        else:
            order.broker_order_id = event.broker_order_id
        if event.order_type is OrderType.LIQUIDATE:
            self._tell_risk()

    def _rejected(self, event: OrderRejected) -> None:
        order = self.working.pop(event.client_order_id, None)
        kind = kind_of(event.client_order_id)
        self.ctx.records.order_status(event.client_order_id, "rejected", event.reason)
        if kind is OrderKind.LIQUIDATE:
            symbol = order.symbol if order else ""
            self.ctx.tell(
                self.risk,
                LiquidationOutcome(event.client_order_id, symbol, "rejected", event.reason),
            )
            return
        if order is None:
            return
        closing = closing_part(self.projected(order.symbol), order.qty)
        retry = kind is OrderKind.COPY and closing != 0
        self.ctx.records.activity(
            Level.ERROR if retry else Level.WARNING,
            Kind.REJECTION,
            f"broker rejected {_origin(kind)} order {order.qty:+d} {order.symbol}: {event.reason}"
            + (" — closing copy, retrying" if retry else ""),
            account=self.id,
        )
        if retry:
            self.ctx.schedule(
                backoff(order.attempt),
                self.ctx.address,
                RetryCopy(order.cause, order.symbol, closing, order.attempt + 1),
            )

    def _done(self, event: OrderDone) -> None:
        key = event.client_order_id or event.broker_order_id
        order = self.working.pop(key, None)
        if event.client_order_id:
            self.ctx.records.order_status(event.client_order_id, "done", event.reason)
        self._tell_risk()
        if kind_of(event.client_order_id) is OrderKind.LIQUIDATE:
            symbol = order.symbol if order else ""
            self.ctx.tell(
                self.risk, LiquidationOutcome(event.client_order_id or "", symbol, "done", "")
            )

    def _not_sent(self, event: OrderNotSent) -> None:
        order = self.working.pop(event.client_order_id, None)
        if order is not None and order.kind is OrderKind.COPY:
            self.ctx.records.copy_settled(order.cause, self.id)
        self._tell_risk()
        if kind_of(event.client_order_id) is OrderKind.LIQUIDATE:
            self.ctx.tell(
                self.risk,
                LiquidationOutcome(event.client_order_id, event.symbol, "not_sent", event.reason),
            )
        else:
            self.ctx.records.activity(
                Level.INFO,
                Kind.SKIP,
                f"order {event.client_order_id} not sent: {event.reason}",
                account=self.id,
            )


_FILL_KINDS = {
    OrderKind.COPY: Kind.COPY,
    OrderKind.RECONCILE: Kind.RECONCILIATION,
    OrderKind.LIQUIDATE: Kind.FLATTEN,
}


def _origin(kind: OrderKind | None) -> str:
    return {
        OrderKind.COPY: "copy",
        OrderKind.RECONCILE: "reconciliation",
        OrderKind.LIQUIDATE: "liquidation",
        None: "manual",
    }[kind]
