"""Shared builders for tests that drive the real engine: an :class:`Engine` on a
:class:`PaperBroker` with a :class:`VirtualClock` and a temporary :class:`Store`.

``make_engine(tmp_path, runtime=..., connections=..., accounts=..., groups=...)`` seeds and
starts an engine and returns a :class:`Rig` (engine, broker, clock, store plus a few readers);
every rig a test builds is stopped and closed after the test.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pytest

from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.core.engine import Engine, EngineSettings
from engine.core.topology import AccountConfig, ConnectionConfig, GroupConfig
from engine.domain.copying import Membership
from engine.domain.risk_profile import RiskValue
from engine.domain.risk_status import RiskStatus
from engine.host.address import Address
from engine.storage.store import Store

START = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)  # a Tuesday, 09:00 in Chicago: no reset near
ES, NQ, MES = "ESZ6", "NQZ6", "MESZ6"
PRICES: Mapping[str, Decimal] = {ES: Decimal(5000), NQ: Decimal(20000), MES: Decimal(5000)}
RUNTIMES = ["deterministic", "threads"]


def member(account: str, ratio: str | int = 1, max_qty: int | None = None, **kw: Any) -> Membership:
    symbol_map = tuple(sorted(kw.pop("symbol_map", {}).items()))
    return Membership(account, Decimal(ratio), max_qty, symbol_map, **kw)


# The default setup: a leader and two followers, each on its own login.
DEFAULT_CONNECTIONS: tuple[str, ...] = ("lead", "f1", "f2")
DEFAULT_ACCOUNTS: tuple[tuple[str, str], ...] = (("LEAD", "lead"), ("F1", "f1"), ("F2", "f2"))
DEFAULT_GROUPS: tuple[GroupConfig, ...] = (GroupConfig("g1", "LEAD", [member("F1"), member("F2")]),)


@dataclass
class Rig:
    engine: Engine
    broker: PaperBroker
    clock: VirtualClock
    store: Store
    runtime: str

    # -- driving ---------------------------------------------------------------------------------

    def idle(self) -> None:
        self.engine.wait_idle()

    def trade(
        self, account: str, qty: int, symbol: str = ES, fills: tuple[int, ...] | None = None
    ) -> None:
        """The account's owner trades at the broker; the engine settles."""
        self.broker.trade(account, symbol, qty, fills)
        self.idle()

    def price(self, symbol: str, last: Decimal | int) -> None:
        self.broker.set_price(symbol, Decimal(last))
        self.idle()

    def tell(self, address: Address, message: object) -> None:
        self.engine.runtime.tell(address, message)
        self.idle()

    def advance(self, seconds: float) -> None:
        self.engine.advance_to(self.clock.now() + timedelta(seconds=seconds))

    def restart(self, *, reconcile: bool = True, stopped: Callable[[], None] | None = None) -> None:
        """Stop the engine and start a new one on the same store, broker and clock;
        ``stopped`` runs in between (what a kill left on disk, say)."""
        old = self.engine
        old.stop()
        if stopped is not None:
            stopped()
        self.engine = Engine(
            store=self.store,
            clock=self.clock,
            brokers={"paper": self.broker},
            contracts=old.contracts,
            settings=old.settings,
        )
        self.engine.start(reconcile=reconcile)

    def close(self) -> None:
        """Stop the engine and close the store (safe to call twice)."""
        try:
            self.engine.stop()
        finally:
            self.store.close()

    # -- reading ---------------------------------------------------------------------------------

    def position(self, account: str, symbol: str = ES) -> int:
        view = self.engine.account_view(account)
        assert view is not None, f"no account actor {account}"
        return view.positions.get(symbol, 0)

    def broker_position(self, account: str, symbol: str = ES) -> int:
        info = self.broker.positions(account).get(symbol)
        return 0 if info is None else info.qty

    def status(self, account: str) -> RiskStatus:
        view = self.engine.risk_view(account)
        assert view is not None, f"no risk actor {account}"
        return view.status

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        self.idle()
        self.store.flush()
        return self.store.query(sql, params)

    def activity(
        self, account: str | None = None, kind: str | None = None, connection: str | None = None
    ) -> list[sqlite3.Row]:
        where, params = _where(account=account, kind=kind, connection=connection)
        return self.rows(f"SELECT * FROM activity{where} ORDER BY seq", params)

    def messages(self, account: str | None = None, kind: str | None = None) -> list[str]:
        return [r["message"] for r in self.activity(account, kind)]

    def orders(self, account: str | None = None, kind: str | None = None) -> list[sqlite3.Row]:
        where, params = _where(account=account, kind=kind)
        return self.rows(f"SELECT * FROM orders{where} ORDER BY rowid", params)

    def order_qtys(self, account: str, kind: str | None = "copy") -> list[int]:
        return [r["qty"] for r in self.orders(account, kind)]

    def reconciliations(self, account: str | None = None) -> list[sqlite3.Row]:
        where, params = _where(account=account)
        return self.rows(f"SELECT * FROM reconciliations{where} ORDER BY seq", params)


