"""Market data: the latest price of each contract, and coalesced ticks for the risk checks.

A busy contract ticks hundreds of times a second and many accounts hold it. A tick therefore
never becomes a message per account: it updates the last price and, for each connection that
watches the contract, widens that connection's [low, high] range of prices seen since it last
looked. The first tick after a look sends the connection one nudge; a connection that is behind
gets one message however many ticks arrived, and still sees the extremes — so coalescing never
hides a spike that crossed a limit (S5.2). The connection compares the range with precomputed
breach prices of its accounts: a comparison, not a loop over P&L.

It also keeps the instant of each contract's last price, so an account holding a contract can
tell when its prices stopped (S10.3), and tells an account that waits for a contract's prices
to come back when they do: a dict store per tick, no timer and no message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from engine.host.address import Address
from engine.host.urgency import Urgent


@dataclass(frozen=True, slots=True)
class TicksPending(Urgent):
    """Told to a watching connection: prices moved since it last took its ranges. ``urgent``
    when a price reached the connection's alarm: an account of it may breach (decision 0030)."""

    urgent: bool = False


@dataclass(frozen=True, slots=True)
class PriceBack:
    """Told to an account that waits for ``symbol``'s prices (:meth:`Market.await_price`): a
    price came."""

    symbol: str


_PENDING = TicksPending()
_URGENT = TicksPending(urgent=True)

PriceRange = tuple[Decimal, Decimal]


class Market:
    def __init__(self, tell: Callable[[Address, object], None]) -> None:
        self._tell = tell
        self._lock = threading.Lock()
        self._last: dict[str, Decimal] = {}
        self._watchers: dict[str, dict[str, Address]] = {}  # symbol -> connection -> address
        self._ranges: dict[str, dict[str, list[Decimal]]] = {}  # connection -> symbol -> [lo, hi]
        self._pending: set[str] = set()
        self._hurried: set[str] = set()  # connections told an urgent TicksPending since a take
        # connection -> symbol -> (low, high): a price at or beyond may breach one of its
        # accounts (``alarm``).
        self._alarms: dict[str, dict[str, tuple[Decimal | None, Decimal | None]]] = {}
        self._priced_at: dict[str, datetime] = {}  # symbol -> the instant of its last price
        self._awaited: dict[str, set[Address]] = {}  # symbol -> accounts awaiting a price

    def last(self, symbol: str) -> Decimal | None:
        return self._last.get(symbol)

    def priced_at(self, symbol: str) -> datetime | None:
        """When ``symbol`` last had a price (a repeated one included), if ever."""
        return self._priced_at.get(symbol)

    def await_price(self, symbol: str, address: Address, since: datetime) -> bool:
        """Tell ``address`` :class:`PriceBack` at ``symbol``'s next price; ``False`` (and
        nothing told) when one came after ``since`` already."""
        with self._lock:
            at = self._priced_at.get(symbol)
            if at is not None and at > since:
                return False
            self._awaited.setdefault(symbol, set()).add(address)
            return True

    def on_quote(self, symbol: str, price: Decimal, at: datetime | None = None) -> bool:
        """Take a tick (``at``: when it came); ``False`` when it repeats the last price
        (nothing to do but note that a price came)."""
        if at is not None:
            self._priced_at[symbol] = at  # before an awaiting account is looked for
        if self._awaited:
            self._price_back(symbol)
        nudges: list[tuple[Address, TicksPending]] = []
        with self._lock:
            if self._last.get(symbol) == price:
                # The same price again (or the same quote from another session of the broker)
                # cannot cross a breach price that was computed at it.
                return False
            self._last[symbol] = price
            for connection, address in self._watchers.get(symbol, {}).items():
                ranges = self._ranges.setdefault(connection, {})
                seen = ranges.get(symbol)
                if seen is None:
                    ranges[symbol] = [price, price]
                else:
                    seen[0] = min(seen[0], price)
                    seen[1] = max(seen[1], price)
                if connection not in self._hurried and self._alarmed(connection, symbol, price):
                    # Once per take: the ranges it takes then hold this price.
                    self._hurried.add(connection)
                    self._pending.add(connection)
                    nudges.append((address, _URGENT))
                elif connection not in self._pending:
                    self._pending.add(connection)
                    nudges.append((address, _PENDING))
        for address, nudge in nudges:
            self._tell(address, nudge)
        return True

    def _alarmed(self, connection: str, symbol: str, price: Decimal) -> bool:
        alarm = self._alarms.get(connection, {}).get(symbol)
        if alarm is None:
            return False
        low, high = alarm
        return (low is not None and price <= low) or (high is not None and price >= high)

    def alarm_of(self, connection: str, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """``connection``'s alarm in ``symbol``: ``(None, None)`` when it has none."""
        with self._lock:
            return self._alarms.get(connection, {}).get(symbol, (None, None))

    def alarm(
        self, connection: str, symbol: str, low: Decimal | None, high: Decimal | None
    ) -> None:
        """Prices at or beyond which one of ``connection``'s accounts may breach in
        ``symbol``: the first such tick since its last take is told to it urgently
        (decision 0030). ``None`` on both sides: no alarm."""
        with self._lock:
            alarms = self._alarms.setdefault(connection, {})
            if low is None and high is None:
                alarms.pop(symbol, None)
            else:
                alarms[symbol] = (low, high)

    def _price_back(self, symbol: str) -> None:
        with self._lock:
            waiting = self._awaited.pop(symbol, ())
        for address in waiting:
            self._tell(address, PriceBack(symbol))

    def take(self, connection: str) -> dict[str, PriceRange]:
        """The price ranges seen since the last take, and clear them."""
        with self._lock:
            self._pending.discard(connection)
            self._hurried.discard(connection)
            ranges = self._ranges.pop(connection, {})
        return {symbol: (lo, hi) for symbol, (lo, hi) in ranges.items()}

    def watch(self, connection: str, address: Address, symbol: str, *, on: bool) -> None:
        with self._lock:
            watchers = self._watchers.setdefault(symbol, {})
            if on:
                watchers[connection] = address
            else:
                watchers.pop(connection, None)
