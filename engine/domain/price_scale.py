"""S8.2: a follower that copies orders gets the leader's prices unchanged, so its symbol map may
only map roots of the same price scale — the same tick size in the contract table (ES→MES and
NQ→MNQ pass, ES→CL does not; decision 0020). A follower that copies fills trades at market and
may map any roots."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from engine.domain.copying import CopyMode


def price_scale_problem(
    copy: CopyMode,
    symbol_map: Iterable[tuple[str, str]],
    tick_size: Callable[[str], Decimal],
) -> str | None:
    """Why these terms are refused, naming both roots and their tick sizes; ``None`` if they
    are not. ``tick_size`` gives a root's tick size from the contract table."""
    if copy is not CopyMode.ORDERS:
        return None
    for source, target in symbol_map:
        source_tick, target_tick = tick_size(source), tick_size(target)
        if source_tick != target_tick:
            return (
                f'copy = "orders" copies prices unchanged, so symbol_map {source} → {target}'
                f" needs roots of the same price scale: {source} ticks {source_tick},"
                f" {target} ticks {target_tick} (map roots of the same tick size, such as"
                ' ES → MES, or copy = "fills")'
            )
    return None


__all__ = ["price_scale_problem"]
