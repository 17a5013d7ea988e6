"""Trading safety through the Tradovate adapter, checked from the outside after every step.

:class:`TradovateChecker` is :class:`~tests.properties.engine_model.EngineChecker` on
``broker = "tradovate-sim"`` connections: the replay harness runs the engine, the real adapter
and the local Tradovate server on loopback sockets (:class:`~brokers.tradovate.sim.replay.
SimBridge`), and every invariant of the paper suite is checked after every step — with the local
server's book as the broker's truth. Besides the scenario steps, a step can be a :class:`Fault`:
the local server misbehaving as Tradovate does (TRADOVATE.md, "What the real API does") —
penalty tickets over HTTP and in socket replies, captchas, 423, 429, 401, sync requests answered
with an error or split in parts, ``props`` entities as arrays, fills pushed again as ``Updated``
or withdrawn (``active: false``), sockets ended by ``c[code,"reason"]`` or ``shutdown``.

The checks specific to this broker:

* never over-closed — no step takes a follower past the target ``t(L)`` of its leader's true
  position at the broker in the direction of closing: a follower may be short of its target,
  never reduced below it (S2.2, S3.2); a follower whose own or whose leader's snapshot failed is
  never closed because of it (S3.5). Moves the broker made by itself in the step (a trade by
  the account's owner, a fill it withdrew) are where the follower starts from, and so is the
  retry of a closing copy the broker rejected (S2.8): it is the exit of an earlier leader fill,
  owed since, which leaves the follower where the exit in time would have — short of a later
  entry whose copy it missed (S2.5), never across zero;
* once — no client order id reaches the broker twice, and every one that did is in the ledger
  (S2.6): read from the local server's orders;
* fills once — after every step, a connected account whose positions a snapshot confirmed holds
  the broker's positions in the engine; and once the dust settles (:meth:`settled`: no fault
  left planned, every login back, time moved past every wait) every account is connected and
  confirmed, so every one of them is compared (S3.5, S7.2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brokers.tradovate.sim import RunningSim
from brokers.tradovate.sim.replay import SimBridge
from engine.domain.copy_rule import target
from engine.domain.order_ids import attempt_of
from engine.replay.scenario import Scenario, Step, TradeStep
from tests.properties.engine_model import (
    ES,
    EngineChecker,
    InvariantViolation,
    LedgerRow,
    Observed,
    Working,
)

# Requests a fault can be planned for, and where the adapter meets them: orders and the sync
# request go on the trading socket, the account list (as a login comes up) and the token
# renewal over HTTP.
PLACE = "order/placeorder"
SYNC = "user/syncrequest"
ACCOUNTS = "account/list"
RENEW = "auth/renewaccesstoken"
TICKET_S = 0.01  # a penalty ticket's p-time: waited out in real time
MAX_TICKETS = 5  # the adapter's max_penalty_retries: more tickets than this fail the request

# Engine bugs this machine finds while they are open, and what each is: its regression is a
# strict xfail, and the checker looks past it (``tolerated``) unless
# $ENGINE_PROPERTIES_KNOWN_BUGS=hit. Fixed, a bug's key leaves both and its regression becomes a
# scenario file (``test_engine_invariants.FIXED``). None is open: E8 (fills that waited for a
# late answer replayed with their closing parts sent and their opening parts stale) is fixed,
# its scenarios are s3_5_a_late_leader_answer_*, s3_5_fills_netting_to_nothing_* and
# s3_5_copies_that_waited_for_a_followers_late_answer_*.
KNOWN_BUGS: dict[str, str] = {}
OPEN_KNOWN_BUGS: frozenset[str] = frozenset()

# Faults after which an untouched follower still holds exactly t(L): waited out, or read the
# same however the broker frames it (S2.2 holds through them).
TRANSPARENT = frozenset({"arrays", "split_sync", "push_again", "close", "shutdown"})


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the local Tradovate. ``target`` is a login (a connection) or, for
    ``push_again`` and ``withdraw``, an account; ``count`` is how many requests it meets (for
    ``split_sync`` the parts of an answer, for ``push_again`` the fills pushed again, for
    ``arrays`` 1 on and 0 off)."""

    kind: str
    target: str
    endpoint: str | None = None
    count: int = 1
    detail: str = ""

    def __str__(self) -> str:
        where = f" on {self.endpoint}" if self.endpoint else ""
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.kind} ×{self.count} for {self.target}{where}{extra}"

    @property
    def transparent(self) -> bool:
        if self.kind == "ticket":
            return self.count <= MAX_TICKETS
        return self.kind in TRANSPARENT


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


