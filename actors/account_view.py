"""What an account actor is started with (its settings) and what it publishes (its view),
read by the harness, the API and the status command."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal

from actors.book import Prices
from actors.messages.risk import (
    Holding,
)
from engine.domain.copying import Role
from engine.domain.positions import ZERO
from engine.domain.risk_profile import RiskRules
from engine.domain.watching import WatchSettings
from engine.domain.working import WorkingLine


@dataclass(frozen=True, slots=True)
class AccountSettings:
    id: str
    connection: str
    balance: Decimal
    max_copy_age: timedelta = timedelta(seconds=10)
    mirror_grace: timedelta = timedelta(seconds=2)  # S8.4
    watch: WatchSettings = field(default_factory=WatchSettings)  # S10.1, S10.3
    rules: RiskRules = field(default_factory=RiskRules)  # its commissions (S9.1)


@dataclass(frozen=True, slots=True)
class AccountView:
    """What the harness, the API and the status command read of an account."""

    id: str
    connection: str
    connection_state: str
    positions: Mapping[str, int]
    balance: Decimal
    realized_daily: Decimal
    realized_weekly: Decimal
    unrealized: Decimal
    role: Role
    working: int = 0
    # Positions confirmed by a snapshot since the connection last became connected (S3.5).
    positions_confirmed: bool = True
    # The open positions with their pricing: ``unrealized`` again at later prices (``priced``).
    holdings: Mapping[str, Holding] = field(default_factory=dict)
    # What a sync's preview is computed on (S6.2): the positions once the engine's orders
    # still working have filled, and whether a flatten is in flight.
    projected: Mapping[str, int] = field(default_factory=dict)
    flattening: bool = False
    # Each order working at the broker, with the leader order a mirror mirrors (S8).
    orders: tuple[WorkingLine, ...] = ()
    commissions: Decimal = ZERO  # S9.1: every commission charged to the account
    # S10.1: the follower's open drift episodes, symbol -> follower position - expected; a
    # drift still inside its grace is not shown.
    drift: Mapping[str, int] = field(default_factory=dict)
    # S10.3: the orders judged missed copies that are still unanswered (client order ids),
    # and the symbols held while their prices are out.
    missed_copies: tuple[str, ...] = ()
    stale_prices: tuple[str, ...] = ()

    def priced(self, last: Prices) -> AccountView:
        """This view with its unrealized P&L at the prices ``last`` gives (the market's now), as
        the account prices its book: the market's price, else the account's last fill's."""
        total = ZERO
        for symbol, holding in self.holdings.items():
            price = last(symbol)
            if price is None:
                price = holding.last_fill
            if price is not None:
                total += (price - holding.reference) * holding.qty * holding.point_value
        return replace(self, unrealized=total)

    @property
    def daily_pnl(self) -> Decimal:
        return self.realized_daily + self.unrealized

    @property
    def weekly_pnl(self) -> Decimal:
        return self.realized_weekly + self.unrealized

    @property
    def equity(self) -> Decimal:
        return self.balance + self.daily_pnl
