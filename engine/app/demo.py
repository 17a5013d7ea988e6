"""The demo behind ``make run``: a setup to copy between and a market that keeps it busy.

The setup is one leader and three followers: ``DEMO-LEAD`` on its own login (``demo-lead``) and
three prop accounts on one login (``demo-prop``), as a trader with several prop accounts has
them, each following at its own terms (ratio 1; ratio 2 capped at 4; ratio 0.5 mapped from ES to
MES). It runs on the paper broker, or on the local Tradovate server (``--tradovate-sim``), where
its connections wait for authorization like any real broker's. The three followers copy orders
(S8.1): the leader's working orders and brackets are mirrored at their broker. ``DEMO-F3`` trades
under a prop-firm style profile (S9.7, :data:`DEMO_PROFILES`): commissions, a contract cap with
its micros counted at 0.1, and an end-of-day trailing max loss, so the Cockpit shows a threshold
and the contracts in use. Its values are generous for the demo leader, which trades far more often
than a person: a normal demo run neither locks the account nor cuts its copies.

The market is a random walk on tick sizes from a seeded :class:`random.Random`, so a ``--seed``
replays the same prices and the same leader trades. The demo leader trades 1-3 contracts now and
then, sometimes in partial fills, and closes down once it holds 3 or more, so positions stay
small; now and then it places a bracket instead — a limit entry two ticks from the market with
a stop-loss and a take-profit — which its followers mirror with their stops at the broker.
Both are trio tasks acting directly on a :class:`Venue`: the in-process paper broker (it is
thread-safe and never blocks) or the local Tradovate server (in the same trio loop).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import structlog
import trio

from brokers.base import OrderType
from brokers.paper import PaperBroker, PaperBrokerError
from engine.core.engine import Engine
from engine.core.setup_changes import initial_state
from engine.core.topology import AccountConfig, ConnectionConfig, GroupConfig, Topology
from engine.domain.copying import CopyMode, Membership
from engine.domain.risk_profile import RiskValue

log = structlog.get_logger("engine.app.demo")

LEADER = "DEMO-LEAD"
LOCKED = "DEMO-F2"  # the follower the hidden ``--signal-commands`` lock applies to
GROUP = "demo"
LEADER_CONNECTION = "demo-lead"
PROP_CONNECTION = "demo-prop"
PROFILE = "demo-eval"  # the prop-firm style profile DEMO-F3 trades under

# S9: what a prop firm's evaluation account might set, made roomy for a leader trading every few
# seconds. Its commissions come to some $200 an hour there, and NQ copied at ratio 0.5 swings a few
# thousand dollars in a day: a $10,000 max loss (a real $50K evaluation's is nearer $2,000) leaves
# a day of demo well clear of the threshold. The demo leader seldom holds more than 5 of a symbol:
# 3 NQ and 3 MES for DEMO-F3, 3.3 contracts, so a cap of 10 leaves room for resting brackets too.
DEMO_PROFILES: Mapping[str, Mapping[str, RiskValue]] = {
    PROFILE: {
        "commission": Decimal("0.50"),  # per contract per side
        "commissions": {"MES": Decimal("0.25")},  # the micro's own
        "max_contracts": Decimal(10),  # micros count 0.1
        "max_loss": Decimal(10000),
        "max_loss_mode": "eod_trailing",
        "max_loss_stop": Decimal(0),  # stops trailing at the starting balance
    }
}

# How often things happen, in seconds.
TICK_INTERVAL = 0.25
LEADER_INTERVAL = (3.0, 8.0)


def demo_setup(
    broker: str = "paper",
) -> tuple[list[ConnectionConfig], list[AccountConfig], list[GroupConfig]]:
    """The demo's connections on ``broker``, accounts and copy group, as ``Engine.seed`` takes
    them. A paper connection starts connected; a Tradovate one waits for its authorization."""
    state = initial_state(broker)
    connections = [
        ConnectionConfig(name, broker, state, token_expired=state != "connected")
        for name in (LEADER_CONNECTION, PROP_CONNECTION)
    ]
    accounts = [
        AccountConfig(LEADER, LEADER_CONNECTION),
        AccountConfig("DEMO-F1", PROP_CONNECTION),
        AccountConfig("DEMO-F2", PROP_CONNECTION),
        AccountConfig("DEMO-F3", PROP_CONNECTION, profile=PROFILE),
    ]
    orders = CopyMode.ORDERS  # ES→MES keeps the price scale (S8.2): one tick size
    members = [
        Membership("DEMO-F1", Decimal(1), copy=orders),
        Membership("DEMO-F2", Decimal(2), max_qty=4, copy=orders),
        Membership("DEMO-F3", Decimal("0.5"), symbol_map=(("ES", "MES"),), copy=orders),
    ]
    return connections, accounts, [GroupConfig(GROUP, LEADER, members)]


def demo_profiles() -> dict[str, dict[str, RiskValue]]:
    """The demo's named profiles, fresh copies for ``Engine.seed`` (which keeps them)."""
    return {
        name: {key: dict(v) if isinstance(v, Mapping) else v for key, v in keys.items()}
        for name, keys in DEMO_PROFILES.items()
    }


