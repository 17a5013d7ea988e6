"""AccountActor: one broker trading account.

Owns the account's book (``actors.book``: positions and average prices, the engine's working
orders, realized and unrealized P&L). Applies its fills and ticks and tells its RiskActor of every
change. A leader's account tells its group of each fill (S2.1); a follower's account turns the
group's copy offers into orders by the S2.2 rule, computed here against its own position, and
sends them through its risk gate.

Unknown is not flat (S3.5): positions count as the broker's word only once a snapshot received
since the connection last became connected confirmed them. Until then nothing is decided from
them: a reconciliation and the copy offers wait for the snapshot, and a leader's fills are
fanned out once their place in the confirmed position is known. What a snapshot settles of the
orders sent without an answer is ``actors.resolution``; what the broker could not confirm is
said once, by ``actors.unknowns``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from actors import addresses, reconciliation, sync
from actors.book import Book, Prices, Working
from actors.failure import InjectedFailure, fail
from actors.late_copies import HeldFill, split_waited, waited_too_long
from actors.leader_orders import LeaderOrders
from actors.messages.account import (
    ApplyReset,
    AwaitingLeader,
    CopyOffer,
    FlattenActive,
    GateDecision,
    LeaderUnconfirmed,
    MirrorGraceEnded,
    MirrorOffer,
    MirrorRestore,
    OrderNotSent,
    ReconcileOrder,
    RetryCopy,
    SendBook,
    SendPositions,
    SetRole,
    SnapshotUnknown,
    StateChanged,
    Synced,
    SyncOrder,
)
from actors.messages.connection import CancelWorking, RefreshAccount
from actors.messages.group import (
    LeaderCorrected,
    LeaderFilled,
    LeaderOrdersChanged,
    LeaderUnknown,
    MemberSynced,
)
from actors.messages.risk import (
    AccountChanged,
    GateOrder,
    Holding,
    LiquidationOutcome,
    OrderIntent,
    ResetApplied,
)
from actors.mirrors import Mirrors
from actors.recent import RecentIds
from actors.resolution import Unresolved, unanswered
from actors.unknowns import Unknowns
from brokers.base import (
    AccountSnapshot,
    Fill,
    FillCorrected,
    ModifyRejected,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderType,
    OrderUpdated,
    PricesRestored,
    PricesUnavailable,
)
from brokers.instruments import ContractTable
from engine.domain.activity import Kind, Level
from engine.domain.backoff import backoff
from engine.domain.connections import ConnectionState
from engine.domain.copy_rule import closing_part, copy_quantity
from engine.domain.copying import LeaderFill, Role
from engine.domain.ledger import UnresolvedOrder
from engine.domain.mirroring import LeaderOrder
from engine.domain.order_ids import OrderKind, client_order_id, kind_of, label, leader_fill_of
from engine.domain.positions import ZERO
from engine.domain.state import AccountState
from engine.domain.working import WorkingLine
from engine.host.base import ActorContext

log = structlog.get_logger("actors.account")


@dataclass(frozen=True, slots=True)
class AccountSettings:
    id: str
    connection: str
    balance: Decimal
    max_copy_age: timedelta = timedelta(seconds=10)
    mirror_grace: timedelta = timedelta(seconds=2)  # S8.4


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
    # Positions confirmed by a snapshot since the connection last became connected (S3.5).
    positions_confirmed: bool = True
    # The open positions with their pricing: ``unrealized`` again at later prices (``priced``).
    holdings: Mapping[str, Holding] = field(default_factory=dict)
    # What a sync's preview is computed on (S6.2): the positions once the engine's orders
    # still working have filled, and whether a flatten is in flight.
    projected: Mapping[str, int] = field(default_factory=dict)
    flattening: bool = False
    # Each order working at the broker, with the leader order a mirror mirrors (S8).
    orders: tuple[WorkingLine, ...] = ()

    def priced(self, last: Prices) -> AccountView:
        """This view with its unrealized P&L at the prices ``last`` gives (the market's now), as
        the account prices its book: the market's price, else the account's last fill's."""
        total = ZERO
        for symbol, holding in self.holdings.items():
            price = last(symbol)
            if price is None:
                price = holding.last_fill
            if price is not None:
                total += (price - holding.reference) * holding.qty * holding.point_value
        return replace(self, unrealized=total)

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
        self.book = Book(contracts, settings.balance, state)
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
        # heard, and copies that never reached the broker (S2.6).
        self.unresolved = Unresolved(unresolved)
        # Copy offers and closing-copy retries waiting for the snapshot, in the order they
        # came: decided on the broker's confirmed position (S3.5), fan-outs a crash cut short
        # included (S2.9).
        self.pending_offers: list[CopyOffer | RetryCopy] = []
        # A leader's fills that came while its positions were unknown: fanned out once the
        # snapshot places them (fill id, symbol, quantity, time, price).
        self.unfanned: list[HeldFill] = []
        self.corrected_fills = RecentIds()  # fills the broker withdrew (never counted)
        self.unknowns = Unknowns(self.id, ctx.storage)
        self.risk = addresses.risk(self.id)
        if state is not None:
            # The risk actor guards the remembered book at once, even before (or without) the
            # broker's snapshot: a connection down at a restart must not leave it unguarded.
            self.ctx.tell(self.risk, self.figures())
        # Fills applied, by id, so one reported again is not counted twice: of this trading
        # day and the one before (``actors/recent.py``), turned at each reset.
        self.seen_fills = RecentIds()
        # Orders mode (S8): a leader's working orders as its group mirrors them, and a
        # follower's mirrors of its leader's.
        self.leader_orders = LeaderOrders()
        self.mirrors = Mirrors(self, settings.mirror_grace)

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
            case OrderUpdated() | ModifyRejected():
                self._changed(message)
            case MirrorOffer() | MirrorRestore() | MirrorGraceEnded():
                self.mirrors.receive(message)
            case OrderNotSent():
                self._not_sent(message)
            case ReconcileOrder():
                self._reconcile(message)
            case SyncOrder():
                self._sync(message)
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
                if role.group != self.role.group:
                    self._drop_offers(self.role.group, "this account no longer follows it")
                self.role = role
            case _:
                log.warning("unknown message", account=self.id, message=repr(message))

    # -- figures -------------------------------------------------------------------------------

    def last_price(self, symbol: str) -> Decimal | None:
        price = self.ctx.market.last(symbol)
        return price if price is not None else self.book.last_fill.get(symbol)

    def view(self) -> AccountView:
        """Published after every message the actor handles (a copy's too): nothing here is
        computed that the book does not hold ready while no order works."""
        book = self.book
        positions = {s: p.qty for s, p in sorted(book.positions.items()) if p.qty}
        return AccountView(
            id=self.id,
            connection=self.connection,
            connection_state=self.connection_state.value,
            positions=positions,
            balance=book.balance,
            realized_daily=book.realized_daily,
            realized_weekly=book.realized_weekly,
            unrealized=book.unrealized(self.last_price),
            role=self.role,
            working=len(book.working),
            positions_confirmed=self.synced,
            holdings=book.holdings(),
            projected=book.projection() if book.working else positions,
            flattening=self.flattening or book.liquidating(),
            orders=self.mirrors.lines() if book.working else (),
        )

    def figures(self) -> AccountChanged:
        return self.book.figures(confirmed=self.confirmed)

    def _tell_risk(self) -> None:
        self.ctx.tell(self.risk, self.figures())

    def _persist(self) -> None:
        self.ctx.storage.save_account(self.id, self.book.state())

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
                    positions=self.book.held(),
                    cause="restart",
                    reconcile=False,
                ),
            )

    # -- S5.8: resets ------------------------------------------------------------------------------

    def _reset(self, reset: ApplyReset) -> None:
        """Mark to market and roll the P&L figures (``Book.reset``); the risk actor then
        applies the reset to its locks."""
        self.seen_fills.turn()
        self.corrected_fills.turn()
        self.book.reset(reset.kind, self.last_price)
        self._persist()
        self.ctx.tell(self.risk, ResetApplied(reset.kind, self.figures()))

    # -- S2: copying -----------------------------------------------------------------------------

    def _copy(self, offer: CopyOffer) -> None:
        connected = self.connection_state is ConnectionState.CONNECTED
        if connected and not self.synced:
            # Decided on the broker's confirmed position, never on an unknown one (S3.5; a
            # completion, S2.9, likewise): the opening part then ages as any copy does.
            self.pending_offers.append(offer)
            return
        storage = self.ctx.storage
        if not storage.decide_copy(offer.cause, self.id):
            return  # decided already: a completion of a fan-out that was not cut short here
        if not connected:
            storage.activity(
                Level.INFO,
                Kind.SKIP,
                f"copy of leader fill {offer.fill_id} skipped: connection {self.connection} "
                f"is {self.connection_state.value}",
                account=self.id,
                fill=offer.cause,
            )
            storage.copy_settled(offer.cause, self.id)
            return
        if offer.mirrored and self.mirrors.leader_fill(offer):
            storage.copy_settled(offer.cause, self.id)  # its mirror's fills are the copy (S8.4)
            return
        self.copy_at_market(offer)

    def copy_at_market(self, offer: CopyOffer) -> None:
        """S2.2: the leader fill as one market order (fills mode, or orders mode for a fill of
        a leader order that has no mirror here, S8.4)."""
        storage = self.ctx.storage
        symbol = offer.symbol
        current = self.book.projected(symbol)
        qty = copy_quantity(offer.before, offer.after, current, offer.ratio, offer.max_qty)
        if qty == 0:
            storage.copy_settled(offer.cause, self.id)
            return
        closing = closing_part(current, qty)
        age = self.ctx.now() - offer.fill_time
        if qty != closing and age > self.max_copy_age:
            storage.activity(
                Level.INFO,
                Kind.SKIP,
                f"opening copy of leader fill {offer.fill_id} skipped: stale "
                f"({age.total_seconds():.1f} s old, limit {self.max_copy_age.total_seconds():g} s)",
                account=self.id,
                fill=offer.cause,
            )
            qty = closing
            if qty == 0:
                storage.copy_settled(offer.cause, self.id)
                return
        attempt = self.unresolved.next_attempt(offer.cause)
        self._request(OrderKind.COPY, offer.cause, symbol, qty, attempt=attempt)

    def send_owed(self, cause: str, symbol: str, qty: int, fill_time: datetime) -> None:
        """S8.4: what a mirror did not fill of a leader fill's share goes out at market once
        its remainder is cancelled; its opening part only within ``max_copy_age``."""
        closing = closing_part(self.book.projected(symbol), qty)
        age = self.ctx.now() - fill_time
        if qty != closing and age > self.max_copy_age:
            self.ctx.storage.activity(
                Level.INFO,
                Kind.SKIP,
                f"opening part of {qty:+d} {symbol} still owed after the mirror's grace skipped:"
                f" stale ({age.total_seconds():.1f} s old, limit "
                f"{self.max_copy_age.total_seconds():g} s)",
                account=self.id,
                fill=cause,
            )
            qty = closing
        if qty:
            attempt = self.unresolved.next_attempt(cause)
            self._request(OrderKind.COPY, cause, symbol, qty, attempt=attempt)

    def send_reconcile(self, cause: str, symbol: str, qty: int) -> None:
        self._request(OrderKind.RECONCILE, cause, symbol, qty, attempt=1)

    def _request(self, kind: OrderKind, cause: str, symbol: str, qty: int, attempt: int) -> None:
        coid = client_order_id(kind, cause, self.id, symbol, attempt)
        working = self.book.working
        if coid in working:
            return
        working[coid] = Working(symbol, qty, coid, None, kind, cause, attempt)
        self.ctx.tell(
            self.risk,
            GateOrder(
                OrderIntent(
                    client_order_id=coid,
                    kind=kind,
                    cause=cause,
                    symbol=symbol,
                    qty=qty,
                    position=self.book.position(symbol),
                    projected=self.book.projected(symbol) - qty,
                    attempt=attempt,
                )
            ),
        )

    def _gate_decision(self, decision: GateDecision) -> None:
        order = self.book.working.get(decision.client_order_id)
        if order is None:
            return
        if order.kind is OrderKind.MIRROR:
            self.mirrors.gate_clipped(decision.client_order_id, decision.qty)
        if decision.qty == 0:
            del self.book.working[decision.client_order_id]
            if order.kind is OrderKind.COPY:
                self.ctx.storage.copy_settled(order.cause, self.id)
        else:
            order.qty = decision.qty

    def _retry(self, retry: RetryCopy) -> None:
        if self.connection_state is not ConnectionState.CONNECTED:
            return
        if not self.synced:
            self.pending_offers.append(retry)  # sized on the confirmed position (S3.5)
            return
        current = self.book.projected(retry.symbol)
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
        planned = reconciliation.plan(
            self.book, order, liquidating=self.flattening or self.book.liquidating()
        )
        for symbol, qty in planned.orders.items():
            self._request(OrderKind.RECONCILE, order.cause, symbol, qty, attempt=1)
        self.ctx.storage.reconciliation(
            self.id, self.connection, order.cause, planned.before, planned.target, planned.orders
        )
        described = ", ".join(f"{s} {q:+d}" for s, q in planned.orders.items()) or "nothing sent"
        self.ctx.storage.activity(
            Level.INFO,
            Kind.RECONCILIATION,
            f"flatten-only reconciliation toward the leader ({order.cause}): {described}",
            account=self.id,
        )
        if order.mirror is not None:
            self.mirrors.restore(order.mirror)  # S8.7: after the reconciliation

    # -- S6.2: the user's sync -------------------------------------------------------------------

    def _sync(self, order: SyncOrder) -> None:
        """Toward ``t(L)``, opening if needed, on confirmed positions only (S3.5); each order
        passes the gate."""
        state = sync.follower_state(
            self.book, self.connection, self.connection_state.value, self.synced, self.flattening
        )
        planned = sync.plan(state, order)
        sync.record(self.ctx.storage, self.id, self.connection, order, planned)
        for symbol, qty in planned.orders.items():
            self._request(OrderKind.SYNC, order.cause, symbol, qty, attempt=1)

    def _synced(self, synced: Synced) -> None:
        snapshot = synced.snapshot
        if not isinstance(snapshot, AccountSnapshot):
            return
        kept = unanswered(self.id, self.book.working, snapshot, self.ctx.storage)
        self.book.confirm(snapshot, kept)
        self.mirrors.learn(snapshot)
        self.synced = True
        self.confirmed = True
        reconcile, self.returned = synced.reconcile or self.returned, False
        if self.unresolved.orders:
            self.unresolved.resolve(self.id, snapshot, self.ctx.storage)
        self._persist()
        self._tell_risk()
        unfanned, self.unfanned = self.unfanned, []
        deferred, self.pending_reconcile = self.pending_reconcile, None
        group = self.role.group
        if group is not None and self.role.leader:
            # The group learns the leader's working orders before its positions, so the
            # followers it reconciles mirror what works now (S8.7).
            orders = self.leader_orders.confirm(snapshot)
            self.ctx.tell(addresses.group(group), LeaderOrdersChanged(orders, complete=True))
        if group is not None:
            known = self.book.held()
            cause, start = synced.cause, synced.start
            if self.role.leader:
                absorbed, unfanned = split_waited(unfanned, self.ctx.now(), self.max_copy_age)
                if absorbed:
                    reconcile, start = True, False
                    self._waited("leader fills", len(absorbed), "its followers are")
                # Where the leader stood before the fills still to fan out: the group learns
                # that, then those fills, so each is copied as it happened (S2.2).
                for _, symbol, qty, _, _ in unfanned:
                    known[symbol] = known.get(symbol, 0) - qty
            elif waited_too_long(self.pending_offers, group, self.ctx.now(), self.max_copy_age):
                held = sum(
                    isinstance(o, CopyOffer) and o.group == group for o in self.pending_offers
                )
                self._drop_offers(group, "it waited longer than max_copy_age (S2.9)")
                self._waited("copies of leader fills", held, "the account is")
                if deferred is not None and deferred.group == group:
                    deferred = None  # the reconciliation asked for here supersedes it
                reconcile, start, cause = True, False, f"{synced.cause}+waited"
            self.ctx.tell(
                addresses.group(group),
                MemberSynced(
                    account=self.id,
                    leader=self.role.leader,
                    positions={s: q for s, q in known.items() if q},
                    cause=cause,
                    reconcile=reconcile,
                    start=start,
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
        self.unknowns.warn_unpriced(self.book.position)

    def _fan_out(self, fills: list[HeldFill], before: dict[str, int]) -> None:
        """Fan out a leader's fills that waited for the snapshot, each from where the
        confirmed position places it (``before``: the position ahead of the first one)."""
        group = self.role.group
        if group is None:
            return
        for fill_id, symbol, qty, time, price in fills:
            was = before.get(symbol, 0)
            before[symbol] = was + qty
            filled = LeaderFill(self.id, fill_id, symbol, was, was + qty, time, price)
            self.ctx.storage.leader_fill(group, filled)
            self.ctx.tell(addresses.group(group), LeaderFilled(filled))

    def _waited(self, what: str, count: int, who: str) -> None:
        """S2.9 / S3.5: what waited for a confirmed position past max_copy_age is left to a
        flatten-only reconciliation toward the leader's position (``actors/late_copies.py``)."""
        self.ctx.storage.activity(
            Level.WARNING,
            Kind.RECONCILIATION,
            f"{count} {what} waited longer than {self.max_copy_age.total_seconds():g} s for "
            f"confirmed positions: not copied one by one; {who} reconciled flatten-only toward "
            "the leader's position instead",
            account=self.id,
        )

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
            ids = ", ".join(fill_id for fill_id, *_ in self.unfanned)
            self.unfanned = []
            self.ctx.storage.activity(
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
                connected = self.connection_state is ConnectionState.CONNECTED
                # Not reconciled now (paused, or no longer its follower): its own return will be.
                if connected and self.role == Role(message.group, False):
                    self.unknowns.awaiting_leader(message)
            case LeaderUnconfirmed(group=group):
                pending = self.pending_reconcile
                if pending is not None and pending.group == group:
                    self.pending_reconcile = None  # toward a leader no longer confirmed
                self._drop_offers(group, "the leader's connection changed state meanwhile")
            case FillCorrected():
                self._fill_corrected(message)
            case PricesUnavailable(symbol=symbol, reason=reason):
                self.unknowns.prices_unavailable(symbol, reason, self.book.position)
            case PricesRestored(symbol=symbol):
                self.unknowns.prices_restored(symbol)

    def _drop_offers(self, group: str | None, why: str) -> None:
        """Copy offers of ``group`` still waiting for this account's snapshot are not decided:
        the leader went through an outage (S2.1: its trades around it are left to the
        reconciliation of its return) or the membership ended. Each is settled, so a restart
        does not offer it again (S2.9)."""
        if group is None:
            return
        kept: list[CopyOffer | RetryCopy] = []
        storage = self.ctx.storage
        for offer in self.pending_offers:
            if not isinstance(offer, CopyOffer) or offer.group != group:
                kept.append(offer)
                continue
            if storage.decide_copy(offer.cause, self.id):
                storage.activity(
                    Level.INFO,
                    Kind.SKIP,
                    f"copy of leader fill {offer.fill_id} not decided: it waited for this "
                    f"account's positions, and {why} (group {group})",
                    account=self.id,
                    fill=offer.cause,
                )
                storage.copy_settled(offer.cause, self.id)
        self.pending_offers = kept

    def _snapshot_unknown(self, unknown: SnapshotUnknown) -> None:
        """S3.5: one warning per wait; a leader's group learns why its fan-out waits."""
        first = self.unknowns.snapshot_unknown(unknown, self.role)
        if first and self.role.leader and self.role.group is not None:
            self.ctx.tell(
                addresses.group(self.role.group),
                LeaderUnknown(
                    self.id, unknown.connection, unknown.since, unknown.reason, unknown.reconcile
                ),
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
        self.ctx.storage.activity(
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

    # -- broker events -------------------------------------------------------------------------

    def _fill(self, fill: Fill) -> None:
        if fill.fill_id in self.seen_fills:
            return
        self.seen_fills.add(fill.fill_id)
        symbol = fill.symbol
        order = self.book.working.get(fill.client_order_id or fill.broker_order_id)
        cause = "" if order is None else order.cause  # the leader fill a copy copies
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
        if self.mirrors.by_leader:
            self.mirrors.position_changed(symbol)  # S8.3: closing mirrors within the position
        if self.unknowns.unpriced:
            self.unknowns.warn_unpriced(self.book.position)

    def _cancel_leftovers(self, symbol: str) -> None:
        leftovers = self.book.leftovers(symbol)
        if leftovers:
            self.ctx.tell(
                addresses.connection(self.connection),
                CancelWorking(self.id, symbol, leftovers),
            )

    def _accepted(self, event: OrderAccepted) -> None:
        key = event.client_order_id or event.broker_order_id
        order = self.book.working.get(key)
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
        if event.order_type is OrderType.LIQUIDATE:
            self._tell_risk()
        if self.role.leader and self.role.group is not None:
            self._tell_orders(self.leader_orders.accepted(event))

    def _tell_orders(self, orders: tuple[LeaderOrder, ...]) -> None:
        """S8.2: the leader's working orders that changed, to its group."""
        if orders and self.role.group is not None:
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
        retry = kind is OrderKind.COPY and closing != 0
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
                RetryCopy(order.cause, order.symbol, closing, order.attempt + 1),
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


_FILL_KINDS = {
    OrderKind.COPY: Kind.COPY,
    OrderKind.RECONCILE: Kind.RECONCILIATION,
    OrderKind.LIQUIDATE: Kind.FLATTEN,
    OrderKind.SYNC: Kind.RECONCILIATION,
    OrderKind.MIRROR: Kind.COPY,
}
