"""S10.1: where a follower is expected to stand, and by how much it drifts from there.

``expected = t(L)`` of the leader's confirmed positions with the membership's ratio, max_qty and
symbol map (S2.2's :func:`~engine.domain.copy_rule.target`, summed where two leader symbols map
to one follower symbol, as a reconciliation counts them); ``drift = P − expected``, ``P`` the
follower's position with the engine's orders in flight counted as done. What an episode does
about it with ``on_drift = "reduce"`` is S3.2's flatten-only quantity toward ``expected``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from brokers.instruments import map_symbol
from engine.domain.copy_rule import target


@dataclass(frozen=True, slots=True)
class DriftTerms:
    """A membership's terms as the drift watch reads them."""

    ratio: Decimal
    max_qty: int | None = None
    symbol_map: tuple[tuple[str, str], ...] = ()


def mapped(leader_symbols: Iterable[str], terms: DriftTerms) -> set[str]:
    """The follower's symbols for the leader's (S2.3)."""
    symbol_map = dict(terms.symbol_map)
    return {map_symbol(s, symbol_map) for s in leader_symbols}


def expected(leader: Mapping[str, int], symbol: str, terms: DriftTerms) -> int:
    """``t(L)`` in the follower's ``symbol`` for the leader's positions ``leader`` (S2.2,
    S2.3): the sum over the leader symbols that map to it."""
    if not terms.symbol_map:  # the common case, on the copy path: the leader's own symbol
        return target(leader.get(symbol, 0), terms.ratio, terms.max_qty)
    symbol_map = dict(terms.symbol_map)
    total = 0
    for leader_symbol, qty in leader.items():
        if qty and map_symbol(leader_symbol, symbol_map) == symbol:
            total += target(qty, terms.ratio, terms.max_qty)
    return total


__all__ = ["DriftTerms", "expected", "mapped"]
