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

from datetime import datetime
from decimal import Decimal

import structlog

from actors import addresses, reconciliation, sync
from actors.account_confirm import Confirmation
from actors.account_orders import OrderEvents
from actors.account_view import AccountSettings, AccountView
from actors.book import Book, Working
from actors.drift import Drift
from actors.failure import InjectedFailure, fail
from actors.late_copies import HeldFill
from actors.leader_orders import LeaderOrders
from actors.messages.account import (
    ApplyReset,
    AwaitingLeader,
    CopyOffer,
    DriftDue,
    DriftWatch,
    FlattenActive,
    GateDecision,
    LeaderUnconfirmed,
    MirrorGraceEnded,
    MirrorOffer,
    MirrorRestore,
    OrderNotSent,
    ReconcileOrder,
    ReduceExcess,
    RetryCopy,
    SendBook,
    SendPositions,
    SetRole,
    SetRules,
    SnapshotUnknown,
    StateChanged,
    Synced,
    SyncOrder,
)
from actors.messages.group import (
    LeaderOrdersChanged,
    MemberSynced,
)
from actors.messages.risk import (
    AccountChanged,
    GateOrder,
    OrderIntent,
    ResetApplied,
)
from actors.mirrors import Mirrors
from actors.missed_copies import MissedCopies, MissedCopiesDue
from actors.recent import RecentIds
from actors.resolution import Unresolved
from actors.stale_prices import PricesDue, StalePrices
from actors.unknowns import Unknowns
from brokers.base import (
    Fill,
    FillCorrected,
    ModifyRejected,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderUpdated,
    PricesRestored,
    PricesUnavailable,
)
from brokers.instruments import ContractTable
from engine.domain.activity import Kind, Level
from engine.domain.connections import ConnectionState
from engine.domain.copy_rule import closing_part, copy_quantity, target
from engine.domain.copying import Role
from engine.domain.ledger import UnresolvedOrder
from engine.domain.max_contracts import excess_reduction
from engine.domain.mirroring import within_target
from engine.domain.order_ids import OrderKind, client_order_id
from engine.domain.state import AccountState
from engine.host.base import ActorContext
from engine.host.market import PriceBack

log = structlog.get_logger("actors.account")


