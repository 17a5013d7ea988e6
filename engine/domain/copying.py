"""The values of copying (S2): a follower's terms in a group, an account's part in copying, a
leader's fill as it is fanned out, and the fills of the fan-out log a restart completes (S2.9).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Membership:
    """A follower's terms in a group."""

    account: str
    ratio: Decimal
    max_qty: int | None = None
    symbol_map: tuple[tuple[str, str], ...] = ()
    disable_reason: str = ""


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
