"""The storage door: what an actor saves and reads through (decision 0012).

An actor holds this protocol as ``ActorContext.storage``; ``engine.storage`` implements it
(``engine.storage.records.Records``). Actors contain no SQL and import no storage module, and
the host does not know which store it has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from brokers.base import Fill
from engine.domain.activity import Kind, Level
from engine.domain.connections import ConnectionState
from engine.domain.copying import LeaderFill
from engine.domain.ledger import LedgerRow
from engine.domain.state import AccountState, RiskState


class Storage(Protocol):
    # -- the activity log (S7.1) -------------------------------------------------------------

    def activity(
        self,
        level: Level,
        kind: Kind,
        message: str,
        *,
        account: str | None = None,
        connection: str | None = None,
        fill: str | None = None,
    ) -> None:
        """``fill``: the leader fill the entry belongs to, ``LEADER:fill id`` (the cause every
        copy of it carries): the leader's own entry, and each follower's copy, skip or
        rejection it caused."""
        ...

    # -- the order ledger (S2.6) ---------------------------------------------------------------

    def orders_sending(self, rows: Sequence[LedgerRow]) -> bool:
        """Make intents durable before they are sent. ``False``: they are not (the engine
        cannot make its state durable); only the orders ``engine.domain.ledger.sent_unlogged``
        allows go out, the rest are held back (decision 0014)."""
        ...

    def order_status(self, client_order_id: str, status: str, reason: str = "") -> None: ...

    # -- fills (S10.5) -------------------------------------------------------------------------

    def fill(self, fill: Fill, commission: Decimal) -> None:
        """A fill the account's book took (``commission``: what S9.1 charged for it), queued
        for the store like an activity entry: the reports and the export read it. A fill
        reported again — after a restart, say — is written once."""
        ...

    # -- fan-outs (S2.9) -----------------------------------------------------------------------

    def leader_fill(self, group: str, fill: LeaderFill) -> None:
        """Durable before the fan-out starts: a restart completes what a crash cut short."""
        ...

    def decide_copy(self, cause: str, account: str) -> bool:
        """Claim the decision on a copy offer; ``False`` when it was decided already."""
        ...

    def copy_settled(self, cause: str, account: str) -> None:
        """A copy offer ended without an order (nothing to send, skipped, refused)."""
        ...

    # -- reconciliation (S3.3) and markers -----------------------------------------------------

    def reconciliation(
        self,
        account: str,
        connection: str,
        cause: str,
        before: Mapping[str, int],
        target: Mapping[str, int],
        orders: Mapping[str, int],
    ) -> None: ...

    def set_marker(self, name: str, instant: datetime) -> None: ...

    # -- actors' durable state (S7.2) ------------------------------------------------------------

    def risk_decided(self, account: str, state: RiskState) -> None:
        """A status, lock or flatten change: durable when this returns, unless the engine
        cannot make its state durable (then written once it can; the actor acts on it)."""
        ...

    def save_account(self, account: str, state: AccountState) -> None: ...

    def save_risk(self, account: str, state: RiskState) -> None: ...

    def save_connection(
        self,
        connection: str,
        state: ConnectionState,
        *,
        offline: bool,
        token_expired: bool,
        reconnects: int,
        wait: bool = False,
    ) -> bool:
        """``wait``: committed when this returns ``True``; ``False`` when the engine cannot
        make its state durable now (the change is then not saved)."""
        ...

    def set_disable_reason(self, group: str, account: str, reason: str) -> None: ...