class TradovateChecker(EngineChecker):
    """The harness on tradovate-sim connections plus the invariants; ``apply`` takes scenario
    steps and :class:`Fault` values alike."""

    def __init__(
        self,
        scenario: Scenario,
        data_dir: Path,
        *,
        group: str = "g1",
        tolerated: frozenset[str] = frozenset(),
    ) -> None:
        self.tolerated = tolerated  # keys of KNOWN_BUGS the checks look past
        # The broker's own moves in the step being applied: (account, symbol) -> quantity.
        self.moved: dict[tuple[str, str], int] = {}
        # Where the ledger and the activity log stood before the step being applied.
        self.marks = (0, 0)
        super().__init__(scenario, data_dir, group=group)

    @property
    def bridge(self) -> SimBridge:
        sim = self.harness.sim
        assert sim is not None, "the scenario has no tradovate-sim connection"
        return sim

    # -- driving -----------------------------------------------------------------------------

    def apply(self, action: str, value: object) -> None:
        """Run one step — a scenario step, or a :class:`Fault` — and check every invariant."""
        self.marks = (self.observed.ledger_rowid, self.observed.activity_seq)
        if not isinstance(value, Fault):
            self.moved = self._manual_move(value)
            super().apply(action, value)
            return
        step = Step(len(self.steps) + 1, action, value)
        self.steps.append(step)
        before = self.observed
        self.moved = {}
        self._disturb_fault(value, before)
        self._run_fault(value)
        after = self.observe()
        rows = self.ledger_since(before.ledger_rowid)
        activity = self.activity_since(before.activity_seq)
        self._disturb_after(step, before, after, rows, activity)
        where = f"step {step.index} ({value})"
        self.check_step(step, before, after, rows, activity, where)
        self.check_state(after, where, before)
        self.observed = after

    def _manual_move(self, value: object) -> dict[tuple[str, str], int]:
        if not isinstance(value, TradeStep):
            return {}
        sign = 1 if value.side == "buy" else -1
        return {(value.account, value.symbol): sign * value.qty}

    def _run_fault(self, fault: Fault) -> None:
        bridge, kind, who = self.bridge, fault.kind, fault.target
        match kind:
            case "ticket":
                bridge.control("penalize_next", who, fault.count, TICKET_S, fault.endpoint)
            case "captcha":
                bridge.control("captcha_next", who, fault.endpoint)
            case "throttle":
                bridge.control("throttle_next", who, fault.count, fault.endpoint)
            case "lockout":
                bridge.read(lambda sim: sim.lock_out(who, True, endpoint=fault.endpoint))
            case "unauthorized":
                bridge.control("unauthorized_next", who, fault.count, fault.endpoint)
            case "sync_error":
                bridge.control("answer_next", who, SYNC, fault.detail, 200, fault.count)
            case "split_sync":
                bridge.control("split_sync", who, fault.count)
            case "arrays":
                bridge.control("entity_arrays", who, bool(fault.count))
            case "push_again":
                ids = bridge.control("fill_ids", who)[-fault.count :]
                if ids:
                    bridge.control("push_fill_again", *ids)
            case "withdraw":
                withdrawn = bridge.read(lambda sim: _withdraw_last(sim, who))
                if withdrawn is not None:
                    symbol, qty = withdrawn
                    self.moved = {(who, symbol): qty}
            case "close":
                bridge.control("close_socket", who, 1001, fault.detail)
            case "shutdown":
                bridge.control("shutdown", who, fault.detail, "The server is going down")
            case _:
                raise ValueError(f"unknown fault {kind!r}")

    def _disturb_fault(self, fault: Fault, before: Observed) -> None:
        """The followers a fault may leave short of an exact copy (the exact-copy invariant
        no longer applies to them): those of the login it meets, everyone when it is the
        leader's — or, for a withdrawn fill, the account's and, for a leader's, everyone."""
        leader = before.leader
        leader_connection = self.connection_of.get(leader or "")
        if fault.kind == "withdraw":
            if fault.target == leader:
                self._disturb(self._everyone())
            else:
                self._disturb([fault.target])
            return
        if fault.kind in ("close", "shutdown") and fault.target == leader_connection:
            self.track.leader_known = False  # it reconnects within the step, and syncs again
        if fault.transparent:
            return
        self._disturb(self.accounts_on(fault.target))
        if fault.target == leader_connection:
            self._disturb(self._everyone())

    def settled(self) -> None:
        """Once the dust settles — no fault planned, every login back, every wait over —
        every connection is connected and every account's positions are confirmed: the
        fills-once invariant then covers every account."""
        observed = self.observed
        down = sorted(c for c, state in observed.connections.items() if state != "connected")
        unconfirmed = sorted(observed.unconfirmed)
        if down or unconfirmed:
            raise InvariantViolation(
                f"after settling: connections {down} not connected, accounts {unconfirmed} "
                "not confirmed (S3.5: an unknown answer is asked again until it comes)"
            )

    # -- reading -----------------------------------------------------------------------------

    def observe(self) -> Observed:
        """As the paper checker sees it, with the local server's book as the broker's."""
        self.harness.settle()
        seen = super().observe()
        declared = [a.id for a in self.scenario.accounts]
        positions, working = self.bridge.read(lambda sim: _book(sim, declared))
        return dataclasses.replace(seen, broker_positions=positions, working=working)

    # -- invariants ----------------------------------------------------------------------------

    def check_step(
        self,
        step: Step,
        before: Observed,
        after: Observed,
        rows: list[LedgerRow],
        activity: list[Any],
        where: str,
    ) -> None:
        super().check_step(step, before, after, rows, activity, where)
        self._check_not_over_closed(before, after, rows, activity, where)

    def _check_not_over_closed(
        self,
        before: Observed,
        after: Observed,
        rows: list[LedgerRow],
        activity: list[Any],
        where: str,
    ) -> None:
        """No follower is taken past ``t(L)`` of its leader's true position in the direction
        of closing: from where the step found it (plus the broker's own moves in the step), a
        move that reduces it or takes it across zero stops at the target (S2.2, S3.2, S3.5)."""
        leader = after.leader
        if leader is None or before.leader != leader:
            return
        lead = after.broker_positions.get(leader, {}).get(ES, 0)
        for account, member in sorted(after.members.items()):
            if account not in before.members:
                continue
            symbol = self.mapped_symbol(member)
            start = before.broker_positions.get(account, {}).get(symbol, 0)
            start += self.moved.get((account, symbol), 0)
            start += sum(r.qty for r in _retries(rows, account, symbol) if r.status == "filled")
            end = after.broker_positions.get(account, {}).get(symbol, 0)
            want = target(lead, member.ratio, member.max_qty)
            closing = abs(end) < abs(start) or _sign(end) == -_sign(start) != 0
            beyond = start >= want > end or start <= want < end
            if closing and beyond:
                sent = ", ".join(
                    f"{r.kind} {r.qty:+d} ({r.status})" for r in rows if r.account == account
                )
                raise InvariantViolation(
                    f"{where}: follower {account} (ratio {member.ratio}, max_qty "
                    f"{member.max_qty}) went {start:+d} → {end:+d} {symbol} while its target "
                    f"is {want:+d} for the leader's {lead:+d} ES at the broker — closed past "
                    f"it (S2.2, S3.2, S3.5); the engine sent: {sent or 'nothing'}"
                )

    def _check_unknown_is_not_flat(
        self, after: Observed, rows: list[LedgerRow], where: str
    ) -> None:
        """As on the paper broker, for the accounts whose connection — and whose leader's —
        is still connected after the step. An order can take its own login down (a captcha
        or a 429 in its answer: locked out), which leaves the account unconfirmed afterwards
        though it was confirmed when the order was decided; what such an order did is
        judged by the over-close invariant, on the broker's positions."""
        up = {a for a, c in self.connection_of.items() if after.connections.get(c) == "connected"}
        if after.leader is not None and after.leader not in up:
            return
        super()._check_unknown_is_not_flat(after, [r for r in rows if r.account in up], where)

    def _check_once(self, activity: list[Any], where: str) -> None:
        """S2.6 at the local server: no client order id on two of its orders, and every one it
        holds is in the ledger."""
        ids = self.bridge.read(
            lambda sim: [o.cl_ord_id for o in sim.exchange.orders.values() if o.cl_ord_id]
        )
        twice = sorted({c for c in ids if ids.count(c) > 1})
        if twice:
            raise InvariantViolation(f"{where}: client order ids placed twice: {twice} (S2.6)")
        ledger = {r[0] for r in self.engine.store.query("SELECT client_order_id FROM orders")}
        missing = [c for c in ids if c not in ledger]
        if missing:
            raise InvariantViolation(
                f"{where}: orders reached the broker without a ledger row: {missing} (S2.6)"
            )

    def _check_no_flip(
        self, step: Step, before: Observed, after: Observed, rows: list[LedgerRow], where: str
    ) -> None:
        """As on the paper broker, but for a step in which the broker withdrew a follower's
        fill: that moves the follower by itself, across zero too (the over-close check still
        judges what the engine did from there)."""
        value = step.value
        if isinstance(value, Fault) and value.kind == "withdraw" and value.target != after.leader:
            return
        super()._check_no_flip(step, before, after, rows, where)

    # -- report --------------------------------------------------------------------------------

    def notable(self, step: Step) -> list[str]:
        """What the last step made happen, for the run's statistics (``make soak``)."""
        rows = self.engine.store.query(
            "SELECT kind, status, account FROM orders WHERE rowid > ?", (self.marks[0],)
        )
        activity = self.engine.store.query(
            "SELECT kind, level, message FROM activity WHERE seq > ?", (self.marks[1],)
        )
        seen = {f"{r['kind']} order {r['status']}" for r in rows}
        for row in activity:
            message = row["message"]
            if "unknown: the snapshot" in message:
                seen.add("a snapshot unknown")
            elif "corrected fill" in message:
                seen.add("a fill withdrawn")
            elif "rate_limited" in message:
                seen.add("a login locked out")
            elif row["kind"] == "reconciliation" and "toward the leader" in message:
                seen.add("a reconciliation")
        if isinstance(step.value, Fault):
            seen.add(f"fault {step.value.kind}")
        return sorted(seen)

    def describe(self) -> str:
        """The steps applied so far, one a line."""
        return "\n".join(f"  step {s.index}: {s.action} {s.value}" for s in self.steps)


