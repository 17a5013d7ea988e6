"""AccountActor: one broker trading account.

Owns positions and average prices, the engine's working orders, realized and unrealized P&L.
Applies its fills and ticks and tells its RiskActor of every change. A leader's account tells
its group of each fill (S2.1); a follower's account turns the group's copy offers into orders by
the S2.2 rule, computed here against its own position, and sends them through its risk gate.

Unknown is not flat (S3.5): positions count as the broker's word only once a snapshot received
since the connection last became connected confirmed them. Until then nothing is decided from
them: a reconciliation and the copy offers wait for the snapshot, and a leader's fills are
fanned out once their place in the confirmed position is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from actors import addresses
from actors.connection import (
    CancelWorking,
    ConnectionState,
    OrderNotSent,
    RefreshAccount,
    SnapshotUnknown,
    StateChanged,
    Synced,
)
from actors.copy_messages import (
    AwaitingLeader,
    CopyOffer,
    LeaderCorrected,
    LeaderFilled,
    LeaderUnconfirmed,
    LeaderUnknown,
    MemberSynced,
    ReconcileOrder,
)
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
    FillCorrected,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderStatus,
    OrderType,
    PricesRestored,
    PricesUnavailable,
)
from brokers.instruments import ContractTable, copies_root, map_symbol, split_symbol
from engine.domain.backoff import backoff
from engine.domain.copy_rule import closing_part, copy_quantity, reconciliation_quantity, target
from engine.domain.order_ids import OrderKind, client_order_id, kind_of
from engine.domain.positions import ZERO, Position
from engine.host.base import ActorContext
from engine.storage.durable import AccountState, save_account
from engine.storage.records import Kind, Level, UnresolvedOrder

log = structlog.get_logger("actors.account")


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
    # Positions confirmed by a snapshot since the connection last became connected (S3.5).
    positions_confirmed: bool = True

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
        # Positions confirmed by a snapshot received since the connection last became
        # connected (S3.5); until then nothing is decided from them.
        self.synced = False
        # The connection became connected since the last snapshot: the next one reconciles
        # the account (S3.1), whichever request it answers.
        self.returned = False
        # What this actor knows of working orders is complete: always for a new account; for
        # one rebuilt from the store (working orders are not stored), once a snapshot came in.
        self.confirmed = state is None
        self.pending_reconcile: ReconcileOrder | None = None
        # At an engine start: orders sent before the stop whose outcome the engine never
        # heard, asked about by client order id in the first snapshot (S2.6); copies that
        # never reached the broker, by cause, with the attempt that was lost.
        self.unresolved = unresolved
        self.lost_copies: dict[str, int] = {}
        # Copy offers and closing-copy retries waiting for the snapshot, in the order they
        # came: decided on the broker's confirmed position (S3.5), fan-outs a crash cut short
        # included (S2.9).
        self.pending_offers: list[CopyOffer | RetryCopy] = []
        # A leader's fills that came while its positions were unknown: fanned out once the
        # snapshot places them (fill id, symbol, quantity, time).
        self.unfanned: list[tuple[str, str, int, datetime]] = []
        self.corrected_fills: set[str] = set()  # fills the broker withdrew (never counted)
        self.unknown_warned = ""  # the wait (first attempt) last warned about, S3.5
        self.leader_warned = ""  # the leader's wait last warned about, S3.5
        self.unpriced: dict[str, str] = {}  # symbol -> why its prices are unavailable (S10.3)
        self.unpriced_warned: set[str] = set()
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
            case (
                SnapshotUnknown()
                | AwaitingLeader()
                | LeaderUnconfirmed()
                | FillCorrected()
                | PricesUnavailable()
                | PricesRestored()
            ):
                self._unknowns(message)
            case StateChanged():
                self._state_changed(message)
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
            positions_confirmed=self.synced,
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
        # Only positions a snapshot confirmed since the connection last became connected: a
        # leader that is down, or whose answer is still unknown, has none to give (a follower
        # must never be reconciled toward a stale leader, S3.1, S3.5); its snapshot, when it
        # comes, tells the group.
        connected = self.connection_state is ConnectionState.CONNECTED
        if connected and self.synced and self.role.leader and self.role.group is not None:
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
        if connected and not self.synced:
            # Decided on the broker's confirmed position, never on an unknown one (S3.5; a
            # completion, S2.9, likewise): the opening part then ages as any copy does.
            self.pending_offers.append(offer)
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
        if self.connection_state is not ConnectionState.CONNECTED:
            return
        if not self.synced:
            self.pending_offers.append(retry)  # sized on the confirmed position (S3.5)
            return
        current = self.projected(retry.symbol)
        qty = closing_part(current, retry.qty)
        if qty == 0:
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
        reconcile, self.returned = synced.reconcile or self.returned, False
        if self.unresolved:
            self._resolve(snapshot)
        self._persist()
        self._tell_risk()
        unfanned, self.unfanned = self.unfanned, []
        deferred, self.pending_reconcile = self.pending_reconcile, None
        if self.role.group is not None:
            known = {s: p.qty for s, p in positions.items()}
            if self.role.leader:
                # Where the leader stood before the fills still to fan out: the group learns
                # that, then those fills, so each is copied as it happened (S2.2).
                for _, symbol, qty, _ in unfanned:
                    known[symbol] = known.get(symbol, 0) - qty
            self.ctx.tell(
                addresses.group(self.role.group),
                MemberSynced(
                    account=self.id,
                    leader=self.role.leader,
                    positions={s: q for s, q in known.items() if q},
                    cause=synced.cause,
                    reconcile=reconcile,
                    start=synced.start,
                    reconciled=deferred is not None,
                ),
            )
            if self.role.leader:
                self._fan_out(unfanned, known)
        if deferred is not None:
            self._reconcile(deferred)
        offers, self.pending_offers = self.pending_offers, []
        for offer in offers:
            if isinstance(offer, RetryCopy):
                self._retry(offer)
            else:
                self._copy(offer)
        self._warn_unpriced()

    def _fan_out(self, fills: list[tuple[str, str, int, datetime]], before: dict[str, int]) -> None:
        """Fan out a leader's fills that waited for the snapshot, each from where the
        confirmed position places it (``before``: the position ahead of the first one)."""
        group = self.role.group
        if group is None:
            return
        for fill_id, symbol, qty, time in fills:
            was = before.get(symbol, 0)
            before[symbol] = was + qty
            filled = LeaderFilled(self.id, fill_id, symbol, was, was + qty, time)
            self.ctx.records.leader_fill(group, filled)
            self.ctx.tell(addresses.group(group), filled)

    # -- S3.5: answers that are unknown ----------------------------------------------------------

    def _state_changed(self, message: StateChanged) -> None:
        state = message.state
        self.connection_state = state
        unconfirmed = self.confirmed
        # Positions are the broker's word only from a snapshot received since the connection
        # last became connected (S3.5): trades made at the broker meanwhile are unknown until
        # then (a held flatten must not call the account flat on the old book, S5.3).
        self.synced = self.confirmed = False
        self.pending_reconcile = None  # this return (or the next) reconciles afresh
        connected = state is ConnectionState.CONNECTED
        self.returned = connected
        if self.unfanned:
            ids = ", ".join(fill_id for fill_id, _, _, _ in self.unfanned)
            self.unfanned = []
            self.ctx.records.activity(
                Level.INFO,
                Kind.SKIP,
                f"leader fills {ids} not fanned out: they came while this account's positions "
                f"were unknown and its connection is now {state.value}; the reconciliation on "
                "its return covers them",
                account=self.id,
            )
        if not connected:
            # Offers that waited for a snapshot now meet a paused follower (S2.4), and retries
            # are left to the reconciliation of its return; fan-outs a crash cut short still
            # wait for one (S2.9).
            offers = self.pending_offers
            self.pending_offers = [o for o in offers if isinstance(o, CopyOffer) and o.completion]
            for offer in offers:
                if isinstance(offer, CopyOffer) and not offer.completion:
                    self._copy(offer)
        self.ctx.tell(self.risk, message)
        if unconfirmed:
            self._tell_risk()
        if self.role.leader and self.role.group:
            self.ctx.tell(addresses.group(self.role.group), message)

    def _unknowns(self, message: object) -> None:
        """What the broker could not confirm: a snapshot's answer, a leader's, a fill it
        withdrew, a symbol it gives no prices for."""
        match message:
            case SnapshotUnknown():
                self._snapshot_unknown(message)
            case AwaitingLeader():
                self._awaiting_leader(message)
            case LeaderUnconfirmed(group=group):
                pending = self.pending_reconcile
                if pending is not None and pending.group == group:
                    self.pending_reconcile = None  # toward a leader no longer confirmed
            case FillCorrected():
                self._fill_corrected(message)
            case PricesUnavailable(symbol=symbol, reason=reason):
                if symbol not in self.unpriced:
                    self.unpriced[symbol] = reason
                    self._warn_unpriced()
            case PricesRestored(symbol=symbol):
                self._prices_restored(symbol)

    def _snapshot_unknown(self, unknown: SnapshotUnknown) -> None:
        """S3.5: after the first failure of a wait, one warning saying what waits and why."""
        if self.unknown_warned == unknown.since:
            return
        self.unknown_warned = unknown.since
        if self.role.group is None:
            waiting = "its book"
        elif self.role.leader:
            waiting = "the reconciliation of its followers" if unknown.reconcile else "its fan-out"
        else:
            waiting = "its reconciliation toward the leader" if unknown.reconcile else "its copies"
        self.ctx.records.activity(
            Level.WARNING,
            Kind.RECONCILIATION,
            f"positions of {self.id} unknown: the snapshot of connection {unknown.connection} "
            f"failed ({unknown.reason}); nothing is decided from it — {waiting} waits for the "
            f"broker's answer, asked again in {unknown.retry_in.total_seconds():g} s",
            account=self.id,
        )
        if self.role.leader and self.role.group is not None:
            self.ctx.tell(
                addresses.group(self.role.group),
                LeaderUnknown(
                    self.id, unknown.connection, unknown.since, unknown.reason, unknown.reconcile
                ),
            )

    def _awaiting_leader(self, waiting: AwaitingLeader) -> None:
        connected = self.connection_state is ConnectionState.CONNECTED
        if not connected or self.role != Role(waiting.group, False):
            return  # not reconciled now: its own return will be
        if self.leader_warned == waiting.since:
            return
        self.leader_warned = waiting.since
        self.ctx.records.activity(
            Level.WARNING,
            Kind.RECONCILIATION,
            f"reconciliation toward leader {waiting.leader} waits: its positions are unknown "
            f"(the snapshot of connection {waiting.connection} failed: {waiting.reason}); it "
            "runs once, when the broker answers",
            account=self.id,
        )

    def _fill_corrected(self, event: FillCorrected) -> None:
        """The broker withdrew or corrected a fill: the book is no longer the broker's. It is
        replaced by a fresh snapshot, never adjusted here, so the fill is never counted twice;
        a fill pushed again under its id is not applied."""
        if event.fill_id in self.corrected_fills:
            return
        self.corrected_fills.add(event.fill_id)
        self.seen_fills.add(event.fill_id)
        leader = self.role.leader and self.role.group is not None
        self.ctx.records.activity(
            Level.ERROR,
            Kind.RECONCILIATION,
            f"the broker corrected fill {event.fill_id} of {self.id} ({event.reason}): the "
            "engine's book no longer matches the broker's; it is reconciled from a fresh "
            "snapshot" + (", and its followers toward the corrected position" if leader else ""),
            account=self.id,
        )
        self.synced = self.confirmed = False
        self._tell_risk()
        if leader and self.role.group is not None:
            self.ctx.tell(addresses.group(self.role.group), LeaderCorrected(self.id, event.fill_id))
        # The fresh answer (while the connection is down, its return's does as well).
        self.ctx.tell(addresses.connection(self.connection), RefreshAccount(self.id))

    # -- S10.3: prices the broker does not give ----------------------------------------------------

    def _warn_unpriced(self) -> None:
        """One ``stale_prices`` warning per outage for each symbol held while it has none."""
        for symbol, reason in self.unpriced.items():
            if self.position(symbol) and symbol not in self.unpriced_warned:
                self.unpriced_warned.add(symbol)
                self.ctx.records.activity(
                    Level.WARNING,
                    Kind.STALE_PRICES,
                    f"no prices for {symbol} ({reason}): the risk guard cannot see this "
                    "account's P&L there",
                    account=self.id,
                )

    def _prices_restored(self, symbol: str) -> None:
        if self.unpriced.pop(symbol, None) is None:
            return
        if symbol in self.unpriced_warned:
            self.unpriced_warned.discard(symbol)
            self.ctx.records.activity(
                Level.INFO,
                Kind.STALE_PRICES,
                f"prices for {symbol} are back: the risk guard sees this account's P&L there again",
                account=self.id,
            )

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
        if self.role.leader and self.role.group is not None:
            if self.synced:  # the fan-out first: it is the hot path
                filled = LeaderFilled(self.id, fill.fill_id, symbol, before, after, fill.time)
                self.ctx.records.leader_fill(self.role.group, filled)
                self.ctx.tell(addresses.group(self.role.group), filled)
            else:
                # On an unknown position "before" and "after" mean nothing (S3.5): fanned
                # out once the snapshot says where the leader stood.
                self.unfanned.append((fill.fill_id, symbol, fill.qty, fill.time))
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
        if self.unpriced:
            self._warn_unpriced()

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
