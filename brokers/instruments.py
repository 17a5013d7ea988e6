"""The contract table and futures symbol parsing.

A symbol is ``ROOT + month letter + year digit`` (``ESZ6``, ``M2KH7``). The root must be in the
contract table, which carries the point value (dollars per point per contract) and tick size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

MONTH_CODES = "FGHJKMNQUVXZ"


@dataclass(frozen=True, slots=True)
class Contract:
    """One futures product: its root and how its price converts to money."""

    root: str
    point_value: Decimal
    tick_size: Decimal


def _c(root: str, point_value: str, tick_size: str) -> Contract:
    return Contract(root, Decimal(point_value), Decimal(tick_size))


BUILTIN_CONTRACTS: Mapping[str, Contract] = {
    c.root: c
    for c in (
        _c("ES", "50", "0.25"),
        _c("MES", "5", "0.25"),
        _c("NQ", "20", "0.25"),
        _c("MNQ", "2", "0.25"),
        _c("RTY", "50", "0.1"),
        _c("M2K", "5", "0.1"),
        _c("YM", "5", "1"),
        _c("MYM", "0.5", "1"),
        _c("CL", "1000", "0.01"),
        _c("MCL", "100", "0.01"),
        _c("GC", "100", "0.1"),
        _c("MGC", "10", "0.1"),
    )
}


class SymbolError(ValueError):
    """A symbol that does not parse or whose root is not in the contract table."""


@dataclass(frozen=True, slots=True)
class Symbol:
    root: str
    month: str
    year: str

    def __str__(self) -> str:
        return f"{self.root}{self.month}{self.year}"

    def with_root(self, root: str) -> Symbol:
        return Symbol(root, self.month, self.year)


def split_symbol(text: str) -> Symbol:
    """Split ``ESZ6`` into root, month and year digit, without consulting any table."""
    if not isinstance(text, str):
        raise SymbolError(f"{text!r} is not a futures symbol (ROOT + month letter + year digit)")
    return _split(text)


# Every order, fill and tick parses its symbol, and a book trades a handful of them: the
# answer for a text never changes (a Symbol is immutable), so the recent ones are kept. A text
# that does not parse raises each time (errors are not cached).
@lru_cache(maxsize=1024)
def _split(text: str) -> Symbol:
    if len(text) < 3:
        raise SymbolError(f"{text!r} is not a futures symbol (ROOT + month letter + year digit)")
    root, month, year = text[:-2], text[-2], text[-1]
    if not year.isdigit() or month not in MONTH_CODES or not root.isalnum() or not root.isupper():
        raise SymbolError(f"{text!r} is not a futures symbol (ROOT + month letter + year digit)")
    if not root[0].isalpha():
        raise SymbolError(f"{text!r} is not a futures symbol: the root must start with a letter")
    return Symbol(root, month, year)


class ContractTable:
    """The built-in contracts plus any a configuration or scenario adds or overrides."""

    def __init__(self, extra: Iterable[Contract] = ()) -> None:
        self._contracts: dict[str, Contract] = dict(BUILTIN_CONTRACTS)
        for contract in extra:
            self._contracts[contract.root] = contract
        self._point_values: dict[str, Decimal] = {}

    def __contains__(self, root: object) -> bool:
        return root in self._contracts

    def roots(self) -> list[str]:
        return sorted(self._contracts)

    def contract(self, root: str) -> Contract:
        try:
            return self._contracts[root]
        except KeyError:
            raise SymbolError(f"root {root!r} is not in the contract table") from None

    def parse(self, text: str) -> Symbol:
        """Parse a symbol and check its root is known."""
        symbol = split_symbol(text)
        if symbol.root not in self._contracts:
            raise SymbolError(f"{text!r}: root {symbol.root!r} is not in the contract table")
        return symbol

    def point_value(self, symbol: str) -> Decimal:
        value = self._point_values.get(symbol)
        if value is None:
            value = self.contract(split_symbol(symbol).root).point_value
            self._point_values[symbol] = value
        return value

    def tick_size(self, symbol: str) -> Decimal:
        """The tick size of ``symbol``'s contract (:class:`SymbolError` for an unknown root)."""
        return self.contract(split_symbol(symbol).root).tick_size


def map_symbol(symbol: str, symbol_map: Mapping[str, str]) -> str:
    """S2.3: map the instrument root and keep the contract month (``ESZ6 → MESZ6``)."""
    parsed = split_symbol(symbol)
    target = symbol_map.get(parsed.root)
    return str(parsed.with_root(target)) if target else symbol


def copies_root(root: str, symbol_map: Mapping[str, str]) -> bool:
    """Whether a follower root is one the group copies into (S3.1: only those are touched)."""
    return root not in symbol_map or root in symbol_map.values()