def _book(
    sim: RunningSim, accounts: list[str]
) -> tuple[dict[str, dict[str, int]], dict[str, list[Working]]]:
    """Positions (non-zero, by symbol) and the engine's working orders of ``accounts``, from
    the local server's book (run in its thread)."""
    exchange = sim.exchange
    ids = {a: exchange.account(a).id for a in accounts}
    positions: dict[str, dict[str, int]] = {a: {} for a in accounts}
    working: dict[str, list[Working]] = {a: [] for a in accounts}
    names = {i: a for a, i in ids.items()}
    for (account_id, contract_id), position in exchange.positions.items():
        name = names.get(account_id)
        if name is not None and position.net_pos:
            positions[name][exchange.contracts[contract_id].name] = position.net_pos
    for order in exchange.orders.values():
        name = names.get(order.account_id)
        if name is None or not order.working or order.cl_ord_id is None:
            continue
        symbol = exchange.contracts[order.contract_id].name
        qty = order.side * order.remaining
        working[name].append(Working(order.cl_ord_id, symbol, qty, order.liquidation))
    return positions, working


def _retries(rows: list[LedgerRow], account: str, symbol: str) -> list[LedgerRow]:
    """The retries of rejected closing copies (attempt 2 and on) among ``rows``."""
    return [
        r
        for r in rows
        if r.account == account
        and r.symbol == symbol
        and r.kind == "copy"
        and attempt_of(r.client_order_id) > 1
    ]


def _withdraw_last(sim: RunningSim, account: str) -> tuple[str, int] | None:
    """Withdraw the account's latest fill still active (run in the server's thread); the
    symbol and the quantity it moved the position by, or ``None`` when it has none."""
    exchange = sim.exchange
    account_id = exchange.account(account).id
    active = [f for f in exchange.fills if f.account_id == account_id and f.active]
    if not active:
        return None
    fill = active[-1]
    exchange.withdraw_fill(fill.id)
    return exchange.contracts[fill.contract_id].name, -fill.side * fill.qty
