"""The prop-firm rules of an account's risk actor (S9): max contracts in the gate and the
reduction of a manual excess (S9.2), the account's max-loss threshold (S9.3), the session
close (S9.4), blackouts (S9.5) and consistency (S9.6). Part of ``RiskActor``
(``actors/risk.py``), which owns the state machine, the gate and the flatten these call.

Commissions (S9.1) are charged by the account's book at each fill, so every figure the risk
actor receives is already net of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from actors import addresses
from actors.flatten import FlattenRun, Purpose
from actors.messages.account import ReduceExcess
from actors.messages.risk import AccountChanged, BlackoutEdge, OrderIntent, SessionClose
from engine.domain.activity import Kind, Level
from engine.domain.consistency import best_day_share, consistency_breached
from engine.domain.copy_rule import closing_part
from engine.domain.max_contracts import (
    clip_opening,
    excess_reduction,
    in_use,
    refusal_text,
    root_of,
    weight,
    worst_case,
)
from engine.domain.order_ids import OrderKind
from engine.domain.resets import CHICAGO, next_reset
from engine.domain.risk_profile import RiskRules, number_text
from engine.domain.risk_rules import Figures
from engine.domain.risk_status import LockReason, RiskEvent, RiskStatus
from engine.domain.sessions import (
    Blackout,
    BlackoutMode,
    active_blackout,
    blackout_text,
    next_blackout_instant,
    next_session_close,
    session_close_missed,
)
from engine.domain.state import PropState
from engine.domain.threshold import MaxLossMode, Threshold, on_daily_reset, on_equity, threshold
from engine.host.base import ActorContext

DAYS_KEPT = 400  # S9.6: closed trading days kept for the consistency figure (over a year)


class RiskParts(ABC):
    """What the S9 part uses of the actor (``actors/risk.py``)."""

    ctx: ActorContext
    account: str
    status: RiskStatus
    lock_reason: LockReason
    book: AccountChanged
    flatten: FlattenRun | None
    rules: RiskRules
    prop: PropState
    blackouts: tuple[Blackout, ...]
    _flatten_numbers: int

    @abstractmethod
    def _transition(self, event: RiskEvent) -> None: ...
    @abstractmethod
    def _persist(self) -> None: ...
    @abstractmethod
    def _is_flat(self) -> bool: ...
    @abstractmethod
    def _start_flatten(self, cause: str, purpose: Purpose) -> None: ...
    @abstractmethod
    def _disable_membership(self, reason: str) -> None: ...
    @abstractmethod
    def _cancel_working(self) -> None: ...


class PropRules(RiskParts):
    # -- S9.2: max contracts ----------------------------------------------------------------------

    def _contracts_cut(self, intent: OrderIntent, projected: int, allowed: int) -> int:
        """What of ``allowed`` (already through S5.4/S5.5) the account's max contracts lets go:
        the closing part always; the opening part so that the position, the account's other
        opening orders and every other symbol's stay within N."""
        cap = self.rules.max_contracts
        if cap is None or not allowed:
            return allowed
        weights = self.rules.contract_weights
        symbol = intent.symbol
        if intent.others is not None:
            # The account's book as it asked: every order it sent is in it, answered or not.
            exposure = dict(intent.others)
            resting = intent.resting
        else:
            exposure = self._exposure()
            resting = self.book.resting.get(symbol, (0, 0))
        others = Decimal(0)
        for other, qty in exposure.items():
            if other != symbol:
                others += abs(qty) * weight(root_of(other), weights)
        rests = intent.kind is OrderKind.MIRROR  # resting: judged beside the others (E20)
        return clip_opening(symbol, projected, allowed, resting, others, cap, weights, rests=rests)

    def _exposure(self) -> dict[str, int]:
        """Each symbol's worst case: P (with the orders passed since the book) plus the resting
        orders on the side that adds to it."""
        out: dict[str, int] = {}
        projection = dict(self.book.projection)
        for symbol, qty in self._sent.items():
            projection[symbol] = projection.get(symbol, 0) + qty
        for symbol in projection.keys() | self.book.resting.keys():
            worst = worst_case(projection.get(symbol, 0), self.book.resting.get(symbol, (0, 0)))
            if worst:
                out[symbol] = worst
        return out

    def contracts_in_use(self) -> Decimal:
        """S9.2's figure: the weighted contracts held."""
        held = {s: h.qty for s, h in self.book.positions.items()}
        return in_use(held, self.rules.contract_weights)

    def _check_excess(self, before: Mapping[str, int] | None, changed: AccountChanged) -> None:
        """S9.2: a fill that takes the account above N (a manual trade) is reduced at once, in
        that fill's symbol; lowering N reduces nothing (``before`` is then already above)."""
        cap = self.rules.max_contracts
        if cap is None or before is None or not changed.confirmed:
            return
        if self.status is not RiskStatus.OK or self.flatten is not None:
            return  # the flatten closes everything anyway
        after = changed.projection
        weights = self.rules.contract_weights
        now_used = in_use(after, weights)
        if now_used <= cap or now_used <= in_use(before, weights):
            return
        grew = [s for s in sorted(after) if abs(after[s]) > abs(before.get(s, 0))]
        if not grew:
            return
        symbol = grew[0]
        if not excess_reduction(symbol, after, cap, weights):
            return
        self.prop = replace(self.prop, reductions=self.prop.reductions + 1)
        self._persist()  # its cause id is durable before the order is asked for
        self.ctx.storage.activity(
            Level.WARNING,
            Kind.MAX_CONTRACTS_EXCEEDED,
            f"{number_text(now_used)} contracts held, above max contracts "
            f"{number_text(cap)}: reducing {symbol} by the fewest contracts within it",
            account=self.account,
        )
        cause = f"max_contracts:{self.account}:{self.prop.reductions}"
        # The account sizes it, on its book with the reductions asked before this one.
        self.ctx.tell(addresses.account(self.account), ReduceExcess(symbol, cause))

    # -- S9.5: blackouts in the gate --------------------------------------------------------------

    def _rule_cut(self, intent: OrderIntent, projected: int, allowed: int) -> tuple[int, str, str]:
        """The S9 gate after S5.4/S5.5: (what may go, a refusal's text, why it was clipped)."""
        if not allowed:
            return allowed, "", ""
        opening = allowed - closing_part(projected, allowed)
        if not opening:
            if intent.kind is OrderKind.MIRROR and self.rules.max_contracts is not None:
                # A mirror rests: were the account's other resting orders on its side filled
                # first, it would open — max contracts judges it beside them (E20).
                return self._capped(intent, projected, allowed)
            return allowed, "", ""
        running = self._blackout_now()
        if running is not None:
            closing = allowed - opening
            if not closing:
                return 0, blackout_text(running), ""
            return closing, "", f"blackout {running.label}"
        return self._capped(intent, projected, allowed)

    def _capped(self, intent: OrderIntent, projected: int, allowed: int) -> tuple[int, str, str]:
        """S9.2's part of the gate: (what may go, a refusal's text, why it was clipped)."""
        cap = self.rules.max_contracts
        cut = self._contracts_cut(intent, projected, allowed)
        if cut == allowed or cap is None:
            return allowed, "", ""
        if not cut:
            return 0, refusal_text(cap), ""
        return cut, "", f"max contracts {number_text(cap)} ({abs(allowed - cut)} cut)"

    def _blackout_now(self) -> Blackout | None:
        if self.rules.blackout is BlackoutMode.OFF or not self.blackouts:
            return None
        return active_blackout(self.blackouts, self.ctx.now())

    # -- S9.3: the account's max loss -------------------------------------------------------------

    def _ensure_start(self) -> None:
        """The evaluation's start: ``start_balance``, else the balance when max_loss is first
        set; the peak starts there."""
        if self.rules.max_loss is None or self.prop.start_balance is not None:
            return
        start = self.rules.start_balance or self.book.balance
        self.prop = replace(self.prop, start_balance=start, peak=start)

    def _threshold_state(self) -> Threshold | None:
        start, peak = self.prop.start_balance, self.prop.peak
        if start is None:
            return None
        return Threshold(start, start if peak is None else peak)

    def threshold(self) -> Decimal | None:
        """S9.3's threshold, shown even while its trigger is off after an unlock."""
        state = self._threshold_state()
        max_loss = self.rules.max_loss
        if state is None or max_loss is None:
            return None
        return threshold(state, max_loss, self.rules.max_loss_mode, self.rules.max_loss_stop)

    def _track_peak(self, fig: Figures) -> Decimal | None:
        """Move an intraday peak to the highest equity seen; the threshold after it."""
        self._ensure_start()
        state = self._threshold_state()
        if state is None or self.rules.max_loss is None:
            return None
        moved = on_equity(state, self.rules.max_loss_mode, fig.equity_high)
        if moved is not state:
            self.prop = replace(self.prop, peak=moved.peak)
        return self.threshold()

    def _peak_ceiling(self, level: Decimal | None) -> Decimal | None:
        """The equity at which an intraday threshold moves again (a new peak), while it can."""
        if level is None or self.rules.max_loss_mode is not MaxLossMode.INTRADAY:
            return None
        stop = self.rules.max_loss_stop
        start = self.prop.start_balance
        if stop is not None and start is not None and level >= start + stop:
            return None  # stopped: it never rises again
        return self.prop.peak

    def _reset_peak(self, balance: Decimal) -> None:
        state = self._threshold_state()
        if state is None:
            return
        moved = on_daily_reset(state, self.rules.max_loss_mode, balance)
        if moved is not state:
            self.prop = replace(self.prop, peak=moved.peak)

    def _new_evaluation(self) -> None:
        """Setting start_balance starts a new evaluation: the peak becomes it, the days
        counted for consistency start again."""
        start = self.rules.start_balance
        if start is not None:
            self.prop = replace(self.prop, start_balance=start, peak=start, days=())

    # -- S9.4: the session close ------------------------------------------------------------------

    def _arm_close(self) -> None:
        at = self.rules.flatten_at
        if at is None:
            self._close_armed = None
            return
        due = next_session_close(self.ctx.now(), at)
        if due != self._close_armed:
            self._close_armed = due
            self.ctx.services.timers.schedule(due, self.ctx.address, SessionClose(due))

    def _session_close_due(self, message: SessionClose) -> None:
        at = self.rules.flatten_at
        if at is None or message.at.astimezone(CHICAGO).timetz().replace(tzinfo=None) != at:
            return  # a timer of a flatten_at since changed or removed
        if message.at > self.ctx.now():
            return
        self._close_armed = None
        self._session_close(message.at)
        self._arm_close()

    def _session_close(self, at: datetime) -> None:
        """S9.4: flatten through S5.3 with reason session_close, then LOCKED until the daily
        reset; a reason already standing is kept, and nothing happens or is written."""
        day = at.astimezone(CHICAGO).date().isoformat()
        if self.prop.session_closed == day:
            return  # applied already (a timer that survived an in-place restart)
        self.prop = replace(self.prop, session_closed=day)
        if self.lock_reason is not LockReason.NONE:
            self._persist()
            return
        self.lock_reason = LockReason.SESSION_CLOSE
        flat = self._is_flat() and self.flatten is None
        self._transition(RiskEvent.CLOSE_FLAT if flat else RiskEvent.CLOSE_OPEN)
        when = at.astimezone(CHICAGO).strftime("%H:%M")
        if self.status is RiskStatus.LIQUIDATE_ONLY:
            self._start_flatten(f"close:{self.account}:{self._flatten_numbers + 1}", Purpose.LOCK)
        else:
            self._persist()  # committed before anyone is told
            self._cancel_working()
        self._disable_membership(f"session_close: session closed at {when} CT")
        self.ctx.storage.activity(
            Level.WARNING,
            Kind.SESSION_CLOSE,
            f"session close at {when} CT: "
            + ("flattening all positions, then " if not flat else "account flat, ")
            + "LOCKED until the daily reset",
            account=self.account,
        )

    def _missed_close(self) -> None:
        """At start-up: a session close that fell while the engine was down, its session not
        yet reset, is applied now."""
        at = self.rules.flatten_at
        if at is None:
            return
        missed = session_close_missed(self.ctx.now(), at)
        if missed is not None:
            self._session_close(missed)

    def next_session_close(self) -> datetime | None:
        at = self.rules.flatten_at
        return None if at is None else next_session_close(self.ctx.now(), at)

    # -- S9.5: blackouts --------------------------------------------------------------------------

    def _blackout_edges(self) -> None:
        """Apply every start and end due: each running interval begun once (an entry, and a
        flatten for a ``flatten`` account), each begun one that has ended (an entry)."""
        mode = self.rules.blackout
        if mode is BlackoutMode.OFF:
            if self.prop.blackouts_begun:
                self.prop = replace(self.prop, blackouts_begun=())
            self._edge_armed = None
            return
        now = self.ctx.now()
        running = {b.key(): b for b in self.blackouts if b.active(now)}
        begun = list(self.prop.blackouts_begun)
        for key in [k for k in begun if k not in running]:
            begun.remove(key)
            self.ctx.storage.activity(
                Level.INFO,
                Kind.BLACKOUT,
                f"blackout over ({_label_of(key)}): opening orders allowed again",
                account=self.account,
            )
        starting = [b for k, b in sorted(running.items()) if k not in begun]
        begun.extend(b.key() for b in starting)
        self.prop = replace(self.prop, blackouts_begun=tuple(begun))
        for b in starting:
            flattening = mode is BlackoutMode.FLATTEN and not self._is_flat()
            self._persist()
            self.ctx.storage.activity(
                Level.INFO,
                Kind.BLACKOUT,
                f"blackout {b.label}: {blackout_text(b)}"
                + (" Flattening the account." if mode is BlackoutMode.FLATTEN else ""),
                account=self.account,
            )
            if mode is BlackoutMode.FLATTEN and (flattening or self.flatten is None):
                self._start_flatten(
                    f"blackout:{self.account}:{self._flatten_numbers + 1}", Purpose.COMMAND
                )
        self._arm_edge()

    def _arm_edge(self) -> None:
        if self.rules.blackout is BlackoutMode.OFF:
            self._edge_armed = None
            return
        due = next_blackout_instant(self.blackouts, self.ctx.now())
        if due is not None and due != self._edge_armed:
            self._edge_armed = due
            self.ctx.services.timers.schedule(due, self.ctx.address, BlackoutEdge(due))

    def _blackout_due(self, message: BlackoutEdge) -> None:
        if message.at > self.ctx.now():
            return
        if message.at == self._edge_armed:
            self._edge_armed = None
        self._blackout_edges()

    def blackout_shown(self) -> tuple[Blackout | None, bool]:
        """The interval running (the one ending last), else the next to start; none for an
        account whose blackout is ``off`` (it is not concerned)."""
        if self.rules.blackout is BlackoutMode.OFF:
            return None, False
        now = self.ctx.now()
        running = active_blackout(self.blackouts, now)
        if running is not None:
            return running, True
        upcoming = [b for b in self.blackouts if b.start > now]
        return (min(upcoming) if upcoming else None), False

    # -- S9.6: consistency ------------------------------------------------------------------------

    def _close_day(self, before: Decimal, after: Decimal) -> None:
        """At a reset: the day's net P&L (the balance it added) joins the closed days."""
        if self.rules.consistency_pct is None and not self.prop.days:
            return
        pnl = after - before
        if not pnl:
            return
        day = self.ctx.now().astimezone(CHICAGO).date().isoformat()
        days = (*self.prop.days, (day, pnl))[-DAYS_KEPT:]
        self.prop = replace(self.prop, days=days)

    def _check_consistency(self, today: Decimal) -> None:
        pct = self.rules.consistency_pct
        if pct is None:
            return
        day = _trading_day(self.ctx.now())
        if self.prop.consistency_warned == day:
            return
        closed = [pnl for _, pnl in self.prop.days]
        if not consistency_breached(closed, today, pct):
            return
        share = best_day_share(closed, today)
        self.prop = replace(self.prop, consistency_warned=day)
        self.ctx.storage.activity(
            Level.WARNING,
            Kind.CONSISTENCY,
            f"today's profit {today:.2f} is {share * 100 if share else 0:.1f}% of the total "
            f"profit, above the consistency rule's {number_text(pct)}%",
            account=self.account,
        )

    def best_day_share(self, today: Decimal) -> Decimal | None:
        if self.rules.consistency_pct is None:
            return None
        return best_day_share([pnl for _, pnl in self.prop.days], today)

    _sent: dict[str, int]
    _close_armed: datetime | None
    _edge_armed: datetime | None


def _trading_day(now: datetime) -> str:
    """The trading day ``now`` belongs to: the Chicago date of the reset that closes it."""
    return next_reset(now).at.astimezone(CHICAGO).date().isoformat()


def _label_of(key: str) -> str:
    return key.split("/", 2)[-1]