class AccountActor(Confirmation, OrderEvents):
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
        self.book = Book(contracts, settings.balance, state, settings.rules)
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
        # S10.3: market orders the broker leaves unanswered, and held symbols without prices.
        watch = settings.watch
        self.missed = MissedCopies(ctx, self.id, self.book, watch.copy_fill_timeout, unresolved)
        self.prices = StalePrices(
            ctx,
            self.id,
            self.connection,
            self.book,
            watch.stale_prices_after,
            connected=connection_state is ConnectionState.CONNECTED,
        )
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
        # Mirror work that waits for the broker's confirmed positions (S3.5).
        self.pending_mirrors: list[MirrorOffer | MirrorRestore | MirrorGraceEnded] = []
        # S10.1: its drift from where its leader puts it, checked after every message.
        self.drift = Drift(self, settings.watch, state.drift if state is not None else {})

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
                if not self._accepted(message):
                    return  # its own copy, now at the broker: nothing the drift reads moved
            case OrderRejected():
                self._rejected(message)
            case OrderDone():
                self._done(message)
            case GateDecision():
                self._gate_decision(message)
            case OrderUpdated() | ModifyRejected():
                self._changed(message)
            case MirrorOffer() | MirrorRestore() | MirrorGraceEnded():
                self._mirror(message)
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
                | PriceBack()
                | PricesDue()
                | MissedCopiesDue()
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
            case SetRole() | SetRules() | ReduceExcess():
                self._set(message)
            case DriftWatch() | DriftDue():
                self.drift.receive(message)
            case _:
                log.warning("unknown message", account=self.id, message=repr(message))
        if not self.role.leader:
            self.drift.after(message)

    # -- figures -------------------------------------------------------------------------------

    def last_price(self, symbol: str) -> Decimal | None:
        price = self.ctx.market.last(symbol)
        return price if price is not None else self.book.last_fill.get(symbol)

    def view(self) -> AccountView:
        """Published after every message the actor handles (a copy's too): nothing here is
        computed that the book does not hold ready while no order works."""
        book = self.book
        positions = book.shown()
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
            commissions=book.commissions,
            missed_copies=self.missed.unanswered(),
            stale_prices=self.prices.blind(),
            drift=self.drift.shown,
        )

    def figures(self) -> AccountChanged:
        return self.book.figures(confirmed=self.confirmed)

    def _tell_risk(self) -> None:
        self.ctx.tell(self.risk, self.figures())

    def _persist(self) -> None:
        self.ctx.storage.save_account(self.id, self.book.state(self.drift.shown))

    def save(self) -> None:
        self._persist()

    def _tell_group_positions(self) -> None:
        # Only positions a snapshot confirmed since the connection last became connected: a
        # leader that is down, or whose answer is still unknown, has none to give (a follower
        # must never be reconciled toward a stale leader, S3.1, S3.5); its snapshot, when it
        # comes, tells the group.
        connected = self.connection_state is ConnectionState.CONNECTED
        if connected and self.synced and self.role.leader and self.role.group is not None:
            # A group rebuilt after a crash learns the working orders it mirrors too (S8).
            orders = tuple(self.leader_orders.orders.values())
            self.ctx.tell(addresses.group(self.role.group), LeaderOrdersChanged(orders, True))
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
        if offer.mirrored and offer.completion:
            # S2.9 and S8.4: held to the target, as a mirror of its order may have filled it.
            qty = within_target(qty, current, target(offer.after, offer.ratio, offer.max_qty))
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

    def send_drift(self, cause: str, symbol: str, qty: int) -> None:
        self._request(OrderKind.DRIFT, cause, symbol, qty, attempt=1)  # S10.2

    def _mirror(self, message: MirrorOffer | MirrorRestore | MirrorGraceEnded) -> None:
        """S8 on confirmed positions only (S3.5): while they are unknown the mirror work waits
        for the snapshot; a paused follower mirrors nothing (its return restores its closing
        mirrors, S8.6)."""
        if self.connection_state is not ConnectionState.CONNECTED:
            return
        if not self.synced:
            self.pending_mirrors.append(message)
            return
        self.mirrors.receive(message)

    def _request(self, kind: OrderKind, cause: str, symbol: str, qty: int, attempt: int) -> None:
        coid = client_order_id(kind, cause, self.id, symbol, attempt)
        working = self.book.working
        if coid in working:
            return
        working[coid] = Working(symbol, qty, coid, None, kind, cause, attempt)
        self.missed.sent(coid, kind)  # S10.3
        if self.mirrors.tracking:
            self.mirrors.position_changed(symbol)  # S8.3: P moved by this order
        resting, others = (0, 0), None
        if self.book.rules.max_contracts is not None:  # S9.2
            resting, others = self.book.exposure(symbol, coid)
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
                    in_flight=self.book.in_flight(symbol, coid),
                    resting=resting,
                    others=others,
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
        self._request(retry.kind, retry.cause, retry.symbol, qty, retry.attempt)

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

    # -- its role and its rules (S9) ----------------------------------------------------------

    def _set(self, message: SetRole | SetRules | ReduceExcess) -> None:
        if isinstance(message, SetRole):
            role = message.role
            if role.group != self.role.group:
                self._drop_offers(self.role.group, "this account no longer follows it")
            self.role = role
            if role.group is not None and not role.leader and self.synced:
                # S8.3: the mirrors it finds at the broker are held to its position now,
                # whether or not its leader is known (their restoring waits for it, S8.6).
                self.mirrors.hold_found()
            return
        if isinstance(message, SetRules):
            self.book.rules = message.rules  # S9.1: charged on fills from now on
            return
        # S9.2: sized here, on P with every reduction asked before it, so the reductions of a
        # trade filled in parts never overlap; closing only, through the gate like any order.
        cap = self.book.rules.max_contracts
        if cap is None:
            return
        weights = self.book.rules.contract_weights
        qty = excess_reduction(message.symbol, self.book.projection(), cap, weights)
        if qty:
            self._request(OrderKind.REDUCE, message.cause, message.symbol, qty, attempt=1)

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


__all__ = ["AccountActor", "AccountSettings", "AccountView"]
