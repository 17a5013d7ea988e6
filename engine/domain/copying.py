"""The values of copying (S2): a follower's terms in a group, an account's part in copying, a
leader's fill as it is fanned out, and the fills of the fan-out log a restart completes (S2.9).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class CopyMode(StrEnum):
    """How a follower copies its leader (S8.1): ``fills`` turns each leader fill into a market
    order (S2); ``orders`` mirrors the leader's working orders and brackets as working orders
    at the follower's broker, and matches fills (S8.4)."""

    FILLS = "fills"
    ORDERS = "orders"


@dataclass(frozen=True, slots=True)
class Membership:
    """A follower's terms in a group."""

    account: str
    ratio: Decimal
    max_qty: int | None = None
    symbol_map: tuple[tuple[str, str], ...] = ()
    disable_reason: str = ""
    copy: CopyMode = CopyMode.FILLS


@dataclass(frozen=True, slots=True)
class Role:
    """How the account takes part in copying: leader of a group, follower of one, or neither."""

    group: str | None = None
    leader: bool = False


@dataclass(frozen=True, slots=True)
class LeaderFill:
    """A fill on a group's leader took its net position in ``symbol`` from ``before`` to
    ``after`` (S2.1)."""

    leader: str
    fill_id: str
    symbol: str
    before: int
    after: int
    fill_time: datetime
    price: Decimal | None = None  # as the broker reported it (not kept in the fan-out log)
    # The broker id of the leader's order it filled (S8.4 matches mirror fills by it);
    # ``None`` where unknown (a fill fanned out again after a restart).
    order_id: str | None = None
    order_done: bool = False  # the leader's order has nothing left working

    @property
    def cause(self) -> str:
        """The cause every copy of this fill carries (S2.6)."""
        return f"{self.leader}:{self.fill_id}"

    def describe(self) -> str:
        """The leader's activity entry for it: ``LEAD filled +2 ESZ6 at 5000.25 (fill 17)``."""
        at = "" if self.price is None else f" at {self.price}"
        qty = self.after - self.before
        return f"{self.leader} filled {qty:+d} {self.symbol}{at} (fill {self.fill_id})"


@dataclass(frozen=True, slots=True)
class LoggedFill:
    """A leader fill as the fan-out log holds it."""

    group: str
    fill: LeaderFill
    position: int  # where it stands in the log (which joins came before it)

    @property
    def cause(self) -> str:
        """The cause every copy of this fill carries (S2.6)."""
        return self.fill.cause


@dataclass(frozen=True, slots=True)
class PendingFill:
    """A logged fill some followers never decided on, and the leader's position in its symbol
    after the last fill the engine saw (to tell whether the leader traded while it was down)."""

    fill: LoggedFill
    followers: tuple[str, ...]
    leader_after: int
