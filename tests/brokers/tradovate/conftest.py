"""Builders for the Tradovate adapter's tests: the local server and the adapter over real
sockets on 127.0.0.1, alone (trio tests) or under a real engine (the replay harness's bridge).

``make_tv(tmp_path, connections=..., accounts=..., groups=...)`` seeds and starts an engine whose
connections all use the Tradovate adapter against the local server, each authorized through the
full OAuth round trip, and returns a :class:`TvRig`; every rig is closed after the test.

``async with logins(tmp_path, {"alice": ["A1"]}) as rig:`` serves the local server and builds an
adapter holding a token of each login (no engine: the test makes the sessions, with a
:class:`Recorder` as their sink, and runs ``rig.broker.running()``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import trio

from brokers.base import BrokerEvent
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.tradovate import TradovateBroker
from brokers.tradovate.session import TradovateSession
from brokers.tradovate.sim import RunningSim, SimRequest, serve_sim
from brokers.tradovate.sim.replay import SimBridge
from brokers.tradovate.tokens import Token
from engine.core.engine import Engine, EngineSettings
from engine.core.topology import AccountConfig, ConnectionConfig, GroupConfig
from engine.domain.copying import Membership
from engine.domain.risk_status import RiskStatus
from engine.storage.store import Store
from tests.conftest import START

ES, NQ = "ESZ6", "NQZ6"
T = TypeVar("T")
BROKER = "tradovate-sim"


class Recorder:
    """A sink that keeps every event it is given (trio tests: one thread)."""

    def __init__(self) -> None:
        self.events: list[BrokerEvent] = []

    def __call__(self, event: BrokerEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]


@dataclass
class Logins:
    """The local server and an adapter holding a token of each of its logins."""

    sim: RunningSim
    broker: TradovateBroker
    clock: VirtualClock
    users: dict[str, list[str]]
    sinks: dict[str, Recorder] = field(default_factory=dict)

    def session(self, user: str, accounts: Sequence[str] | None = None) -> TradovateSession:
        """The session of login ``user`` (the connection is named after it)."""
        sink = self.sinks[user] = Recorder()
        return self.broker.session(user, tuple(accounts or self.users[user]), sink)

    def sink(self, user: str) -> Recorder:
        return self.sinks[user]

    def mine(self, user: str, path: str) -> list[SimRequest]:
        """The requests the server received from ``user`` to ``path``."""
        uid = self.sim.exchange.user(user).id
        return [r for r in self.sim.requests_to(path) if r.user_id == uid]

    def of_user(self, user: str) -> list[SimRequest]:
        uid = self.sim.exchange.user(user).id
        return [r for r in self.sim.requests if r.user_id == uid]


def issue_token(sim: RunningSim, user: str, clock: VirtualClock) -> Token:
    """A token of ``user`` from the server's code exchange, as the OAuth round trip gives."""
    code = sim.auth.new_code(sim.exchange.user(user).id, sim.client_id, "http://cb")
    answer = sim.auth.exchange(
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
            "redirect_uri": "http://cb",
        }
    )
    return Token(
        answer["access_token"],
        clock.now() + timedelta(seconds=answer["expires_in"]),
        answer.get("refresh_token"),
    )


@asynccontextmanager
async def logins(
    tmp_path: Path,
    users: Mapping[str, Sequence[str]],
    *,
    settings: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
    prices: Mapping[str, Decimal] | None = None,
) -> AsyncIterator[Logins]:
    clock = VirtualClock(START)
    table = {user: list(accounts) for user, accounts in users.items()}
    async with serve_sim(clock, users=table, **dict(server or {})) as sim:
        values = {"autonomous_timers": False, **dict(settings or {})}
        broker = TradovateBroker(sim.settings(tmp_path / "tokens", **values), clock)
        for user in table:
            broker.tokens.save(user, issue_token(sim, user, clock))
        for symbol, price in (prices if prices is not None else {ES: Decimal(5000)}).items():
            sim.set_price(symbol, price)
        yield Logins(sim, broker, clock, table)


