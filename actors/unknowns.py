"""What the broker could not confirm, said once each (S3.5): an account's snapshot whose
answer was unknown, and a leader's that a follower's reconciliation waits for. Symbols held
while the broker gives no prices for them are ``actors/stale_prices.py`` (S10.3)."""

from __future__ import annotations

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
