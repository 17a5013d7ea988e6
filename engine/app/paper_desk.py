"""The paper trading desk: trade by hand on any paper account, and set a symbol's price, on an
engine whose broker is the paper broker.

A trade is the account owner's own trade at the broker (:meth:`PaperBroker.trade`): a market
order filled at once at the symbol's last price. The engine hears it as it hears any fill of
that account — a leader's is copied to its followers, a follower's is its owner's own trade.
A price is a market tick (:meth:`PaperBroker.set_price`): every connection gets the quote and
the risk guard checks it as any other (S5.2).

With the demo's simulated market running, a price set by hand moves the walk itself: the
instrument (with its mirrors: MESZ6 with ESZ6) is at the price set, and the walk's next step
goes on from there — a price set by hand is not undone by the next tick, it drifts from it. A
symbol the walk does not move keeps the price set until it is set again.

The live process calls the desk on its trio thread, where the market and the demo leader act
too, so a price set by hand and a step of the walk never interleave.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from brokers.instruments import Contract, ContractTable, SymbolError
from brokers.paper import PaperBroker, PaperBrokerError
from engine.app.demo import Market
from engine.core.engine import Engine

PAPER = "paper"


class DeskError(Exception):
    """A desk request refused: ``field`` names the request's field at fault (a wrong value), or
    is ``None`` when the request is well formed but cannot be done now."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class DeskTrade:
    """A trade done at the broker: ``qty`` signed (+ bought, - sold), its fills' ids and price,
    and whether the engine hears of it now (its connection's session is delivering)."""

    account: str
    connection: str
    symbol: str
    qty: int
    price: Decimal
    fills: tuple[str, ...]
    seen: bool


@dataclass(frozen=True, slots=True)
class DeskPrice:
    """A price set: every symbol quoted by it (an instrument's mirrors too), and whether the
    simulated market walks on from it."""

    symbol: str
    last: Decimal
    quoted: dict[str, Decimal]
    walks: bool


class PaperDesk:
    """The desk of one engine on ``broker`` (the paper broker its connections of broker kind
    ``kind`` trade at); ``market`` is the simulated market, when one runs."""

    def __init__(
        self,
        engine: Engine,
        broker: PaperBroker,
        contracts: ContractTable,
        market: Market | None = None,
        kind: str = PAPER,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.contracts = contracts
        self.market = market
        self.kind = kind

    def accounts(self) -> list[str]:
        """The engine's accounts at this broker, sorted."""
        topology = self.engine.topology_snapshot()
        return sorted(
            account.id
            for account in topology.accounts.values()
            if topology.connections[account.connection].broker == self.kind
        )

    def prices(self) -> dict[str, Decimal]:
        """The last price of every symbol that has one, by symbol."""
        return dict(sorted(self.broker.prices().items()))

    def trade(self, account: str, qty: int, symbol: str) -> DeskTrade:
        """``account``'s owner buys (``qty`` > 0) or sells at the symbol's last price.

        Raises :class:`~engine.core.topology.UnknownId` for an account the engine does not
        have, :class:`DeskError` for a wrong symbol or quantity, or a trade that cannot be done
        (another broker's account, no price yet)."""
        if qty == 0:
            raise DeskError("qty: expected a quantity other than 0", "qty")
        self._check_symbol(symbol)
        config = self.engine.account(account)
        broker_kind = self.engine.connection(config.connection).broker
        if broker_kind != self.kind:
            raise DeskError(
                f"account {account!r} is on broker {broker_kind!r}: the desk trades on the"
                f" {self.kind!r} broker only"
            )
        if self.broker.account_of(account) is None:
            raise DeskError(f"account {account!r} is not at the paper broker yet")
        price = self.broker.last_price(symbol)
        if price is None:
            raise DeskError(f"no price for {symbol} yet: set its price first")
        try:
            fills = self.broker.trade(account, symbol, qty)
        except PaperBrokerError as error:
            raise DeskError(str(error)) from None
        return DeskTrade(
            account=account,
            connection=config.connection,
            symbol=symbol,
            qty=qty,
            price=fills[-1].price,
            fills=tuple(fill.fill_id for fill in fills),
            seen=self.broker.is_delivering(config.connection),
        )

    def set_price(self, symbol: str, last: Decimal) -> DeskPrice:
        """A market tick at ``last`` for ``symbol`` (and its mirrors, when the simulated market
        quotes them together); the walk goes on from it.

        Raises :class:`DeskError` for a wrong symbol or a price off the contract's ticks."""
        contract = self._check_symbol(symbol)
        if not last.is_finite() or last <= 0:
            raise DeskError(f"last: expected a price greater than 0 (got {last})", "last")
        if last % contract.tick_size != 0:
            raise DeskError(
                f"last: expected a multiple of {symbol}'s tick, {contract.tick_size} (got {last})",
                "last",
            )
        quoted = self.market.move(symbol, last) if self.market is not None else None
        walks = quoted is not None
        for quoted_symbol, price in (quoted or {symbol: last}).items():
            self.broker.set_price(quoted_symbol, price)
        return DeskPrice(symbol, last, dict(quoted or {symbol: last}), walks)

    def _check_symbol(self, symbol: str) -> Contract:
        try:
            return self.contracts.contract(self.contracts.parse(symbol).root)
        except SymbolError as error:
            raise DeskError(f"symbol: {error}", "symbol") from None


__all__ = ["PAPER", "DeskError", "DeskPrice", "DeskTrade", "PaperDesk"]