def seed_if_empty(engine: Engine, broker: str = "paper") -> bool:
    """Write the demo setup and its profiles into a fresh store; leave a store that has a setup
    alone.

    Returns whether it seeded (a fresh start) or not (a restart on an existing store)."""
    if engine.topology.connections:
        return False
    engine.seed(*demo_setup(broker), profiles=demo_profiles())
    return True


def describe_groups(topology: Topology) -> list[str]:
    """One readable line per copy group: ``demo: DEMO-LEAD → DEMO-F1 x1, DEMO-F2 x2 max 4``."""
    lines = []
    for group in topology.groups.values():
        terms = []
        for m in group.members:
            term = f"{m.account} x{m.ratio}"
            if m.max_qty is not None:
                term += f" max {m.max_qty}"
            if m.symbol_map:
                term += " " + ",".join(f"{a}→{b}" for a, b in m.symbol_map)
            if m.copy is CopyMode.ORDERS:
                term += " copies orders"
            if m.disable_reason:
                term += f" (disabled: {m.disable_reason})"
            terms.append(term)
        lines.append(f"{group.id}: {group.leader} → {', '.join(terms) or 'no followers'}")
    return lines


# --- the market ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instrument:
    """A simulated contract; ``mirrors`` are contracts quoted at the same price (micros)."""

    symbol: str
    start: Decimal
    tick: Decimal
    mirrors: tuple[str, ...] = ()


DEMO_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("ESZ6", Decimal("5000.00"), Decimal("0.25"), mirrors=("MESZ6",)),
    Instrument("NQZ6", Decimal("18000.00"), Decimal("0.25"), mirrors=("MNQZ6",)),
)

# Ticks moved per step: mostly small, drifting nowhere.
_STEPS = (-2, -1, -1, 0, 0, 0, 1, 1, 2)


class Market:
    """A random walk in whole ticks, one price per instrument (and its mirrors)."""

    def __init__(self, rng: random.Random, instruments: Sequence[Instrument]) -> None:
        self._rng = rng
        self._instruments = tuple(instruments)
        self._prices = {i.symbol: i.start for i in self._instruments}

    @property
    def symbols(self) -> list[str]:
        return [i.symbol for i in self._instruments]

    def quotes(self) -> dict[str, Decimal]:
        """Every quoted symbol at its current price (mirrors included)."""
        out: dict[str, Decimal] = {}
        for instrument in self._instruments:
            price = self._prices[instrument.symbol]
            out[instrument.symbol] = price
            for mirror in instrument.mirrors:
                out[mirror] = price
        return out

    def resume(self, prices: Mapping[str, Decimal]) -> None:
        """Go on from ``prices`` (a persisted broker's last prices) instead of the start."""
        for instrument in self._instruments:
            price = prices.get(instrument.symbol)
            if price is not None and price > 0:
                self._prices[instrument.symbol] = price

    def move(self, symbol: str, last: Decimal) -> dict[str, Decimal] | None:
        """Put the instrument ``symbol`` is (or mirrors) at ``last``, for the walk to go on from
        there: its quotes now (it and its mirrors), or ``None`` when the walk has no such
        symbol (a price set by hand at the paper desk, :mod:`engine.app.paper_desk`)."""
        for instrument in self._instruments:
            if symbol == instrument.symbol or symbol in instrument.mirrors:
                self._prices[instrument.symbol] = last
                return dict.fromkeys((instrument.symbol, *instrument.mirrors), last)
        return None

    def price(self, symbol: str) -> tuple[Decimal, Decimal]:
        """The instrument's last price and tick size."""
        for instrument in self._instruments:
            if symbol == instrument.symbol:
                return self._prices[symbol], instrument.tick
        raise KeyError(symbol)

    def step(self) -> dict[str, Decimal]:
        """Move every price by a few ticks (never below 100 ticks) and return the quotes."""
        for instrument in self._instruments:
            price = self._prices[instrument.symbol] + self._rng.choice(_STEPS) * instrument.tick
            self._prices[instrument.symbol] = max(price, 100 * instrument.tick)
        return self.quotes()


