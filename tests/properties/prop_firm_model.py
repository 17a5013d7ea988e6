"""The prop-firm rules (SEMANTICS S9) as invariants of the real engine, checked from the outside
after every step beside :mod:`tests.properties.engine_model`'s, from the paper broker's book and
fills, the engine's views and its order ledger.

The invariants:

* max contracts held — an account with ``max_contracts`` N holds ``Σ |qty| × weight ≤ N`` at the
  broker (weight 1, 0.1 for a micro), except after a manual fill until it is within N again
  (S9.2's reduction; a fill of a mirror the account kept when it stopped following is its own),
  and after N was set until it is within N with none of the engine's orders of before still
  working (lowering N reduces nothing). A manual trade the engine saw live, on an account it
  could reduce, is reduced within its step by the fewest contracts in its symbol that bring the
  account to N or below, however the broker filled it;
* max contracts at send — no engine order opened or added exposure while the position (S2.2's
  ``P``), the engine's other working opening orders in its symbol on its side and every other
  symbol's worst case would exceed N with it; nor any while the account was above N (S9.2,
  S8.3);
* blackouts — no engine order opened or added exposure for a ``block`` or ``flatten`` account
  inside an active blackout (S9.5);
* session close — from a ``flatten_at`` the clock crossed to the next daily reset, unless
  unlocked manually meanwhile, no engine order opened or added exposure for the account, and
  after each step it is LOCKED (or LIQUIDATE_ONLY while its flatten is in flight) with reason
  ``session_close`` or a stronger one (S9.4, S5.2);
* commissions — over every step in which the engine could see the account's fills (connected,
  positions confirmed before and after, no restart, no change of its keys), what it charged grows
  by ``Σ |qty| × commission`` over the broker's new fills of the account (S9.1).

An order "opens" when its filled effect increases ``|position|``: judged at send time on the
ledger, replayed in the order sent from the book before the step (as
:meth:`EngineChecker._check_gate` does for LOCKED), and again from the book as if every fill and
cancel of the account's resting orders during the step had come first. The broker does not say
which came first, so an order opens only if it opens in both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING

from brokers.base import Fill
from engine.domain.order_ids import OrderKind, kind_of
from engine.domain.resets import CHICAGO
from engine.domain.risk_status import REASON_RANK, LockReason, RiskStatus
from engine.domain.sessions import Blackout
from engine.replay.scenario import CrashStep, Expectation, SetRiskStep, Step, TradeStep
from tests.properties.prop_firm_book import (
    Book,
    Keys,
    resting_mirrors,
    session_closes,
    sign,
    used,
    weight,
)
from tests.properties.violation import InvariantViolation

if TYPE_CHECKING:
    from tests.properties.engine_model import EngineChecker, LedgerRow, Observed

UNSENT = frozenset({"rejected", "not_sent"})  # ledger statuses of orders that never rested


def _ct(instant: datetime) -> str:
    return instant.astimezone(CHICAGO).strftime("%a %H:%M:%S CT")


@dataclass
class Excuse:
    """Why an account may hold more than its max contracts for now (S9.2): a manual fill
    (until within N), or N set while it held more or with orders of before still working."""

    why: str
    step: int
    orders: frozenset[str] = frozenset()


class PropFirmChecks:
    """The S9 invariants (module docstring) of one :class:`EngineChecker` run."""

    def __init__(self, checker: EngineChecker) -> None:
        self.checker = checker
        self.keys = {a.id: Keys(dict(a.risk)) for a in checker.scenario.accounts}
        self.blackouts: list[Blackout] = list(checker.scenario.blackouts)
        # account -> the session close in force: (close, the reset that clears it)
        self.closed: dict[str, tuple[datetime, datetime]] = {}
        self.excused: dict[str, Excuse] = {}
        broker = checker.harness.broker
        self.seen_fills = {a: {f.fill_id for f in broker.fills(a)} for a in self.keys}
        engine = checker.engine
        self.charged = {a: engine.account_view(a).commissions for a in engine.topology.accounts}
        self.started = checker.harness.clock.now()
        self.keys_before = dict(self.keys)

    # -- stepping ----------------------------------------------------------------------------

    def before(self) -> None:
        self.started = self.checker.harness.clock.now()
        self.keys_before = dict(self.keys)

    def after(
        self,
        step: Step,
        before: Observed,
        after: Observed,
        rows: Sequence[LedgerRow],
        legs: set[str],
        cancelled: Callable[[str], set[str]],
        where: str,
    ) -> None:
        """Follow the step's changes to the keys, the blackouts and the session closes, then
        check every invariant."""
        now = self.checker.harness.clock.now()
        value = step.value
        if step.action == "set_risk" and isinstance(value, SetRiskStep):
            if value.account in before.accounts:
                self.keys[value.account] = self.keys[value.account].with_(value.limits)
        elif step.action == "blackout" and isinstance(value, Blackout):
            self.blackouts.append(value)
        elif step.action == "unlock" and isinstance(value, str):
            self.closed.pop(value, None)  # S5.7: the user's override
        windows = self._windows(now)
        fills = self._new_fills(after)
        for account in sorted(before.accounts & after.accounts):
            mine = [r for r in rows if r.account == account]
            if mine:
                self._check_sent(step, before, after, account, mine, legs, cancelled, fills,
                                 windows.get(account, []), where)  # fmt: skip
        for account, found in windows.items():
            live = [w for w in found if w[1] > now]
            if live:
                self.closed[account] = live[-1]
            else:
                self.closed.pop(account, None)
        self._check_session_locks(after, now, where)
        self._check_held(step, before, after, rows, fills, where)
        self._check_commissions(step, before, after, fills, where)

    def _windows(self, now: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
        """Each account's session closes that count in this step: the one in force, and every
        one the clock crossed with ``flatten_at`` in force."""
        out: dict[str, list[tuple[datetime, datetime]]] = {}
        for account, keys in self.keys_before.items():
            found = [self.closed[account]] if account in self.closed else []
            at = keys.flatten_at
            if at is not None and now > self.started:
                found += session_closes(self.started, now, at)
            if found:
                out[account] = found
        return out

    def _new_fills(self, after: Observed) -> dict[str, list[Fill]]:
        broker = self.checker.harness.broker
        out: dict[str, list[Fill]] = {}
        for account, seen in self.seen_fills.items():
            new = [f for f in broker.fills(account) if f.fill_id not in seen]
            seen.update(f.fill_id for f in new)
            out[account] = new
        return out

    # -- orders sent ---------------------------------------------------------------------------

    def _books(
        self,
        step: Step,
        before: Observed,
        after: Observed,
        account: str,
        cancelled: set[str],
        fills: Sequence[Fill],
    ) -> tuple[Book, Book, dict[str, int]]:
        """The account's book before the step (the owner's trade of the step first), and the
        same as if every fill and cancel of its resting orders during the step came first; and
        what the mirrors placed during the step filled in it, by client order id (the second
        book takes those as filled when each mirror is sent)."""
        held = dict(before.broker_positions.get(account, {}))
        value = step.value
        if isinstance(value, TradeStep) and value.account == account:
            side = 1 if value.side == "buy" else -1
            held[value.symbol] = held.get(value.symbol, 0) + side * value.qty
        rested = {w.client_order_id for w in before.mirrors.get(account, [])}
        moved = dict(held)
        placed: dict[str, int] = {}
        for fill in fills:  # its owner's working orders' and its resting mirrors'
            if fill.client_order_id is None or fill.client_order_id in rested:
                moved[fill.symbol] = moved.get(fill.symbol, 0) + fill.qty
            elif kind_of(fill.client_order_id) is OrderKind.MIRROR:
                coid = fill.client_order_id
                placed[coid] = placed.get(coid, 0) + fill.qty
        first = Book(held, resting_mirrors(before.orders.get(account, [])))
        second = Book(moved, resting_mirrors(after.orders.get(account, []), rested - cancelled))
        for order in before.working.get(account, []):
            for book, counted in ((first, True), (second, order.client_order_id not in cancelled)):
                if counted:
                    book.send(order.symbol, order.qty, liquidation=order.liquidation, resting=False)
        return first, second, placed

    def _check_sent(
        self,
        step: Step,
        before: Observed,
        after: Observed,
        account: str,
        rows: Sequence[LedgerRow],
        legs: set[str],
        cancelled: Callable[[str], set[str]],
        fills: Mapping[str, Sequence[Fill]],
        windows: Sequence[tuple[datetime, datetime]],
        where: str,
    ) -> None:
        """S9.2, S9.4, S9.5 on every order of the account the engine sent in the step."""
        was, now = self.keys_before[account], self.keys[account]
        cap = was.cap if was.cap == now.cap else None
        blocked = was.blackout != "off" and now.blackout != "off"
        if cap is None and not blocked and not windows:
            return
        first, second, placed = self._books(
            step, before, after, account, cancelled(account), fills[account]
        )
        books = (first, second)
        previous: LedgerRow | None = None
        for row in rows:
            mirror = row.kind == "mirror"
            sibling = (
                mirror
                and previous is not None
                and previous.kind == "mirror"
                and previous.rowid + 1 == row.rowid
                and previous.cause == row.cause
                and sign(previous.qty) == sign(row.qty)
            )  # an OCO pair's second order: one of the two fills, judged with the first
            previous = row
            if row.client_order_id in legs or sibling or row.status == "not_sent":
                continue
            liquidation = row.kind == "liquidation"
            if not liquidation:
                opening = [b.opening(row.symbol, row.qty) for b in books]
                if all(opening):
                    self._judge_opening(row, account, books, opening[0], cap, blocked,
                                        windows, where)  # fmt: skip
            if row.status not in UNSENT:
                first.send(row.symbol, row.qty, liquidation=liquidation, resting=mirror)
                # A mirror placed and filled within the step: filled, as its fills came first.
                filled = placed.get(row.client_order_id, 0) if mirror else 0
                if filled:
                    second.send(row.symbol, filled, liquidation=False, resting=False)
                if row.qty != filled:
                    second.send(row.symbol, row.qty - filled, liquidation=liquidation,
                                resting=mirror)  # fmt: skip

    def _judge_opening(
        self,
        row: LedgerRow,
        account: str,
        books: tuple[Book, Book],
        opening: int,
        cap: Decimal | None,
        blocked: bool,
        windows: Sequence[tuple[datetime, datetime]],
        where: str,
    ) -> None:
        sent = datetime.fromisoformat(row.created_at)
        order = f"{row.kind} order {row.qty:+d} {row.symbol} ({row.client_order_id})"
        what = f"{where}: {order} sent for {account} at {_ct(sent)} opens {opening:+d}"
        if blocked:
            running = [b for b in self.blackouts if b.start <= sent < b.end]
            if running:
                b = max(running, key=lambda b: b.end)
                raise InvariantViolation(
                    f"{what} inside blackout {b.label} ({_ct(b.start)} to {_ct(b.end)}), its "
                    f"blackout being {self.keys[account].blackout} (S9.5: inside an interval an "
                    "opening order of a block or flatten account is rejected)",
                    [_last_rejection(account, "Opening orders are blocked")],
                )
        for close, reset in windows:
            if close <= sent < reset:
                raise InvariantViolation(
                    f"{what} after its session close at {_ct(close)} and before the daily reset "
                    f"at {_ct(reset)}, not unlocked since (S9.4: flattened and LOCKED until the "
                    "daily reset)",
                    [_lock_reason(account, LockReason.SESSION_CLOSE)],
                )
        if cap is None:
            return
        reach = [b.beyond(row.symbol, row.qty, cap) for b in books]
        if all(r is not None for r in reach):
            book = books[0]
            shown = ", ".join(
                f"{s} {book.p.get(s, 0):+d} resting {book.resting.get(s, [0, 0])}"
                for s in sorted(book.p.keys() | book.resting.keys())
            )
            raise InvariantViolation(
                f"{what} with max_contracts {cap}: with its book ({shown or 'flat'}) it "
                f"would reach {min(r for r in reach if r is not None)} weighted contracts "
                "(S9.2: an opening order is clipped so that the position plus the account's "
                "other working opening orders stays within N, and refused while above it)",
                [_last_rejection(account, "max contracts")],
            )

    # -- state after the step ----------------------------------------------------------------

    def _check_session_locks(self, after: Observed, now: datetime, where: str) -> None:
        """S9.4: from the session close to the daily reset (not unlocked since), LOCKED — or
        LIQUIDATE_ONLY with its flatten in flight — with reason session_close or stronger."""
        for account, (close, reset) in sorted(self.closed.items()):
            if account not in after.accounts or not close <= now < reset:
                continue
            risk = self.checker.engine.risk_view(account)
            status, reason = risk.status, risk.lock_reason
            locked = status is RiskStatus.LOCKED or (
                status is RiskStatus.LIQUIDATE_ONLY and risk.flattening
            )
            if not locked or REASON_RANK[reason] < REASON_RANK[LockReason.SESSION_CLOSE]:
                raise InvariantViolation(
                    f"{where}: {account}'s session closed at {_ct(close)} (flatten_at "
                    f"{self.keys[account].values.get('flatten_at')}) and it is {status.value} "
                    f"(reason {reason.value or 'none'}, flatten in flight: {risk.flattening}) "
                    f"before the daily reset at {_ct(reset)} (S9.4: flattened through S5.3 "
                    "with reason session_close, then LOCKED until the daily reset; a stronger "
                    "reason is kept)",
                    [_status(account, RiskStatus.LOCKED)],
                )

    def _check_held(
        self,
        step: Step,
        before: Observed,
        after: Observed,
        rows: Sequence[LedgerRow],
        fills: Mapping[str, Sequence[Fill]],
        where: str,
    ) -> None:
        """S9.2 at the broker: Σ |qty| × weight ≤ N, but for the excuses (:class:`Excuse`).
        A fill of a mirror the account kept when it stopped following (its group deleted with
        its leader, or its membership removed: deletion cancels nothing, S4.5, S8.8) is its
        own, as far as the engine goes: a manual fill."""
        track = self.checker.track
        value = step.value
        for account in sorted(after.accounts):
            cap = self.keys[account].cap
            if cap is None:
                self.excused.pop(account, None)
                continue
            positions = after.broker_positions.get(account, {})
            holding = used(positions)
            if step.action == "set_risk" and getattr(value, "account", None) == account:
                working = {w.client_order_id for w in before.working.get(account, [])}
                working |= {w.client_order_id for w in before.mirrors.get(account, [])}
                self.excused[account] = Excuse("set", step.index, frozenset(working))
            manual = track.manual_trade_at.get(account) == step.index
            traded = isinstance(value, TradeStep) and value.account == account
            if traded and self._reduces_at_once(step, before, after, rows, account):
                assert isinstance(value, TradeStep)
                self._check_reduced(before, value, cap, positions, where)
            left = account not in before.members and any(
                kind_of(f.client_order_id) is OrderKind.MIRROR for f in fills.get(account, [])
            )
            if manual or left or account in track.unseen_trades:
                kept = self.excused.get(account)
                self.excused[account] = Excuse(
                    "manual", step.index, kept.orders if kept is not None else frozenset()
                )
            excuse = self.excused.get(account)
            if holding <= cap:
                if excuse is not None and not (excuse.orders & _engine_orders(after, account)):
                    del self.excused[account]
                continue
            if excuse is None:
                raise InvariantViolation(
                    f"{where}: {account} holds {positions} at the broker, {holding} weighted "
                    f"contracts, above max_contracts {cap}, with no manual fill since it was "
                    "last within it (S9.2: every engine order that opens is clipped to N)",
                    [_position(account, s, q) for s, q in sorted(positions.items())],
                )

    @staticmethod
    def _check_reduced(
        before: Observed, trade: TradeStep, cap: Decimal, positions: Mapping[str, int], where: str
    ) -> None:
        """S9.2 after a manual trade that took the account above N from within it: reduced in
        the trade's symbol by the fewest contracts that bring it to N or below (no more than
        the symbol holds) — whether the broker filled the trade at once or in parts."""
        account, symbol = trade.account, trade.symbol
        traded = dict(before.broker_positions.get(account, {}))
        side = 1 if trade.side == "buy" else -1
        traded[symbol] = traded.get(symbol, 0) + side * trade.qty
        expected = {s: q for s, q in traded.items() if q}
        excess = used(expected) - cap
        if excess > 0:
            unit = weight(symbol)
            fewest = int((excess / unit).to_integral_value(rounding=ROUND_CEILING))
            held = expected[symbol]
            left = sign(held) * (abs(held) - min(fewest, abs(held)))
            expected = {s: q for s, q in {**expected, symbol: left}.items() if q}
        if dict(positions) != expected:
            raise InvariantViolation(
                f"{where}: {account} (max_contracts {cap}) holds {dict(positions)} at the broker "
                f"after its owner's {trade.side} {trade.qty} {symbol} in fills "
                f"{list(trade.fills)} took it from {before.broker_positions.get(account, {})} "
                f"to {traded}; {expected} expected (S9.2: a fill that takes the account above N "
                "is reduced at once, in the symbol of that fill, by the fewest contracts that "
                "bring it to N or below)",
                [_position(account, s, expected.get(s, 0)) for s in sorted(traded)],
            )

    def _reduces_at_once(
        self, step: Step, before: Observed, after: Observed, rows: Sequence[LedgerRow], account: str
    ) -> bool:
        """Whether the engine saw the account's manual fill of this step live and could reduce
        it at once: connected and confirmed throughout, OK with no flatten, within N before,
        nothing held or refused at the broker, its keys unchanged."""
        connection = self.checker.connection_of[account]
        keys = self.keys[account]
        if keys.cap is None or self.keys_before[account].cap != keys.cap:
            return False
        if connection in self.checker.track.held:
            return False
        if any(r.account == account and r.status in UNSENT for r in rows):
            return False
        for seen in (before, after):
            if seen.connections.get(connection) != "connected" or account in seen.unconfirmed:
                return False
            if seen.status.get(account) is not RiskStatus.OK or seen.flattening.get(account):
                return False
        return used(before.broker_positions.get(account, {})) <= keys.cap

    def _check_commissions(
        self,
        step: Step,
        before: Observed,
        after: Observed,
        fills: Mapping[str, Sequence[Fill]],
        where: str,
    ) -> None:
        """S9.1: each fill of ``q`` contracts costs ``q × commission``, over the steps the engine
        could see the account's fills; elsewhere the engine's figure is taken as it stands."""
        engine = self.checker.engine
        for account in sorted(after.accounts):
            charged = engine.account_view(account).commissions
            expected = self.charged.get(account)
            self.charged[account] = charged
            if expected is None or not self._sees_fills(step, before, after, account):
                continue
            keys = self.keys[account]
            new = fills.get(account, [])
            expected += sum((abs(f.qty) * keys.commission(f.symbol) for f in new), Decimal(0))
            if charged != expected:
                shown = ", ".join(f"{f.qty:+d} {f.symbol}" for f in new) or "none"
                raise InvariantViolation(
                    f"{where}: {account} was charged {charged} in commissions, expected "
                    f"{expected} with its fills of the step ({shown}) at commission "
                    f"{keys.values.get('commission', 0)} / {keys.values.get('commissions', {})} "
                    "(S9.1: each fill of q contracts costs q × commission)",
                    [Expectation("account", account, (("commissions", expected),))],
                )

    def _sees_fills(self, step: Step, before: Observed, after: Observed, account: str) -> bool:
        connection = self.checker.connection_of[account]
        value = step.value
        if step.action in ("restart", "set_risk") and getattr(value, "account", account) == account:
            return False
        if isinstance(value, CrashStep) and value.id in (account, connection):
            return False
        return all(
            seen.connections.get(connection) == "connected" and account not in seen.unconfirmed
            for seen in (before, after)
        )


def _engine_orders(after: Observed, account: str) -> set[str]:
    return {w.client_order_id for w in after.working.get(account, [])} | {
        w.client_order_id for w in after.mirrors.get(account, [])
    }


def _position(account: str, symbol: str, qty: int) -> Expectation:
    return Expectation("account", account, (("position", qty),), symbol=symbol)


def _status(account: str, status: RiskStatus) -> Expectation:
    return Expectation("account", account, (("status", status.value),))


def _lock_reason(account: str, reason: LockReason) -> Expectation:
    return Expectation("account", account, (("lock_reason", reason.value),))


def _last_rejection(account: str, text: str) -> Expectation:
    return Expectation("account", account, (("last_rejection", text),))
