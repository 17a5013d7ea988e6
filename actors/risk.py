"""RiskActor: the account's risk status, its gate, and its flatten (S5, S6).

Owns the account's status in the ``OK → LIQUIDATE_ONLY → LOCKED`` state machine (its table is
``engine.domain.risk_status``), the lock reason, and the one gate every order the engine sends
for the account passes through. Orders leave for the broker from here, in the same FIFO as every
status change, so no order decided after a breach can reach the broker as an opening order.
Runs the flatten (``actors.flatten`` decides its steps): cancel working orders, liquidate every
open contract, retry on failure, and report flat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

import structlog

from actors import addresses
from actors.failure import InjectedFailure, fail
from actors.flatten import FlattenRun, Purpose, Step
from actors.messages.account import FlattenActive, GateDecision, StateChanged
from actors.messages.connection import CancelWorking, Placement, PlaceOrders, SetBands
from actors.messages.group import DisableMember, EnableMember
from actors.messages.risk import (
    AccountChanged,
    BlackoutEdge,
    Evaluate,
    Flatten,
    GateOrder,
    LiquidationOutcome,
    Lock,
    OrderIntent,
    RepublishBands,
    ResetApplied,
    RetryFlatten,
    SessionClose,
    SetBlackouts,
    SetLimits,
    SetMembership,
    SupervisorHold,
    Unlock,
)
from actors.risk_prop import PropRules
from brokers.base import OrderRequest
from engine.domain.activity import Kind, Level
from engine.domain.connections import ConnectionState
from engine.domain.gate import gate
from engine.domain.order_ids import label, leader_fill_of
from engine.domain.risk_profile import RiskRules, RiskValue
from engine.domain.risk_rules import (
    DAILY_TRIGGERS,
    DESCRIPTIONS,
    LIMIT_NAMES,
    ZERO,
    Figures,
    Trigger,
    breach_prices,
    breached,
    figures,
)
from engine.domain.risk_status import (
    REASON_RANK,
    TRANSITIONS,
    LockReason,
    RiskEvent,
    RiskStatus,
    escalated,
    reason_for,
)
from engine.domain.sessions import Blackout
from engine.domain.state import FlattenRecord, PropState, RiskState
from engine.host.base import ActorContext

log = structlog.get_logger("actors.risk")

# The keys whose setting re-arms a trigger switched off by an unlock (S5.7, S9.3).
TRIGGER_NAMES = frozenset({*LIMIT_NAMES, Trigger.MAX_LOSS.value})
CUT_KEPT = 1_000  # refused or clipped orders remembered (a few seconds of a busy account)


@dataclass(frozen=True, slots=True)
class RiskSettings:
    account: str
    connection: str
    balance: Decimal = Decimal(0)
    status: RiskStatus = RiskStatus.OK
    lock_reason: LockReason = LockReason.NONE
    # The account's effective keys (S5.2 limits and S9 rules: its profile's overridden by
    # its own, S9.7) and the engine-wide blackout intervals (S9.5).
    limits: Mapping[str, RiskValue] = field(default_factory=dict)
    high_water: Decimal | None = None
    blackouts: tuple[Blackout, ...] = ()


@dataclass(frozen=True, slots=True)
class RiskView:
    account: str
    status: RiskStatus
    lock_reason: LockReason
    flattening: bool
    group: str | None
    limits: Mapping[str, RiskValue]  # every effective key (S5.2, S9)
    high_water: Decimal
    triggers_off: tuple[str, ...]
    supervisor_hold: bool = False
    # S9, shown wherever the account's figures are: the max-loss threshold (None without
    # max_loss; the distance to it is the account's equity, priced when shown, less it);
    threshold: Decimal | None = None
    start_balance: Decimal | None = None
    # the weighted contracts held and the cap (S9.2);
    contracts_in_use: Decimal = Decimal(0)
    max_contracts: Decimal | None = None
    # the next session close (S9.4), the blackout running or next to come (S9.5) and whether
    # it runs now, the best day's share of the profit (S9.6).
    next_session_close: datetime | None = None
    blackout: Blackout | None = None
    blackout_active: bool = False
    best_day_share: Decimal | None = None


class RiskActor(PropRules):
    def __init__(
        self,
        ctx: ActorContext,
        settings: RiskSettings,
        group: str | None,
        state: RiskState | None = None,
    ) -> None:
        self.ctx = ctx
        self.account = settings.account
        self.connection = addresses.connection(settings.connection)
        self.status = settings.status
        self.lock_reason = settings.lock_reason
        self.values = dict(settings.limits)  # every effective key (S5.2, S9)
        self.rules = RiskRules.of(self.values)
        self.limits: dict[str, Decimal] = dict(self.rules.limits)  # the five of S5.2
        self.blackouts = tuple(settings.blackouts)
        self.prop = PropState()
        self._sent: dict[str, int] = {}  # S9.2: passed by the gate since the last book, by symbol
        self._projection: Mapping[str, int] | None = None  # the last book's P, once confirmed
        self._close_armed: datetime | None = None
        self._edge_armed: datetime | None = None
        self._started = False  # the rules' start-up checks wait for a confirmed book
        self.high_water = (
            settings.high_water if settings.high_water is not None else settings.balance
        )
        self.book = AccountChanged({}, Decimal(0), Decimal(0), settings.balance)
        self.off: set[Trigger] = set()  # switched off by a manual unlock until their reset
        self.lock_triggers: set[Trigger] = set()  # what caused the current lock
        self.bands: Mapping[str, tuple[Decimal | None, Decimal | None]] = {}
        # What the bands were last made of (``_publish_bands``), and the bands that stand.
        self._banded: tuple[object, object, object, tuple[object, ...]] | None = None
        self.passed = 0  # orders passed by the gate since the account's last book
        # What the gate let through of the orders it refused (0) or clipped, by client order
        # id (the newest CUT_KEPT): an order sized while one of them was in flight at its full
        # size is judged on what actually went.
        self.cut: dict[str, int] = {}
        self.group = group
        self.connected = True
        self.positions: dict[str, int] = {}
        self.liquidating: dict[str, str] = {}
        self.flatten: FlattenRun | None = None
        self._flatten_numbers = 0
        self.supervisor_hold = False
        self._version = 0 if state is None else state.version
        if state is not None:
            self._restore(state)
        if self.flatten is not None:
            # The rebuilt account must know too: its reconciliations leave to the flatten the
            # symbols it closes (S3.2), as before the restart.
            self.ctx.tell(addresses.account(self.account), FlattenActive(True))
        self._saved = self._durable()
        self._arm_close()
        self._arm_edge()

    # -- durable state (S7.2) --------------------------------------------------------------------

    def _restore(self, state: RiskState) -> None:
        """Rebuild from the store: status, reason, high water, switched-off triggers, and a
        flatten in flight (its liquidations are recognised again from the broker's working
        orders when the account's book arrives, never re-sent blindly)."""
        self.status = RiskStatus(state.status)
        self.lock_reason = LockReason(state.lock_reason)
        self.high_water = state.high_water
        self.off = {Trigger(t) for t in state.triggers_off}
        self.lock_triggers = {Trigger(t) for t in state.lock_triggers}
        self._flatten_numbers = state.flattens
        self.supervisor_hold = state.supervisor_hold
        self.prop = state.prop
        if state.flatten is not None:
            self.flatten = FlattenRun.restore(state.flatten)
            if self.flatten.backing_off:
                # Backing off when it stopped: the timer may be gone with the old process, so
                # set one again (a timer that survived an in-place restart fires first; the
                # later one then finds nothing to do).
                self._schedule_retry(self.flatten)
        elif self.status is RiskStatus.LIQUIDATE_ONLY and not self.supervisor_hold:
            # LIQUIDATE_ONLY is only ever left by a flatten: a kill after the status was logged
            # and before its flatten was (nothing was sent yet) leaves none. Start it again, as
            # restored: it waits for the broker's book like any flatten brought back.
            self._flatten_numbers += 1
            prefix = "lock" if self.lock_reason is LockReason.MANUAL else "breach"
            self.flatten = FlattenRun(
                self._flatten_numbers,
                f"{prefix}:{self.account}:{self._flatten_numbers}",
                Purpose.LOCK,
                restored=True,
            )

    def _durable(self) -> RiskState:
        run = self.flatten
        return RiskState(
            status=self.status.value,
            lock_reason=self.lock_reason.value,
            high_water=self.high_water,
            triggers_off=tuple(sorted(t.value for t in self.off)),
            lock_triggers=tuple(sorted(t.value for t in self.lock_triggers)),
            flatten=None if run is None else run.record(),
            flattens=self._flatten_numbers,
            supervisor_hold=self.supervisor_hold,
            version=self._version,
            prop=self.prop,
        )

    def _persist(self) -> None:
        """Queue what changed for the store, in order with everything else the actor writes.
        The high-water mark moves only on new highs (a re-evaluation, not every tick), so it is
        written with the rest rather than on a timer that a frozen replay clock would never
        fire."""
        state = self._durable()
        if state != self._saved:
            self._version += 1
            state = replace(state, version=self._version)
            # A status or lock change is durable before anything else is said about it (the
            # activity entry a person reads, the API's answer, the liquidation): it must
            # survive a kill. So is a flatten and what it has sent: a restart carries it on,
            # and never cancels or sends its liquidations again. The status log has it at once
            # (one ``write``); the store row follows.
            if _decisive(state) != _decisive(self._saved):
                self.ctx.storage.risk_decided(self.account, state)
            self.ctx.storage.save_risk(self.account, state)
            self._saved = state

    def receive(self, message: object) -> None:
        self._handle(message)
        if not isinstance(message, GateOrder):  # the gate decides; it changes no state
            self._persist()

    def _handle(self, message: object) -> None:
        match message:
            case InjectedFailure():
                fail(f"risk {self.account}")
            case SupervisorHold(reason=reason):
                self._hold(reason)
            case RepublishBands():
                self.bands = {}
                self._publish_bands()
            case GateOrder(intent=intent):
                self._gate(intent)
            case AccountChanged():
                self._account_changed(message)
            case Evaluate(ranges=ranges):
                self._evaluate(ranges)
            case ResetApplied():
                self._reset(message)
            case LiquidationOutcome():
                self._liquidation_outcome(message)
            case Lock():
                self._lock()
            case Unlock():
                self._unlock()
            case Flatten(cause=cause):
                self._start_flatten(cause, Purpose.COMMAND)
            case RetryFlatten(flatten=number, failures=failures):
                run = self.flatten
                if run is not None and run.retry_due(number, failures):
                    self._drive()
            case StateChanged(state=state):
                self.connected = state is ConnectionState.CONNECTED
                if self.connected and self.flatten is not None:
                    self.flatten.connection_returned()
                    self._drive()  # S5.6: sent the moment the connection returns
            case SetMembership(group=group):
                self.group = group
            case SetLimits(limits=limits, changed=changed):
                self._set_limits(limits, changed)
            case SetBlackouts(blackouts=blackouts):
                self.blackouts = tuple(blackouts)
                self._edge_armed = None
                if self._started:
                    self._blackout_edges()
                else:
                    self._arm_edge()
            case SessionClose():
                self._session_close_due(message)
            case BlackoutEdge():
                self._blackout_due(message)
            case _:
                log.warning("unknown message", account=self.account, message=repr(message))

    def _set_limits(self, values: Mapping[str, RiskValue], changed: tuple[str, ...]) -> None:
        """New effective keys; each one set is re-armed at its new value (S5.7's override),
        and everything is evaluated at once against current equity (S9.3)."""
        before = self.rules
        self.values = dict(values)
        self.rules = RiskRules.of(self.values)
        self.limits = dict(self.rules.limits)
        for name in changed:
            if name in TRIGGER_NAMES:
                self.off.discard(Trigger(name))
        if "start_balance" in changed:
            self._new_evaluation()
        if self.rules.flatten_at != before.flatten_at:
            self._close_armed = None
            self._arm_close()
        if self.rules.blackout is not before.blackout and self._started:
            self._blackout_edges()
        elif self.rules.blackout is not before.blackout:
            self._arm_edge()
        self._evaluate()

    def _cancel_working(self) -> None:
        if self.connected:
            self.ctx.tell(self.connection, CancelWorking(self.account))

    def view(self) -> RiskView:
        level = self.threshold()
        blackout, running = self.blackout_shown()
        today = figures(self.book, self._last).daily_low if self.rules.consistency_pct else ZERO
        return RiskView(
            self.account,
            self.status,
            self.lock_reason,
            self.flatten is not None,
            self.group,
            dict(self.values),
            self.high_water,
            tuple(sorted(t.value for t in self.off)) if self.off else (),
            self.supervisor_hold,
            threshold=level,
            start_balance=self.prop.start_balance if self.rules.max_loss else None,
            contracts_in_use=self.contracts_in_use(),
            max_contracts=self.rules.max_contracts,
            next_session_close=self.next_session_close(),
            blackout=blackout,
            blackout_active=running,
            best_day_share=self.best_day_share(today),
        )

    # -- S5.1 / S5.2: figures and triggers -----------------------------------------------------

    def _last(self, symbol: str) -> Decimal | None:
        """The price P&L is measured at: the market's, else the account's last fill price (the
        account prices its book the same way)."""
        price = self.ctx.market.last(symbol)
        if price is None:
            holding = self.book.positions.get(symbol)
            return holding.last_fill if holding is not None else None
        return price

    def _evaluate(self, ranges: Mapping[str, tuple[Decimal, Decimal]] | None = None) -> None:
        fig = figures(self.book, self._last, ranges)
        self.high_water = max(self.high_water, fig.equity_high)
        fired = breached(fig, self.high_water, self.limits, frozenset(self.off))
        level = self._track_peak(fig)
        if level is not None and Trigger.MAX_LOSS not in self.off and fig.equity_low <= level:
            fired.append(Trigger.MAX_LOSS)  # S9.3
        if fired:
            self._breach(fired, fig.daily_low, fig.weekly_low)
        at_last = None if ranges else fig  # priced at the last prices: what the bands start from
        if self.rules.consistency_pct is not None:
            today = at_last if at_last is not None else figures(self.book, self._last)
            self._check_consistency(today.daily_low)
        self._publish_bands(at_last)

    def _publish_bands(self, fig: Figures | None = None) -> None:
        """The breach prices (S5.2 on ticks) told to the connection when they change. Made
        again only when what they are made of changed since they were made: the holdings (the
        same object while the book's positions have not changed) and their prices, the
        figures, the high-water mark, the limits, the triggers off, S9.3's threshold."""
        threshold = self.threshold()
        level = None if Trigger.MAX_LOSS in self.off else threshold
        ceiling = self._peak_ceiling(threshold)
        book, off = self.book, frozenset(self.off)
        positions = book.positions
        prices = tuple(self._last(s) for s in positions) if positions else ()
        # Whether a price beyond the band on the losing side may breach: not once the account
        # is breaching already (its flatten on the way, or it is no longer OK) — it is
        # evaluated again, but not ahead of everyone else (decision 0030).
        alarm = self.status is RiskStatus.OK and self.flatten is None
        inputs = (
            prices,
            book.realized_daily,
            book.realized_weekly,
            book.balance,
            self.high_water,
            off,
            level,
            ceiling,
            alarm,
        )
        made = self._banded
        if (
            made is not None
            and made[0] is positions
            and made[1] is self.limits
            and made[2] is self.bands
            and made[3] == inputs
        ):
            return  # the same bands again: nothing to tell
        bands = breach_prices(
            book,
            self._last,
            self.high_water,
            self.limits,
            off,
            floor=level,
            ceiling=ceiling,
            fig=fig,
        )
        if bands != self.bands or (made is not None and made[3][-1] != alarm):
            self.bands = bands
            sides = {
                s: (1 if positions[s].qty > 0 else -1) if alarm else None
                for s in bands
                if s in positions
            }
            self.ctx.tell(self.connection, SetBands(self.account, bands, sides))
        self._banded = (positions, self.limits, self.bands, inputs)

    def _breach(self, fired: list[Trigger], daily: Decimal, weekly: Decimal) -> None:
        """S5.3, in its order of effect; a breach in any status only escalates the reason."""
        reason = reason_for(fired)
        escalates = REASON_RANK[reason] > REASON_RANK[self.lock_reason]
        if self.status is not RiskStatus.OK and not escalates:
            return
        self.lock_triggers.update(fired)
        what = ", ".join(DESCRIPTIONS[t] for t in fired)
        if Trigger.MAX_LOSS in fired:
            what += f" (threshold {self.threshold():.2f})"
        first = self.status is RiskStatus.OK
        # 1 and 2 at once, in one handler: LIQUIDATE_ONLY and the flatten (which, with nothing
        # open, completes at once and must find the status it completes from).
        self._transition(RiskEvent.BREACH)
        self._raise_reason(reason)
        if first:  # committed with its flatten before anyone is told
            self._start_flatten(f"breach:{self.account}:{self._flatten_numbers + 1}", Purpose.LOCK)
        else:
            self._persist()  # committed before anyone is told
        self._disable_membership(f"{reason.value}: {what} breached")
        action = (
            "flattening all positions, then LOCKED"
            if first
            else f"lock reason raised to {self.lock_reason.value}"
        )
        self.ctx.storage.activity(
            Level.WARNING,
            Kind.BREACH,
            f"{what} breached ({reason.value}): daily P&L {daily:.2f}, weekly P&L "
            f"{weekly:.2f}; {action}",
            account=self.account,
        )

    # -- S5.8: resets --------------------------------------------------------------------------

    def _reset(self, reset: ResetApplied) -> None:
        self._close_day(self.book.balance, reset.figures.balance)  # S9.6
        self.book = reset.figures
        weekly = reset.kind == "weekly"
        # S9.4: a session close waits for the next daily reset; S9.3's lock for no reset.
        cleared = {LockReason.DAILY, LockReason.SESSION_CLOSE} | (
            {LockReason.WEEKLY} if weekly else set()
        )
        self.off -= DAILY_TRIGGERS if not weekly else set(Trigger) - {Trigger.MAX_LOSS}
        self._reset_peak(self.book.balance)  # S9.3: an end-of-day threshold moves here
        if self.lock_reason in cleared:
            rebase = Trigger.TRAILING in self.lock_triggers
            self.lock_reason = LockReason.NONE
            self.lock_triggers.clear()
            self._transition(RiskEvent.RESET)
            self._enable_membership()
            if rebase:
                self.high_water = self.book.balance + figures(self.book, self._last).daily_low
            self.ctx.storage.activity(
                Level.INFO,
                Kind.RESET,
                f"{reset.kind} reset cleared the lock"
                + (
                    " (OK once the flatten in flight is done)"
                    if self.status is RiskStatus.LIQUIDATE_ONLY
                    else ""
                ),
                account=self.account,
            )
        self._evaluate()

    # -- the state machine ---------------------------------------------------------------------

    def _transition(self, event: RiskEvent) -> None:
        before = self.status
        self.status = TRANSITIONS[(before, event)]
        if self.status is not before:
            log.info(
                "risk status",
                account=self.account,
                before=before.value,
                after=self.status.value,
                trigger=event.value,
            )

    def _raise_reason(self, reason: LockReason) -> None:
        """Lock reasons only escalate (S5.2)."""
        self.lock_reason = escalated(self.lock_reason, reason)

    def _is_flat(self) -> bool:
        """Nothing open, nothing closing, and nothing working that could still open: a held
        copy filled after a lock would be exposure on a LOCKED account."""
        return (
            not any(self.positions.values())
            and not self.liquidating
            and not self.book.working
            and not self.passed
            and self.book.confirmed  # a book not yet confirmed by the broker is not "flat"
        )

    # -- S5.4 / S5.5: the gate -------------------------------------------------------------------

    def _gate(self, intent: OrderIntent) -> None:
        account_addr = addresses.account(self.account)
        qty = intent.qty
        # An order sized while an earlier one was on its way counts it in its P: what the gate
        # cut of that one is not there (a refused opening copy must not make the next order
        # look closing).
        cut = self.cut
        projected = intent.projected - sum(
            counted - cut[coid] for coid, counted in intent.in_flight if coid in cut
        )
        verdict = gate(self.status, projected, qty, liquidating=intent.symbol in self.liquidating)
        allowed, refusal, why = verdict.allowed, verdict.refusal, ""
        if not refusal and (self.rules.max_contracts is not None or self.blackouts):
            ruled, refusal, why = self._rule_cut(intent, projected, allowed)  # S9.2, S9.5
            if why or refusal or ruled != allowed:
                allowed = ruled
        if allowed != qty:
            cut[intent.client_order_id] = allowed
            if len(cut) > CUT_KEPT:
                del cut[next(iter(cut))]
        if refusal:
            self._refuse(intent, qty, refusal)
            return
        if allowed != qty:
            if not why:
                why = (
                    "flatten in flight" if intent.symbol in self.liquidating else self.status.value
                )
            self.ctx.storage.activity(
                Level.INFO,
                Kind.COPY,
                f"{label(intent.kind)} order {qty:+d} {intent.symbol} clipped to {allowed:+d}: "
                + why,
                account=self.account,
                fill=leader_fill_of(intent.kind, intent.cause),
            )
        if allowed != qty:
            self.ctx.tell(account_addr, GateDecision(intent.client_order_id, allowed))
        if allowed == 0:
            return
        self.passed += 1
        self._sent[intent.symbol] = self._sent.get(intent.symbol, 0) + allowed
        if intent.request is not None:  # a mirror (S8.6): its terms and legs as offered
            request = replace(intent.request, qty=allowed)
        else:
            request = OrderRequest(intent.client_order_id, self.account, intent.symbol, allowed)
        self.ctx.tell(
            self.connection,
            PlaceOrders((Placement(request, label(intent.kind), intent.cause),)),
        )

    def _refuse(self, intent: OrderIntent, qty: int, text: str) -> None:
        self.ctx.storage.activity(
            Level.WARNING,
            Kind.REJECTION,
            f"order {qty:+d} {intent.symbol} rejected: {text}",
            account=self.account,
            fill=leader_fill_of(intent.kind, intent.cause),
        )
        self.ctx.tell(addresses.account(self.account), GateDecision(intent.client_order_id, 0))

    # -- S5.7: manual lock and unlock ------------------------------------------------------------

    def _lock(self) -> None:
        self._raise_reason(LockReason.MANUAL)
        flat = self._is_flat() and self.flatten is None
        self._transition(RiskEvent.LOCK_FLAT if flat else RiskEvent.LOCK_OPEN)
        self._persist()  # committed before anyone is told
        self._disable_membership("locked manually")
        self.ctx.storage.activity(
            Level.WARNING,
            Kind.LOCK,
            "account locked manually" + ("" if flat else "; flattening first"),
            account=self.account,
        )
        if self.status is RiskStatus.LIQUIDATE_ONLY:
            # Its flatten is committed before it sends; a kill before that leaves a
            # LIQUIDATE_ONLY with no flatten, which a restart flattens (``_restore``).
            self._start_flatten(f"lock:{self.account}:{self._flatten_numbers + 1}", Purpose.LOCK)
        else:
            # Flat, but an order still working (a held copy, a trader's stop) could open
            # exposure on a LOCKED account: cancel them.
            self._cancel_working()

    def _hold(self, reason: str) -> None:
        self.supervisor_hold = True
        self._transition(RiskEvent.HOLD)
        self._persist()  # committed before anyone is told
        self.ctx.storage.activity(
            Level.ERROR,
            Kind.RESTART,
            f"{reason}: account held in {self.status.value} (no new exposure) until unlocked",
            account=self.account,
        )

    def _unlock(self) -> None:
        if self.status is RiskStatus.OK and self.lock_reason is LockReason.NONE:
            return
        self.lock_reason = LockReason.NONE
        self.supervisor_hold = False
        self._transition(RiskEvent.UNLOCK)  # while liquidating: OK once flat (FLAT_CLEARED)
        if self.status is RiskStatus.LIQUIDATE_ONLY and self.flatten is None:
            self._transition(RiskEvent.FLAT_CLEARED)  # nothing is being closed (a supervisor hold)
        for trigger in self.lock_triggers:
            if trigger is Trigger.TRAILING:
                fig = figures(self.book, self._last)
                self.high_water = fig.equity_low
            else:
                self.off.add(trigger)  # stays off until its reset or until set again
        self.lock_triggers.clear()
        self._enable_membership()
        self._publish_bands()  # the switched-off triggers move the breach prices
        self.ctx.storage.activity(
            Level.INFO,
            Kind.UNLOCK,
            "account unlocked manually"
            + (
                " (OK once the flatten in flight is done)"
                if self.status is RiskStatus.LIQUIDATE_ONLY
                else ""
            ),
            account=self.account,
        )

    def _disable_membership(self, reason: str) -> None:
        if self.group is not None:
            self.ctx.tell(addresses.group(self.group), DisableMember(self.account, reason))

    def _enable_membership(self) -> None:
        if self.group is not None:
            self.ctx.tell(addresses.group(self.group), EnableMember(self.account))

    # -- the flatten (S5.3 step 1, S5.6, S6) -----------------------------------------------------

    def _start_flatten(self, cause: str, purpose: Purpose) -> None:
        """A new flatten, or the one in flight taking this purpose. Either way what called for
        it (a status, a reason) is committed with it before anyone is told; a new one decides
        its first step first, so the status log gets one frame on the way to the liquidation."""
        if self.flatten is not None:
            if purpose is Purpose.LOCK:
                self.flatten.purpose = Purpose.LOCK
            self._persist()
            self._drive()
            return
        self._flatten_numbers += 1
        self.flatten = FlattenRun(self._flatten_numbers, cause, purpose)
        step = self._step()
        self._persist()
        self.ctx.tell(addresses.account(self.account), FlattenActive(True))
        self.ctx.storage.activity(
            Level.INFO,
            Kind.FLATTEN,
            "flatten: cancel working orders, liquidate "
            + (
                ", ".join(f"{s} {q:+d}" for s, q in sorted(self.positions.items()) if q)
                or "nothing open"
            ),
            account=self.account,
        )
        if step is not None:
            self._send(step)

    def _drive(self) -> None:
        step = self._step()
        if step is not None:
            self._persist()  # its attempt numbers are durable before its orders go out
            self._send(step)

    def _step(self) -> Step | None:
        """What the flatten does next, decided but not yet sent (``FlattenRun.step``)."""
        run = self.flatten
        if run is None:
            return None
        return run.step(self.account, self.positions, self.liquidating, connected=self.connected)

    def _send(self, step: Step) -> None:
        """Carry out a step already persisted (:meth:`_persist`)."""
        if step.cancel:
            self.ctx.tell(self.connection, CancelWorking(self.account, urgent=True))
        if step.orders:
            self.ctx.tell(self.connection, PlaceOrders(step.orders, urgent=True))
            return
        if self._is_flat():
            self._flat()

    def _schedule_retry(self, run: FlattenRun) -> None:
        self.ctx.schedule(
            run.retry_delay(), self.ctx.address, RetryFlatten(run.number, run.failures)
        )

    def _flat(self) -> None:
        run = self.flatten
        self.flatten = None
        if run is None:
            return
        self.ctx.tell(addresses.account(self.account), FlattenActive(False))
        self.ctx.storage.activity(
            Level.INFO, Kind.FLATTEN, "flatten complete: account flat", account=self.account
        )
        if run.purpose is Purpose.LOCK and self.status is RiskStatus.LIQUIDATE_ONLY:
            locked = bool(self.lock_reason)  # FLAT_LOCKED: LIQUIDATE_ONLY → LOCKED
            self._transition(RiskEvent.FLAT_LOCKED if locked else RiskEvent.FLAT_CLEARED)
            if locked:
                # S5.3 step 1 for what came while it ran: an order placed at the broker after
                # its first cancel (while a rejected liquidation backed off, say) must not
                # outlive it on a LOCKED account.
                self._cancel_working()

    def _account_changed(self, changed: AccountChanged) -> None:
        self.book = changed
        self.passed = 0
        self._sent = {}
        self.positions = {s: h.qty for s, h in changed.positions.items()}
        if self.flatten is not None and self.flatten.restored and changed.confirmed:
            # After a restart: the liquidations still working at the broker stay in flight.
            self.flatten.restored = False
            self.liquidating = dict(changed.liquidations)
        self._evaluate()
        if changed.confirmed:
            before, self._projection = self._projection, dict(changed.projection)
            if not self._started:
                # S9.4, S9.5: what fell due while the engine was down, on known positions.
                self._started = True
                self._missed_close()
                self._blackout_edges()
            else:
                self._check_excess(before, changed)  # S9.2
        if self.flatten is not None:
            self._drive()
        elif self.status is RiskStatus.LOCKED and any(self.positions.values()):
            # S5.5: a manual trade opened exposure on a locked account: flatten at once
            self.ctx.storage.activity(
                Level.WARNING,
                Kind.MANUAL_TRADE_FLATTENED,
                "manual trade opened exposure on a LOCKED account: flattening it",
                account=self.account,
            )
            self._start_flatten(f"locked:{self.account}:{self._flatten_numbers + 1}", Purpose.LOCK)

    def _liquidation_outcome(self, outcome: LiquidationOutcome) -> None:
        symbol = next(
            (s for s, c in self.liquidating.items() if c == outcome.client_order_id), None
        )
        if symbol is None:
            return
        del self.liquidating[symbol]
        run = self.flatten
        if run is None:
            return
        if outcome.outcome == "rejected":
            delay = run.rejected()
            self.ctx.storage.activity(
                Level.ERROR,
                Kind.FLATTEN_FAILED,
                f"liquidation of {symbol} rejected: {outcome.reason}; retrying in "
                f"{delay.total_seconds():g} s",
                account=self.account,
            )
            self._schedule_retry(run)
            return
        if run.answered(outcome.outcome, connected=self.connected, confirmed=self.book.confirmed):
            self._drive()


def _decisive(state: RiskState) -> tuple[str, str, FlattenRecord | None]:
    """What goes to the status log when it changes: the status, the reason, the flatten."""
    return state.status, state.lock_reason, state.flatten
