"""What the broker could not confirm, said once each (S3.5, S10.3): an account's snapshot
whose answer was unknown, a leader's that a follower's reconciliation waits for, and symbols
held while the broker gives no prices for them."""

from __future__ import annotations

from collections.abc import Callable

from actors.messages.account import AwaitingLeader, SnapshotUnknown
from engine.domain.activity import Kind, Level
from engine.domain.copying import Role
from engine.host.storage import Storage


class Unknowns:
    def __init__(self, account: str, storage: Storage) -> None:
        self.account = account
        self.storage = storage
        self.unknown_warned = ""  # the wait (first attempt) last warned about, S3.5
        self.leader_warned = ""  # the leader's wait last warned about, S3.5
        self.unpriced: dict[str, str] = {}  # symbol -> why its prices are unavailable (S10.3)
        self.unpriced_warned: set[str] = set()

    def snapshot_unknown(self, unknown: SnapshotUnknown, role: Role) -> bool:
        """S3.5: after the first failure of a wait, one warning saying what waits and why;
        whether this was that first failure."""
        if self.unknown_warned == unknown.since:
            return False
        self.unknown_warned = unknown.since
        if role.group is None:
            waiting = "its book"
        elif role.leader:
            waiting = "the reconciliation of its followers" if unknown.reconcile else "its fan-out"
        else:
            waiting = "its reconciliation toward the leader" if unknown.reconcile else "its copies"
        self.storage.activity(
            Level.WARNING,
            Kind.RECONCILIATION,
            f"positions of {self.account} unknown: the snapshot of connection "
            f"{unknown.connection} failed ({unknown.reason}); nothing is decided from it — "
            f"{waiting} waits for the broker's answer, asked again in "
            f"{unknown.retry_in.total_seconds():g} s",
            account=self.account,
        )
        return True

    def awaiting_leader(self, waiting: AwaitingLeader) -> None:
        """S3.5: one warning per wait of the leader this follower is to be reconciled toward."""
        if self.leader_warned == waiting.since:
            return
        self.leader_warned = waiting.since
        self.storage.activity(
            Level.WARNING,
            Kind.RECONCILIATION,
            f"reconciliation toward leader {waiting.leader} waits: its positions are unknown "
            f"(the snapshot of connection {waiting.connection} failed: {waiting.reason}); it "
            "runs once, when the broker answers",
            account=self.account,
        )

    # -- S10.3: prices the broker does not give ----------------------------------------------------

    def prices_unavailable(self, symbol: str, reason: str, position: Callable[[str], int]) -> None:
        if symbol not in self.unpriced:
            self.unpriced[symbol] = reason
            self.warn_unpriced(position)

    def warn_unpriced(self, position: Callable[[str], int]) -> None:
        """One ``stale_prices`` warning per outage for each symbol held while it has none."""
        for symbol, reason in self.unpriced.items():
            if position(symbol) and symbol not in self.unpriced_warned:
                self.unpriced_warned.add(symbol)
                self.storage.activity(
                    Level.WARNING,
                    Kind.STALE_PRICES,
                    f"no prices for {symbol} ({reason}): the risk guard cannot see this "
                    "account's P&L there",
                    account=self.account,
                )

    def prices_restored(self, symbol: str) -> None:
        if self.unpriced.pop(symbol, None) is None:
            return
        if symbol in self.unpriced_warned:
            self.unpriced_warned.discard(symbol)
            self.storage.activity(
                Level.INFO,
                Kind.STALE_PRICES,
                f"prices for {symbol} are back: the risk guard sees this account's P&L there again",
                account=self.account,
            )
