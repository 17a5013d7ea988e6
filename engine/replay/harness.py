"""Runs a scenario against the real engine on the paper broker and a virtual clock.

Every step happens at the current virtual time; after each one the harness waits until the
engine has finished all the work it caused, so results never depend on thread timing.

Connections with ``broker = "tradovate-sim"`` run through the Tradovate adapter against the
local Tradovate-compatible server instead (:mod:`brokers.tradovate.sim.replay`): their steps go
to that server, and "finished" also means every request answered and every push handled.

The owner's working orders (``order``, ``oco``, ``modify``, ``cancel``) go to the paper broker's
owner side under the ids the file gives them; a step on an order that no longer works there is
a failure in the report (the broker's message), not an invalid file, and the run goes on.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from brokers.base import Broker, LegRole, WorkingOrder
from brokers.clock import VirtualClock
from brokers.paper import PaperBroker, PaperBrokerError, PlacedOrder
from brokers.tradovate.sim import SimError
from brokers.tradovate.sim.replay import SimBridge
from engine.app.config import TRADOVATE_SIM
from engine.core.engine import Engine, EngineSettings
from engine.core.topology import AccountConfig, CommandRefused, ConnectionConfig, GroupConfig
from engine.domain.activity import Kind, Level
from engine.domain.copying import Membership
from engine.domain.risk_profile import RiskRules
from engine.replay.checks import Failure, evaluate, working_specs
from engine.replay.scenario import (
    CancelStep,
    Expectation,
    FailSnapshotStep,
    FollowerSpec,
    ModifyStep,
    OcoStep,
    OrderRef,
    OrderStep,
    PriceStep,
    Scenario,
    ScenarioError,
    Step,
    TradeStep,
)
from engine.storage.journal import Journal
from engine.storage.store import Store

# Steps whose capability has not landed yet: the file is refused as a whole (exit 2).
UNSUPPORTED_ACTIONS: dict[str, str] = {}
# Steps on an account's own working orders: the paper broker's owner side has them.
OWNER_ORDER_ACTIONS = ("order", "oco", "modify", "cancel")


class StepFailed(Exception):
    """A step the harness could not carry out at run time (a failure in the report)."""


@dataclass
class ScenarioResult:
    name: str
    file: str
    failures: list[Failure] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def check_supported(scenario: Scenario) -> None:
    """Refuse, before anything runs, a scenario that needs a capability not built yet."""
    for step in scenario.steps:
        if step.action in UNSUPPORTED_ACTIONS:
            raise ScenarioError(
                scenario.file,
                f"step {step.index}: {step.action}",
                f"not supported yet ({UNSUPPORTED_ACTIONS[step.action]})",
            )
    for connection in scenario.connections:
        if connection.broker not in ("paper", TRADOVATE_SIM):
            raise ScenarioError(
                scenario.file,
                f"[[connection]] ({connection.id}): broker",
                f"not supported yet (broker {connection.broker!r})",
            )


def _membership(spec: FollowerSpec) -> Membership:
    return Membership(spec.account, spec.ratio, spec.max_qty, spec.symbol_map, copy=spec.copy)


class Harness:
    def __init__(
        self, scenario: Scenario, runtime: str, data_dir: Path, *, journal: Path | None = None
    ) -> None:
        self.scenario = scenario
        self.clock = VirtualClock(scenario.start)
        self.contracts = scenario.contract_table()
        self.broker = PaperBroker(self.clock, self.contracts)
        self.runtime = runtime
        self.data_dir = data_dir
        self.journal_path = journal
        self.store = Store(data_dir / "engine.sqlite")
        self.sim: SimBridge | None = None
        self.errors: tuple[type[Exception], ...] = (PaperBrokerError, StepFailed)
        if any(c.broker == TRADOVATE_SIM for c in scenario.connections):
            self.sim = SimBridge(self.clock, self.contracts, data_dir / "tradovate")
            self.errors = (PaperBrokerError, StepFailed, SimError)
        self.engine = self._new_engine()
        self.failures: list[Failure] = []
        self.placed: dict[str, PlacedOrder] = {}  # the owner's orders by the file's ids

    def _new_engine(self) -> Engine:
        brokers: dict[str, Broker] = {"paper": self.broker}
        if self.sim is not None:
            brokers[TRADOVATE_SIM] = self.sim.broker
        return Engine(
            store=self.store,
            clock=self.clock,
            brokers=brokers,
            contracts=self.contracts,
            settings=EngineSettings(
                runtime=self.runtime,
                max_copy_age=self.scenario.settings.max_copy_age,
                mirror_grace=self.scenario.settings.mirror_grace,
                watch=self.scenario.settings.watch(),
            ),
            journal=Journal(self.journal_path, self.clock) if self.journal_path else None,
        )

    def setup(self) -> None:
        s = self.scenario
        connections = [
            ConnectionConfig(c.id, c.broker, c.state, token_expired=c.state == "reauth_required")
            for c in s.connections
        ]
        accounts = [AccountConfig(a.id, a.connection, a.balance, dict(a.risk)) for a in s.accounts]
        groups = [
            GroupConfig(g.id, g.leader, [_membership(f) for f in g.followers], g.on_drift)
            for g in s.groups
        ]
        self.engine.seed(connections, accounts, groups, blackouts=s.blackouts)
        for c in s.connections:
            held = tuple(a.id for a in s.accounts if a.connection == c.id)
            if self.sim is not None and c.broker == TRADOVATE_SIM:
                self.sim.add_connection(c.id, held, c.state)
                continue
            self.broker.add_accounts(c.id, held)
            if c.state == "disconnected":
                self.broker.drop(c.id)
            elif c.state == "reauth_required":
                self.broker.expire_token(c.id)
        self.engine.start(reconcile=False)
        self.settle()

    def close(self) -> None:
        self.engine.stop()
        self.store.close()
        if self.sim is not None:
            self.sim.close()

    def settle(self) -> None:
        """Wait until the engine (and the local Tradovate, if used) finished all it was given."""
        if self.sim is None:
            self.engine.wait_idle()
        else:
            self.sim.settle(self.engine.wait_idle)

    # -- steps ---------------------------------------------------------------------------------

    def run(self) -> None:
        for step in self.scenario.steps:
            self.apply(step)
            self.settle()

    def apply(self, step: Step) -> None:
        action, value = step.action, step.value
        try:
            if action == "expect":
                assert isinstance(value, Expectation)
                self.failures.extend(evaluate(self.engine, step.index, value, self.working))
            else:
                self._actions[action](value)
        except CommandRefused as refused:
            # A command the rules forbid changes nothing; it is recorded, not fatal.
            self.engine.records.activity(
                Level.INFO,
                Kind.REJECTION,
                f"step {step.index}: {action} refused: {refused}",
                account=_account_of(value),
            )
        except self.errors as error:
            self.failures.append(Failure(step.index, action, "accepted by the broker", str(error)))

    @property
    def _actions(self) -> dict[str, Callable[[Any], object]]:
        engine = self.engine  # read per step: a restart replaces the engine
        at = self._broker_of
        return {
            "price": self._price,
            "trade": self._trade,
            "advance": lambda v: self._advance_to(self.clock.now() + v),
            "advance_to": self._advance_to,
            "disconnect": lambda c: at(c).drop(c),
            "take_offline": engine.take_offline,
            "reconnect": self._reconnect,
            "expire_token": lambda c: at(c).expire_token(c),
            "reauthorize": lambda c: at(c).reauthorize(c),
            "delete_connection": engine.delete_connection,
            "flatten_account": engine.flatten_account,
            "flatten_group": engine.flatten_group,
            "flatten_all": lambda _: engine.flatten_all(),
            "sync": engine.sync,  # confirmed: the orders shown are not checked again
            "sync_group": engine.sync_group,
            "lock": engine.lock,
            "unlock": engine.unlock,
            "set_risk": lambda v: engine.set_risk(v.account, dict(v.limits)),
            "blackout": engine.add_blackout,
            "add_follower": lambda v: engine.add_follower(v.group, _membership(v.follower)),
            "remove_follower": lambda v: engine.remove_follower(v.group, v.account),
            "hold": lambda c: at(c).hold(c),
            "release": lambda c: at(c).release(c),
            "reject_next": lambda v: at(v.connection).reject_next(v.connection, v.count),
            "fail_snapshot": self._fail_snapshot,
            "crash": lambda v: engine.inject_failure(v.actor, v.id),
            "restart": lambda _: self._restart(),
            "order": self._order,
            "oco": self._oco,
            "modify": self._modify,
            "cancel": self._cancel,
        }

    def _restart(self) -> None:
        """The engine stops abruptly — no settling, no goodbye to the broker — and a new one
        starts from the same store; the paper broker keeps its state, as a real one would."""
        self.engine.stop()
        self.store.close()
        self.store = Store(self.data_dir / "engine.sqlite")
        self.engine = self._new_engine()
        self.engine.start(reconcile=True)

    def _fail_snapshot(self, step: FailSnapshotStep) -> None:
        self._broker_of(step.connection).fail_snapshot(step.connection, step.count)

    def _trade(self, trade: TradeStep) -> None:
        sign = 1 if trade.side == "buy" else -1
        self._owner_broker(trade.account).trade(
            trade.account, trade.symbol, sign * trade.qty, trade.fills
        )

    def _owner_broker(self, account: str) -> PaperBroker | SimBridge:
        """The broker of the account's connection, where its owner trades."""
        connection = next((a.connection for a in self.scenario.accounts if a.id == account), "")
        return self._broker_of(connection)

    # -- the owner's working orders ---------------------------------------------------------------

    def _order(self, step: OrderStep) -> None:
        self.placed[step.id] = self._owner_broker(step.account).place_working(
            step.account,
            step.symbol,
            step.signed_qty,
            step.order_type,
            price=step.price,
            stop=step.stop,
            bracket_stop=step.bracket_stop,
            bracket_target=step.bracket_target,
        )

    def _oco(self, step: OcoStep) -> None:
        self.placed[step.id] = self._owner_broker(step.account).place_oco(
            step.account, step.symbol, step.signed_qty, stop=step.stop, target=step.target
        )

    def _modify(self, step: ModifyStep) -> None:
        broker_id = self._broker_id(step.order)
        at = self._owner_broker(step.account)
        at.modify(step.account, broker_id, qty=step.qty, price=step.price, stop=step.stop)

    def _cancel(self, step: CancelStep) -> None:
        """``ID`` of an OCO pair cancels its stop leg, which ends its sibling."""
        placed = self.placed.get(step.order.id)
        ref = step.order
        if ref.leg is None and placed is not None and placed.entry is None:
            ref = OrderRef(ref.id, LegRole.STOP)
        self._owner_broker(step.account).cancel(step.account, self._broker_id(ref))

    def _broker_id(self, ref: OrderRef) -> str:
        placed = self.placed.get(ref.id)
        if placed is None:
            raise StepFailed(f"order {ref.id!r} was not placed (its step failed)")
        found = {None: placed.entry, LegRole.STOP: placed.stop, LegRole.TARGET: placed.target}
        broker_id = found[ref.leg]
        if broker_id is None:
            raise StepFailed(f"the broker placed no {ref}")
        return broker_id

    def working(self, account: str) -> list[WorkingOrder]:
        """The account's orders working at its broker."""
        return self._owner_broker(account).working_orders(account)

    # -- routing steps to the broker of their connection -----------------------------------------

    def _broker_of(self, connection: str) -> PaperBroker | SimBridge:
        if self.sim is not None and connection in self.sim.connections:
            return self.sim
        return self.broker

    def _price(self, value: PriceStep) -> None:
        self.broker.set_price(value.symbol, value.last)
        if self.sim is not None:
            self.sim.set_price(value.symbol, value.last)

    def _reconnect(self, connection: str) -> None:
        if self.sim is not None and connection in self.sim.connections:
            self.sim.restore(connection)  # the outage the user ends, as the paper link's
        self.engine.reconnect(connection)

    def _advance_to(self, instant: datetime) -> None:
        if self.sim is None:
            self.engine.advance_to(instant)
            return
        engine = self.engine
        self.sim.advance_to(
            instant, engine.services.timers.next_due, engine.fire_due_timers, engine.wait_idle
        )

    # -- report ----------------------------------------------------------------------------------

    def final_state(self) -> dict[str, Any]:
        return final_state(self.engine, self.working)


