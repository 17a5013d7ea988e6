"""Market data: the latest price of each contract, and coalesced ticks for the risk checks.

A busy contract ticks hundreds of times a second and many accounts hold it. A tick therefore
never becomes a message per account: it updates the last price and, for each connection that
watches the contract, widens that connection's [low, high] range of prices seen since it last
looked. The first tick after a look sends the connection one nudge; a connection that is behind
gets one message however many ticks arrived, and still sees the extremes — so coalescing never
hides a spike that crossed a limit (S5.2). The connection compares the range with precomputed
breach prices of its accounts: a comparison, not a loop over P&L.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from engine.host.address import Address


@dataclass(frozen=True, slots=True)
class TicksPending:
    """Told to a watching connection: prices moved since it last took its ranges."""


PriceRange = tuple[Decimal, Decimal]


class Market:
    def __init__(self, tell: Callable[[Address, object], None]) -> None:
        self._tell = tell
        self._lock = threading.Lock()
        self._last: dict[str, Decimal] = {}
        self._watchers: dict[str, dict[str, Address]] = {}  # symbol -> connection -> address
        self._ranges: dict[str, dict[str, list[Decimal]]] = {}  # connection -> symbol -> [lo, hi]
        self._pending: set[str] = set()

    def last(self, symbol: str) -> Decimal | None:
        return self._last.get(symbol)

    def on_quote(self, symbol: str, price: Decimal) -> bool:
        """Take a tick; ``False`` when it repeats the last price (nothing to do)."""
        nudges: list[Address] = []
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
                if connection not in self._pending:
                    self._pending.add(connection)
                    nudges.append(address)
        for address in nudges:
            self._tell(address, TicksPending())
        return True

    def take(self, connection: str) -> dict[str, PriceRange]:
        """The price ranges seen since the last take, and clear them."""
        with self._lock:
            self._pending.discard(connection)
            ranges = self._ranges.pop(connection, {})
        return {symbol: (lo, hi) for symbol, (lo, hi) in ranges.items()}

    def watch(self, connection: str, address: Address, symbol: str, *, on: bool) -> None:
        with self._lock:
            watchers = self._watchers.setdefault(symbol, {})
            if on:
                watchers[connection] = address
            else:
                watchers.pop(connection, None)