def _where(**filters: str | None) -> tuple[str, list[str]]:
    given = {k: v for k, v in filters.items() if v is not None}
    if not given:
        return "", []
    return " WHERE " + " AND ".join(f"{k} = ?" for k in given), list(given.values())


class MakeEngine(Protocol):
    def __call__(
        self,
        tmp_path: Path,
        runtime: str = "deterministic",
        *,
        connections: Sequence[str | ConnectionConfig] = ...,
        accounts: Sequence[tuple[str, str] | AccountConfig] = ...,
        groups: Sequence[GroupConfig] = ...,
        profiles: Mapping[str, Mapping[str, RiskValue]] = ...,
        prices: Mapping[str, Decimal] = ...,
        max_copy_age: timedelta = ...,
        start: datetime = ...,
        before_start: Callable[[PaperBroker], None] | None = ...,
        make_broker: Callable[[VirtualClock, ContractTable], PaperBroker] = ...,
    ) -> Rig: ...


def _connection(spec: str | ConnectionConfig) -> ConnectionConfig:
    if isinstance(spec, ConnectionConfig):
        return spec
    return ConnectionConfig(spec)


def _account(spec: tuple[str, str] | AccountConfig) -> AccountConfig:
    if isinstance(spec, AccountConfig):
        return spec
    return AccountConfig(spec[0], spec[1])


@pytest.fixture
def make_engine() -> Iterator[MakeEngine]:
    rigs: list[Rig] = []

    def build(
        tmp_path: Path,
        runtime: str = "deterministic",
        *,
        connections: Sequence[str | ConnectionConfig] = DEFAULT_CONNECTIONS,
        accounts: Sequence[tuple[str, str] | AccountConfig] = DEFAULT_ACCOUNTS,
        groups: Sequence[GroupConfig] = DEFAULT_GROUPS,
        profiles: Mapping[str, Mapping[str, RiskValue]] | None = None,
        prices: Mapping[str, Decimal] = PRICES,
        max_copy_age: timedelta = timedelta(seconds=10),
        start: datetime = START,
        before_start: Callable[[PaperBroker], None] | None = None,
        make_broker: Callable[[VirtualClock, ContractTable], PaperBroker] = PaperBroker,
    ) -> Rig:
        """``profiles`` are the named risk profiles (S9.7) the accounts may use.
        ``before_start`` may trade at the broker before the engine starts (positions the
        accounts already hold); ``prices`` are set before it and again after the start.
        ``make_broker`` builds the broker (a paper broker that answers some requests later,
        say)."""
        data = tmp_path / f"engine-{len(rigs)}"
        data.mkdir()
        clock = VirtualClock(start)
        contracts = ContractTable()
        broker = make_broker(clock, contracts)
        store = Store(data / "engine.sqlite")
        engine = Engine(
            store=store,
            clock=clock,
            brokers={"paper": broker},
            contracts=contracts,
            settings=EngineSettings(runtime=runtime, max_copy_age=max_copy_age),
        )
        conns = [_connection(c) for c in connections]
        accs = [_account(a) for a in accounts]
        # fresh copies: the engine keeps (and mutates) what it is given
        grps = [GroupConfig(g.id, g.leader, list(g.members), g.on_drift) for g in groups]
        engine.seed(conns, accs, grps, profiles=profiles)
        for c in conns:
            broker.add_accounts(c.id, tuple(a.id for a in accs if a.connection == c.id))
            if c.state == "disconnected":
                broker.drop(c.id)
            elif c.state == "reauth_required":
                broker.expire_token(c.id)
        rig = Rig(engine, broker, clock, store, runtime)
        rigs.append(rig)
        if before_start is not None:
            for symbol, last in prices.items():
                broker.set_price(symbol, last)
            before_start(broker)
        engine.start(reconcile=False)
        for symbol, last in prices.items():
            broker.set_price(symbol, last)
        engine.wait_idle()
        return rig

    yield build
    for rig in rigs:
        rig.close()


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    """Parametrizes a test over both runtimes."""
    value: str = request.param
    return value


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else is already listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield holder.getsockname()[1]


# The longest tests are handed out first, longest first: the suite runs on both cores
# (pytest-xdist), and a long test collected last would run alone at the end while the other
# core waits.
LONG_FIRST = (
    "tests/properties/test_tradovate_safety.py",
    "tests/properties/",
    "tests/docs/",
    "tests/engine/live/test_kill9.py",
    "tests/engine/test_long_run.py",
)


def _rank(item: pytest.Item) -> int:
    for rank, prefix in enumerate(LONG_FIRST):
        if item.nodeid.startswith(prefix):
            return rank
    return len(LONG_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the collection order within each rank