# --- the demo leader ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaderTrade:
    """One trade of the demo leader: a market order, filled at once or in ``fills`` parts."""

    symbol: str
    qty: int
    fills: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class LeaderBracket:
    """A bracket of the demo leader: a limit entry of ``qty`` at ``price`` whose stop-loss at
    ``stop`` and take-profit at ``target`` work once it fills (S8.2)."""

    symbol: str
    qty: int
    price: Decimal
    stop: Decimal
    target: Decimal


BRACKET_TICKS = (2, 8, 12)  # the entry, the stop-loss and the take-profit, in ticks


class DemoLeader:
    """Decides the demo leader's next trade from its current positions.

    At 3 or more contracts held it always trades toward flat (part or all of the position);
    below that it buys or sells 1-3, so no position passes 5 contracts. A trade of 2 or more is
    sometimes filled in two parts, as a real market order can be. Given the ``market``, it
    sometimes places a bracket instead of a trade below that size: 1 or 2 contracts at a limit
    two ticks better than the market, a stop-loss 8 ticks and a take-profit 12 ticks away.
    """

    def __init__(
        self,
        rng: random.Random,
        symbols: Sequence[str],
        *,
        weights: Sequence[float] | None = None,
        close_at: int = 3,
        partial_chance: float = 0.3,
        market: Market | None = None,
        bracket_chance: float = 0.25,
    ) -> None:
        if not symbols:
            raise ValueError("the demo leader needs at least one symbol")
        self._rng = rng
        self._symbols = list(symbols)
        self._weights = list(weights) if weights is not None else None
        self.close_at = close_at
        self.partial_chance = partial_chance
        self._market = market
        self.bracket_chance = bracket_chance

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def decide(self, positions: Mapping[str, int]) -> LeaderTrade | LeaderBracket:
        rng = self._rng
        symbol = rng.choices(self._symbols, weights=self._weights)[0]
        held = positions.get(symbol, 0)
        if abs(held) >= self.close_at:
            qty = -_sign(held) * rng.randint(1, abs(held))
        elif self._market is not None and rng.random() < self.bracket_chance:
            return self._bracket(symbol, self._market)
        else:
            qty = rng.choice((1, -1)) * rng.randint(1, 3)
        fills = None
        if abs(qty) >= 2 and rng.random() < self.partial_chance:
            first = rng.randint(1, abs(qty) - 1)
            fills = (first, abs(qty) - first)
        return LeaderTrade(symbol, qty, fills)

    def _bracket(self, symbol: str, market: Market) -> LeaderBracket:
        last, tick = market.price(symbol)
        side = self._rng.choice((1, -1))
        entry, loss, profit = (n * tick for n in BRACKET_TICKS)
        price = last - side * entry  # a buy below the market, a sell above it
        return LeaderBracket(
            symbol,
            side * self._rng.randint(1, 2),
            price,
            stop=price - side * loss,
            target=price + side * profit,
        )

    def delay(self, interval: tuple[float, float]) -> float:
        low, high = interval
        return low if high <= low else self._rng.uniform(low, high)


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