async def until(
    broker: TradovateBroker, condition: Callable[[], bool], timeout: float = 10.0
) -> None:
    """Let the adapter run until ``condition`` holds (for what waits on real-time backoffs)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the condition never held")
        await trio.sleep(0.02)
        await broker.settled()


def member(account: str, ratio: int = 1, max_qty: int | None = None) -> Membership:
    return Membership(account, Decimal(ratio), max_qty)


@dataclass
class TvRig:
    engine: Engine
    bridge: SimBridge
    clock: VirtualClock
    store: Store

    # -- driving ---------------------------------------------------------------------------------

    def settle(self) -> None:
        self.bridge.settle(self.engine.wait_idle)

    def price(self, symbol: str, last: Decimal | int) -> None:
        self.bridge.set_price(symbol, Decimal(last))
        self.settle()

    def trade(self, account: str, qty: int, symbol: str = ES) -> None:
        self.bridge.trade(account, symbol, qty)
        self.settle()

    def control(self, name: str, *args: Any) -> Any:
        """A control of the local server (``drop``, ``freeze``, ``penalize_next``, ...)."""
        result = self.bridge.control(name, *args)
        self.settle()
        return result

    def advance(self, seconds: float) -> None:
        engine = self.engine
        self.bridge.advance_to(
            self.clock.now() + timedelta(seconds=seconds),
            engine.services.timers.next_due,
            engine.fire_due_timers,
            engine.wait_idle,
        )

    def reauthorize(self, connection: str) -> None:
        self.bridge.reauthorize(connection)
        self.settle()

    def close(self) -> None:
        try:
            self.engine.stop()
        finally:
            self.store.close()
            self.bridge.close()

    # -- reading ---------------------------------------------------------------------------------

    def read(self, reader: Callable[[RunningSim], T]) -> T:
        return self.bridge.read(reader)

    def requests(self, path: str) -> list[SimRequest]:
        return list(self.bridge.control("requests_to", path))

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests(path)]

    def state(self, connection: str) -> str | None:
        return self.engine.connection_state(connection)

    def position(self, account: str, symbol: str = ES) -> int:
        view = self.engine.account_view(account)
        assert view is not None, f"no account actor {account}"
        return view.positions.get(symbol, 0)

    def broker_position(self, account: str, symbol: str = ES) -> int:
        position: int = self.bridge.control("position", account, symbol)
        return position

    def status(self, account: str) -> RiskStatus:
        view = self.engine.risk_view(account)
        assert view is not None, f"no risk actor {account}"
        return view.status

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        self.engine.wait_idle()
        self.store.flush()
        return self.store.query(sql, params)

    def activity(self, *, account: str | None = None, connection: str | None = None) -> list[str]:
        column, value = ("account", account) if account is not None else ("connection", connection)
        rows = self.rows(f"SELECT * FROM activity WHERE {column} = ? ORDER BY seq", [value])
        return [f"{r['kind']}: {r['message']}" for r in rows]

    def orders(self, account: str) -> list[sqlite3.Row]:
        return self.rows("SELECT * FROM orders WHERE account = ? ORDER BY rowid", [account])

    def reconciliations(self, account: str) -> list[sqlite3.Row]:
        return self.rows("SELECT * FROM reconciliations WHERE account = ? ORDER BY seq", [account])


class MakeTv(Protocol):
    def __call__(
        self,
        tmp_path: Path,
        *,
        connections: Sequence[str | ConnectionConfig] = ...,
        accounts: Sequence[tuple[str, str] | AccountConfig] = ...,
        groups: Sequence[GroupConfig] = ...,
        prices: Mapping[str, Decimal] = ...,
        runtime: str = ...,
        settings: dict[str, Any] | None = ...,
        server: dict[str, Any] | None = ...,
    ) -> TvRig: ...


DEFAULT_GROUPS = (GroupConfig("g1", "LEAD", [member("F1"), member("F2")]),)


@pytest.fixture
def make_tv() -> Iterator[MakeTv]:
    rigs: list[TvRig] = []

    def build(
        tmp_path: Path,
        *,
        connections: Sequence[str | ConnectionConfig] = ("lead", "prop"),
        accounts: Sequence[tuple[str, str] | AccountConfig] = (
            ("LEAD", "lead"),
            ("F1", "prop"),
            ("F2", "prop"),
        ),
        groups: Sequence[GroupConfig] = DEFAULT_GROUPS,
        prices: Mapping[str, Decimal] = {ES: Decimal(5000)},
        runtime: str = "threads",
        settings: dict[str, Any] | None = None,
        server: dict[str, Any] | None = None,
    ) -> TvRig:
        data = tmp_path / f"engine-{len(rigs)}"
        data.mkdir()
        clock = VirtualClock(START)
        contracts = ContractTable()
        bridge = SimBridge(clock, contracts, data / "tradovate", settings=settings, server=server)
        store = Store(data / "engine.sqlite")
        engine = Engine(
            store=store,
            clock=clock,
            brokers={BROKER: bridge.broker},
            contracts=contracts,
            settings=EngineSettings(runtime=runtime),
        )
        conns = [
            c if isinstance(c, ConnectionConfig) else ConnectionConfig(c, BROKER)
            for c in connections
        ]
        accs = [a if isinstance(a, AccountConfig) else AccountConfig(a[0], a[1]) for a in accounts]
        engine.seed(conns, accs, [GroupConfig(g.id, g.leader, list(g.members)) for g in groups])
        rig = TvRig(engine, bridge, clock, store)
        rigs.append(rig)
        for c in conns:
            bridge.add_connection(c.id, tuple(a.id for a in accs if a.connection == c.id), c.state)
        for symbol, last in prices.items():
            bridge.set_price(symbol, last)
        engine.start(reconcile=False)
        rig.settle()
        return rig

    yield build
    for rig in rigs:
        rig.close()
