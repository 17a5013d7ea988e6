"""Stale prices (S10.3): an open position whose symbol has no price, so the risk guard cannot
see the account's P&L there.

A plain class the AccountActor owns. Two things open an outage of a symbol: the broker saying
it gives no prices for it (``PricesUnavailable``, at once), and no price for
``stale_prices_after`` while the account's connection is ``connected``. Either way an account
holding the symbol gets one ``stale_prices`` warning per outage — a position opened during it
included — and an ``info`` entry when it ends: at the symbol's next price, or when the broker
says its prices work again (``PricesRestored``).

Prices never reach the account one by one (decision 0003): the market keeps the instant of
each symbol's last price (``engine/host/market.py``) and this watch reads it with one timer per
account, armed while the account holds positions, for the symbol whose prices are the oldest.
A symbol whose outage is open is not timed: the market tells the account of its next price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from actors.book import Book
from engine.domain.activity import Kind, Level
from engine.host.base import ActorContext


@dataclass(frozen=True, slots=True)
class PricesDue:
    """The watch's one timer: the oldest prices of a held symbol turn stale at ``at``."""

    at: datetime


@dataclass(slots=True)
class _Outage:
    reason: str  # the broker's, or "" for prices that stopped coming
    warned: bool = False


class StalePrices:
    def __init__(
        self,
        ctx: ActorContext,
        account: str,
        connection: str,
        book: Book,
        after: timedelta,
        *,
        connected: bool,
    ) -> None:
        self.ctx = ctx
        self.account = account
        self.connection = connection
        self.book = book
        self.after = after
        self.connected = connected
        self.connected_at = ctx.now()  # prices are counted from here at the earliest
        self.outages: dict[str, _Outage] = {}
        self.armed: datetime | None = None
        self.watching: set[str] = set()  # the held symbols the armed timer covers

    # -- what the account tells it -------------------------------------------------------------

    def changed(self, symbol: str) -> None:
        """A fill in ``symbol`` (the hot path: a set lookup unless the symbol is new here)."""
        if self.outages:
            self._warn_held()
        if symbol not in self.watching:
            self._check()

    def confirmed(self) -> None:
        """The broker's snapshot replaced the book's positions."""
        self._warn_held()
        self._check()

    def connection_changed(self, connected: bool) -> None:
        """No warning while the connection is not ``connected``; prices are counted afresh
        from its return."""
        self.connected = connected
        self.armed = None
        if connected:
            self.connected_at = self.ctx.now()
            self._check()

    def unavailable(self, symbol: str, reason: str) -> None:
        """The broker gives no prices for ``symbol``."""
        if symbol in self.outages:
            return
        self.outages[symbol] = _Outage(reason)
        self.ctx.market.await_price(symbol, self.ctx.address, self.ctx.now())
        self._warn_held()

    def back(self, symbol: str) -> None:
        """A price came for ``symbol``, or the broker says its prices work again."""
        outage = self.outages.pop(symbol, None)
        if outage is None:
            return
        if outage.warned:
            self.ctx.storage.activity(
                Level.INFO,
                Kind.STALE_PRICES,
                f"prices for {symbol} are back: the risk guard sees this account's P&L there again",
                account=self.account,
            )
        self._check()

    def due(self, message: PricesDue) -> None:
        """A timer armed by an earlier incarnation of the actor, or superseded, is let go."""
        if message.at == self.armed:
            self._check()

    # -- what the account shows ----------------------------------------------------------------

    def blind(self) -> tuple[str, ...]:
        """The symbols held while their prices are out (warned)."""
        if not self.outages:
            return ()
        position = self.book.position
        return tuple(s for s, o in sorted(self.outages.items()) if o.warned and position(s))

    # -- its parts -----------------------------------------------------------------------------

    def _check(self) -> None:
        """Warn of each held symbol whose prices are stale, and arm for the next to turn so."""
        self.armed = None
        held = self.book.held()
        self.watching = set(held)
        if not self.connected or not held:
            return
        market, now = self.ctx.market, self.ctx.now()
        following: datetime | None = None
        for symbol in sorted(held):
            if symbol in self.outages:
                continue  # the market tells of its next price
            last = market.priced_at(symbol)
            since = self.connected_at if last is None or last < self.connected_at else last
            due = since + self.after
            if due <= now and market.await_price(symbol, self.ctx.address, since):
                outage = self.outages[symbol] = _Outage("", warned=True)
                self._warn(symbol, outage, now - since)
                continue
            if due <= now:  # a price came since it was read: counted from it
                due = (market.priced_at(symbol) or now) + self.after
            following = due if following is None else min(following, due)
        if following is not None:
            self.armed = following
            self.ctx.services.timers.schedule(following, self.ctx.address, PricesDue(following))

    def _warn_held(self) -> None:
        """One warning per outage for each symbol held while it has no prices."""
        position = self.book.position
        for symbol, outage in self.outages.items():
            if not outage.warned and position(symbol):
                outage.warned = True
                self._warn(symbol, outage, None)

    def _warn(self, symbol: str, outage: _Outage, silent: timedelta | None) -> None:
        if outage.reason:
            what = f"no prices for {symbol} ({outage.reason})"
        else:
            seconds = silent.total_seconds() if silent is not None else 0.0
            what = (
                f"no price for {symbol} for {seconds:g} s while connection {self.connection} "
                "is connected"
            )
        self.ctx.storage.activity(
            Level.WARNING,
            Kind.STALE_PRICES,
            f"{what}: the risk guard cannot see this account's P&L there",
            account=self.account,
        )


__all__ = ["PricesDue", "StalePrices"]