# --- where the demo acts -------------------------------------------------------------------------


class VenueError(Exception):
    """The venue refused a demo trade (no price yet, an unknown account, ...)."""


class Venue(Protocol):
    """Where the demo's market quotes and its leader trades, as the account's owner would."""

    def set_price(self, symbol: str, last: Decimal) -> None: ...

    def trade(
        self, account: str, symbol: str, qty: int, fills: tuple[int, ...] | None = None
    ) -> None:
        """A market order of the account's owner, filled at the last price; raises
        :class:`VenueError` when the venue refuses it."""

    def bracket(self, account: str, bracket: LeaderBracket) -> None:
        """A limit entry with its stop-loss and take-profit, placed by the account's owner;
        raises :class:`VenueError` when the venue refuses it."""

    def position(self, account: str, symbol: str) -> int:
        """The account's net position in ``symbol``; raises :class:`VenueError` for an account
        the venue does not know."""

    def is_delivering(self, connection: str) -> bool:
        """Whether the engine hears of the connection's trades now (its session is up)."""


class PaperVenue:
    """The paper broker as the demo's venue."""

    def __init__(self, broker: PaperBroker) -> None:
        self.broker = broker

    def set_price(self, symbol: str, last: Decimal) -> None:
        self.broker.set_price(symbol, last)

    def trade(
        self, account: str, symbol: str, qty: int, fills: tuple[int, ...] | None = None
    ) -> None:
        try:
            self.broker.trade(account, symbol, qty, fills)
        except PaperBrokerError as error:
            raise VenueError(str(error)) from None

    def bracket(self, account: str, bracket: LeaderBracket) -> None:
        try:
            self.broker.place_working(
                account,
                bracket.symbol,
                bracket.qty,
                OrderType.LIMIT,
                price=bracket.price,
                bracket_stop=bracket.stop,
                bracket_target=bracket.target,
            )
        except PaperBrokerError as error:
            raise VenueError(str(error)) from None

    def position(self, account: str, symbol: str) -> int:
        held = self.broker.positions(account).get(symbol)
        return held.qty if held is not None else 0

    def is_delivering(self, connection: str) -> bool:
        return self.broker.is_delivering(connection)


# --- the trio tasks -----------------------------------------------------------------------------


def publish(venue: Venue, quotes: Mapping[str, Decimal]) -> None:
    for symbol, price in quotes.items():
        venue.set_price(symbol, price)


async def run_market(venue: Venue, market: Market, interval: float = TICK_INTERVAL) -> None:
    """Tick the market forever (until cancelled)."""
    while True:
        await trio.sleep(interval)
        publish(venue, market.step())


async def run_leader(
    venue: Venue,
    leader: DemoLeader,
    account: str,
    interval: tuple[float, float] = LEADER_INTERVAL,
    *,
    delivering: Callable[[], bool] = lambda: True,
) -> None:
    """Let the demo leader trade now and then, forever (until cancelled).

    The fills themselves are logged by whoever watches the broker's events; this only says when
    a trade happened that the engine could not see (its session was not delivering)."""
    while True:
        await trio.sleep(leader.delay(interval))
        try:
            trade = leader.decide({s: venue.position(account, s) for s in leader.symbols})
            if isinstance(trade, LeaderBracket):
                venue.bracket(account, trade)
            else:
                venue.trade(account, trade.symbol, trade.qty, trade.fills)
        except VenueError as error:
            log.warning("demo leader trade failed", account=account, error=str(error))
            continue
        if not delivering():
            log.warning(
                "demo leader traded while its connection is not delivering",
                account=account,
                symbol=trade.symbol,
                qty=trade.qty,
            )


__all__ = [
    "DEMO_INSTRUMENTS",
    "DEMO_PROFILES",
    "GROUP",
    "LEADER",
    "PROFILE",
    "DemoLeader",
    "Instrument",
    "LeaderBracket",
    "LeaderTrade",
    "Market",
    "PaperVenue",
    "Venue",
    "VenueError",
    "demo_profiles",
    "demo_setup",
    "describe_groups",
    "publish",
    "run_leader",
    "run_market",
    "seed_if_empty",
]
