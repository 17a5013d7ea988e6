"""Runs a scenario against the real engine on the paper broker and a virtual clock.

Every step happens at the current virtual time; after each one the harness waits until the
engine has finished all the work it caused, so results never depend on thread timing.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.copy_messages import Membership
from brokers.paper import PaperBroker, PaperBrokerError
from engine.clock import VirtualClock
from engine.core import Engine, EngineSettings
from engine.records import Kind, Level
from engine.replay.checks import Failure, evaluate
from engine.replay.scenario import (
    AddFollowerStep,
    Expectation,
    FollowerSpec,
    PriceStep,
    RejectNextStep,
    RemoveFollowerStep,
    Scenario,
    ScenarioError,
    SetRiskStep,
    Step,
    TradeStep,
)
from engine.store import Store
from engine.topology import AccountConfig, CommandRefused, ConnectionConfig, GroupConfig

# Steps whose capability has not landed yet: the file is refused as a whole (exit 2).
UNSUPPORTED_ACTIONS: dict[str, str] = {
    "crash": "actor crash injection and supervisor restarts",
    "restart": "engine restarts from the store",
}


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
        if step.action == "set_risk" and isinstance(step.value, SetRiskStep):
            if any(value for _, value in step.value.limits):
                _no_triggers(scenario, f"step {step.index}: set_risk")
    for index, account in enumerate(scenario.accounts, 1):
        if any(account.risk.given().values()):
            _no_triggers(scenario, f"[[account]] {index} ({account.id}): risk")
    for connection in scenario.connections:
        if connection.broker != "paper":
            raise ScenarioError(
                scenario.file,
                f"[[connection]] ({connection.id}): broker",
                f"not supported yet (broker {connection.broker!r})",
            )


def _no_triggers(scenario: Scenario, place: str) -> None:
    from engine.replay import features

    if not features.RISK_TRIGGERS:
        raise ScenarioError(scenario.file, place, "not supported yet (automatic risk triggers)")


def _membership(spec: FollowerSpec) -> Membership:
    return Membership(spec.account, spec.ratio, spec.max_qty, spec.symbol_map)


class Harness:
    def __init__(self, scenario: Scenario, runtime: str, data_dir: Path) -> None:
        self.scenario = scenario
        self.clock = VirtualClock(scenario.start)
        self.contracts = scenario.contract_table()
        self.broker = PaperBroker(self.clock, self.contracts)
        self.store = Store(data_dir / "engine.sqlite")
        self.engine = Engine(
            store=self.store,
            clock=self.clock,
            brokers={"paper": self.broker},
            contracts=self.contracts,
            settings=EngineSettings(runtime=runtime),
        )
        self.failures: list[Failure] = []

    def setup(self) -> None:
        s = self.scenario
        connections = [
            ConnectionConfig(c.id, c.broker, c.state, token_expired=c.state == "reauth_required")
            for c in s.connections
        ]
        accounts = [AccountConfig(a.id, a.connection, a.balance, a.risk.given()) for a in s.accounts]
        groups = [
            GroupConfig(g.id, g.leader, [_membership(f) for f in g.followers]) for g in s.groups
        ]
        self.engine.seed(connections, accounts, groups)
        for c in s.connections:
            self.broker.add_accounts(c.id, tuple(a.id for a in s.accounts if a.connection == c.id))
            if c.state == "disconnected":
                self.broker.drop(c.id)
            elif c.state == "reauth_required":
                self.broker.expire_token(c.id)
        self.engine.start(reconcile=False)

    def close(self) -> None:
        self.engine.stop()
        self.store.close()

    # -- steps ---------------------------------------------------------------------------------

    def run(self) -> None:
        for step in self.scenario.steps:
            self.apply(step)
            self.engine.wait_idle()

    def apply(self, step: Step) -> None:
        action, value, engine, broker = step.action, step.value, self.engine, self.broker
        try:
            match action:
                case "price":
                    assert isinstance(value, PriceStep)
                    broker.set_price(value.symbol, value.last)
                case "trade":
                    assert isinstance(value, TradeStep)
                    sign = 1 if value.side == "buy" else -1
                    broker.trade(value.account, value.symbol, sign * value.qty, value.fills)
                case "advance":
                    assert isinstance(value, timedelta)
                    engine.advance_to(self.clock.now() + value)
                case "advance_to":
                    engine.advance_to(value)  # type: ignore[arg-type]
                case "disconnect":
                    broker.drop(str(value))
                case "take_offline":
                    engine.take_offline(str(value))
                case "reconnect":
                    engine.reconnect(str(value))
                case "expire_token":
                    broker.expire_token(str(value))
                case "reauthorize":
                    broker.reauthorize(str(value))
                case "delete_connection":
                    engine.delete_connection(str(value))
                case "flatten_account":
                    engine.flatten_account(str(value))
                case "flatten_group":
                    engine.flatten_group(str(value))
                case "flatten_all":
                    engine.flatten_all()
                case "lock":
                    engine.lock(str(value))
                case "unlock":
                    engine.unlock(str(value))
                case "set_risk":
                    assert isinstance(value, SetRiskStep)
                    engine.set_risk(value.account, dict(value.limits))
                case "add_follower":
                    assert isinstance(value, AddFollowerStep)
                    engine.add_follower(value.group, _membership(value.follower))
                case "remove_follower":
                    assert isinstance(value, RemoveFollowerStep)
                    engine.remove_follower(value.group, value.account)
                case "hold":
                    broker.hold(str(value))
                case "release":
                    broker.release(str(value))
                case "reject_next":
                    assert isinstance(value, RejectNextStep)
                    broker.reject_next(value.connection, value.count)
                case "expect":
                    assert isinstance(value, Expectation)
                    self.failures.extend(evaluate(engine, step.index, value))
                case _:
                    raise ScenarioError(
                        self.scenario.file, f"step {step.index}", f"{action}: not supported yet"
                    )
        except CommandRefused as refused:
            # A command the rules forbid changes nothing; it is recorded, not fatal.
            engine.records.activity(
                Level.INFO,
                Kind.REJECTION,
                f"step {step.index}: {action} refused: {refused}",
                account=_account_of(value),
            )
        except PaperBrokerError as error:
            self.failures.append(Failure(step.index, f"{action}", "accepted by the broker", str(error)))

    # -- report ----------------------------------------------------------------------------------

    def final_state(self) -> dict[str, Any]:
        engine = self.engine
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


__all__ = ["Harness", "ScenarioResult", "check_supported", "run_scenario"]
_ = Decimal  # numbers in step values are Decimals
