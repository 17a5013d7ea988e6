"""S9.2: max contracts — the account's weighted exposure, ``Σ |position| × weight`` over its
symbols, held within the profile's ``max_contracts`` N.

A full-size contract weighs 1 and a micro 0.1, unless the profile's ``contract_weights`` says
otherwise for its root. An opening order is clipped so that, with the account's other working
opening orders, the exposure stays within N (its closing part always goes); a fill that takes the
account above N anyway is reduced in its symbol by the fewest contracts that bring it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from brokers.instruments import SymbolError, split_symbol
from engine.domain.copy_rule import closing_part
from engine.domain.decimals import plain

MICRO_ROOTS = frozenset({"MES", "MNQ", "M2K", "MYM", "MCL", "MGC"})
MICRO_WEIGHT = Decimal("0.1")
FULL_WEIGHT = Decimal(1)


def weight(root: str, weights: Mapping[str, Decimal]) -> Decimal:
    """The weight of one contract of ``root``: the profile's own (``weights``) when it names the
    root, else 0.1 for a micro and 1 for any other."""
    given = weights.get(root)
    if given is not None:
        return given
    return MICRO_WEIGHT if root in MICRO_ROOTS else FULL_WEIGHT


def root_of(symbol: str) -> str:
    """The root of ``symbol`` (``MESZ6 → MES``); a symbol that does not parse is its own root."""
    try:
        return split_symbol(symbol).root
    except SymbolError:
        return symbol


def in_use(exposure: Mapping[str, int], weights: Mapping[str, Decimal]) -> Decimal:
    """The weighted exposure of ``exposure`` (symbol → signed quantity): Σ |qty| × weight."""
    total = Decimal(0)
    for symbol, qty in exposure.items():
        if qty:
            total += abs(qty) * weight(root_of(symbol), weights)
    return total


def exposure_weight(exposure: Iterable[tuple[str, int]], weights: Mapping[str, Decimal]) -> Decimal:
    """The weighted contracts of ``exposure`` (symbol, signed worst case) pairs: what every
    other symbol holds of the cap beside the one an order is judged in."""
    return sum(
        (abs(qty) * weight(root_of(symbol), weights) for symbol, qty in exposure), Decimal(0)
    )


def _most_within(budget: Decimal, unit: Decimal) -> int:
    """The largest whole n with n × unit ≤ budget (unit > 0, budget ≥ 0)."""
    n = int((budget / unit).to_integral_value(rounding=ROUND_FLOOR))
    # A quotient rounded at the context's precision may land one off; the products are exact.
    while n > 0 and n * unit > budget:
        n -= 1
    while (n + 1) * unit <= budget:
        n += 1
    return n


def _fewest_covering(excess: Decimal, unit: Decimal) -> int:
    """The smallest whole n with n × unit ≥ excess (unit > 0, excess > 0)."""
    n = int((excess / unit).to_integral_value(rounding=ROUND_CEILING))
    while n > 0 and (n - 1) * unit >= excess:
        n -= 1
    while n * unit < excess:
        n += 1
    return n


def worst_case(projected: int, resting: tuple[int, int]) -> int:
    """A symbol's position were every resting order on one side filled, the side that takes
    it furthest from flat (``resting``: buy qty, sell qty)."""
    buys, sells = resting
    high, low = projected + buys, projected - sells
    return high if abs(high) >= abs(low) else low


def clip_opening(
    symbol: str,
    projected: int,
    qty: int,
    resting: tuple[int, int],
    others: Decimal,
    cap: Decimal,
    weights: Mapping[str, Decimal],
    *,
    rests: bool = False,
) -> int:
    """The part of the signed order ``qty`` in ``symbol`` that may go under the cap ``cap``
    (signed like ``qty``, or 0). ``rests``: the order itself rests (a mirror, S8.3), so it is
    judged as one more resting order on its side (E20).

    ``projected`` is the account's position in the symbol with its orders in flight (P of S2.2);
    ``resting`` the (buy, sell) quantities of its other working opening orders in the symbol not
    counted in ``projected``; ``others`` the weighted exposure of every other symbol.

    The closing part — what moves ``projected`` toward zero, never through it — always goes.
    The opening part is cut so that the worst case, every resting order on the order's side
    filling too, keeps ``|position| × weight + others`` within ``cap``. An account already above
    the cap (``others + |projected| × weight > cap``) may open nothing until it is back within.
    """
    if qty == 0:
        return 0
    buys, sells = resting
    same_side = buys if qty > 0 else sells
    # A resting order (``rests``): were the account's other resting orders on its side filled
    # first, they close the position before it; its closing part is what they leave of it.
    before = projected + (same_side if qty > 0 else -same_side) if rests else projected
    closing = closing_part(before, qty)
    opening = qty - closing
    if opening == 0:
        return closing
    unit = weight(root_of(symbol), weights)
    if others + abs(projected) * unit > cap:
        return closing
    # After the closing part the position is flat or already on the order's side.
    held = abs(before + closing) if rests else abs(projected + closing) + same_side
    if unit <= 0:  # a root the profile weighs at nothing opens freely within the cap
        fits = abs(opening) if others + held * unit <= cap else 0
    else:
        fits = max(_most_within(cap - others, unit) - held, 0)
    allowed_opening = min(abs(opening), fits)
    return closing + (allowed_opening if qty > 0 else -allowed_opening)


def excess_reduction(
    symbol: str,
    positions: Mapping[str, int],
    cap: Decimal,
    weights: Mapping[str, Decimal],
) -> int:
    """The closing order in ``symbol`` with the fewest contracts that brings
    ``in_use(positions)`` to ``cap`` or below — never more than the position in the symbol, so
    it may leave the account above the cap when the symbol alone cannot cover the excess
    (0 when the account is within the cap or the symbol is flat)."""
    position = positions.get(symbol, 0)
    if position == 0:
        return 0
    excess = in_use(positions, weights) - cap
    unit = weight(root_of(symbol), weights)
    if excess <= 0 or unit <= 0:
        return 0
    contracts = min(_fewest_covering(excess, unit), abs(position))
    return -contracts if position > 0 else contracts


def cap_text(cap: Decimal) -> str:
    """N as written in a profile: ``2``, ``2.5``, ``10`` — no trailing zeros, no exponent."""
    if cap == cap.to_integral_value():
        return plain(cap.quantize(Decimal(1)))
    return plain(cap.normalize())


def refusal_text(cap: Decimal) -> str:
    """S9.2's rejection of an opening order clipped to nothing."""
    return f"Order exceeds the account's max contracts ({cap_text(cap)})."


__all__ = [
    "FULL_WEIGHT",
    "MICRO_ROOTS",
    "MICRO_WEIGHT",
    "cap_text",
    "clip_opening",
    "excess_reduction",
    "in_use",
    "refusal_text",
    "root_of",
    "weight",
]