def final_state(
    engine: Engine, working: Callable[[str], list[WorkingOrder]] | None = None
) -> dict[str, Any]:
    """The report's ``final``: every account's status, positions and daily P&L (and the
    orders working at its broker, if any and ``working`` reads them; its S9.3 threshold, if it
    has one; the commissions charged, if it is charged any), every connection's state, every
    group's leader and followers."""
    engine.wait_idle()
    accounts: dict[str, Any] = {}
    for account in sorted(engine.topology.accounts):
        view = engine.account_view(account)
        risk = engine.risk_view(account)
        if view is None or risk is None:
            continue
        accounts[account] = {
            "status": risk.status.value,
            "positions": dict(sorted(view.positions.items())),
            "daily_pnl": float(view.daily_pnl),
        }
        if risk.threshold is not None:
            accounts[account]["threshold"] = float(risk.threshold)
        if view.commissions or RiskRules.of(risk.limits).charges:
            accounts[account]["commissions"] = float(view.commissions)
        orders = working(account) if working is not None else []
        shown = [
            {"symbol": symbol, **spec.shown()}
            for symbol in sorted({order.symbol for order in orders})
            for spec in working_specs(orders, symbol)
        ]
        if shown:
            accounts[account]["working"] = shown
    connections = {
        c: {"state": engine.connection_state(c)} for c in sorted(engine.topology.connections)
    }
    groups = {
        g.id: {"leader": g.leader, "followers": sorted(m.account for m in g.members)}
        for g in sorted(engine.topology.groups.values(), key=lambda g: g.id)
    }
    return {"accounts": accounts, "connections": connections, "groups": groups}


def _account_of(value: object) -> str | None:
    for attribute in ("account",):
        found = getattr(value, attribute, None)
        if isinstance(found, str):
            return found
    follower = getattr(value, "follower", None)
    return getattr(follower, "account", None)


def run_scenario(scenario: Scenario, runtime: str = "deterministic") -> ScenarioResult:
    started = time.perf_counter()
    result = ScenarioResult(scenario.name, scenario.file)
    with tempfile.TemporaryDirectory(prefix="replay-") as tmp:
        harness = Harness(scenario, runtime, Path(tmp))
        try:
            harness.setup()
            harness.run()
            result.final = harness.final_state()
            result.failures = harness.failures
        finally:
            harness.close()
    result.elapsed_s = round(time.perf_counter() - started, 3)
    return result


__all__ = ["Harness", "ScenarioResult", "check_supported", "final_state", "run_scenario"]
