"""The supervisor: one-for-one restarts from durable state, with a restart intensity.

After Erlang/OTP. Every actor failure reaches :meth:`Supervisor.on_failure` (the runtime's
failure hook). The failed actor is rebuilt in place — same address, same mailbox, so messages
told to it meanwhile are not lost — from what the store holds, never from memory; the message
it failed on is dropped. Then whatever pointed at the old actor is re-linked: a restarted
account re-reads its positions and working orders from the broker, a restarted risk actor asks
its account for the book, a restarted group its leader for the positions, a restarted
connection its risk actors for their breach prices and the broker for a fresh snapshot. More
than ``intensity`` restarts of one actor within ``period`` escalate: its account (or the
accounts it serves) is held in LIQUIDATE_ONLY — no new exposure, no flatten — with an ``error``
activity entry, until a person unlocks it.
"""

from __future__ import annotations

from collections import defaultdict, deque
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from actors import addresses
from actors.messages.account import SendBook, SendPositions
from actors.messages.connection import ResyncAccount
from actors.messages.risk import RepublishBands, SupervisorHold
from engine.domain.activity import Kind, Level
from engine.host.address import Address

if TYPE_CHECKING:
    from engine.core.engine import Engine

log = structlog.get_logger("engine.core.supervisor")

RESTARTABLE = frozenset({"connection", "account", "risk", "group"})


class Supervisor:
    def __init__(
        self, engine: Engine, intensity: int = 5, period: timedelta = timedelta(seconds=30)
    ) -> None:
        self.engine = engine
        self.intensity = intensity
        self.period = period
        self.restarts: dict[Address, deque[datetime]] = defaultdict(deque)
        self.total = 0

    def on_failure(self, address: Address, error: BaseException) -> None:
        kind, ident = address
        engine = self.engine
        if kind not in RESTARTABLE or not engine.runtime.exists(address):
            log.error(
                "failure outside the supervised tree", actor=f"{kind}:{ident}", error=repr(error)
            )
            return
        now = engine.clock.now()
        history = self.restarts[address]
        history.append(now)
        while history and now - history[0] > self.period:
            history.popleft()
        engine.runtime.restart(address, engine.factory(address))
        self.total += 1
        account = ident if kind in ("account", "risk") else None
        engine.records.activity(
            Level.ERROR,
            Kind.RESTART,
            f"{kind} actor {ident} failed ({error!r}); restarted from the store "
            f"({len(history)} in {self.period.total_seconds():g} s)",
            account=account,
            connection=ident if kind == "connection" else None,
        )
        self._relink(kind, ident)
        if len(history) > self.intensity:
            self._escalate(kind, ident, len(history))

    def _relink(self, kind: str, ident: str) -> None:
        engine, tell = self.engine, self.engine.runtime.tell
        topology = engine.topology
        if kind == "account":
            connection = topology.accounts[ident].connection
            tell(addresses.connection(connection), ResyncAccount(ident))
        elif kind == "risk":
            tell(addresses.account(ident), SendBook())
        elif kind == "group":
            tell(addresses.account(topology.groups[ident].leader), SendPositions())
        elif kind == "connection":
            for account in topology.accounts_of(ident):
                tell(addresses.risk(account), RepublishBands())
                # A snapshot the old actor still waited for (or retried, S3.5) is asked for
                # again: one request, however many accounts.
                tell(addresses.connection(ident), ResyncAccount(account))

    def _escalate(self, kind: str, ident: str, count: int) -> None:
        topology = self.engine.topology
        if kind in ("account", "risk"):
            accounts = [ident]
        elif kind == "connection":
            accounts = topology.accounts_of(ident)
        else:
            group = topology.groups[ident]
            accounts = [group.leader, *(m.account for m in group.members)]
        reason = (
            f"{kind} actor {ident} restarted {count} times in "
            f"{self.period.total_seconds():g} s (limit {self.intensity})"
        )
        log.error("restart intensity exceeded", actor=f"{kind}:{ident}", restarts=count)
        for account in accounts:
            self.engine.runtime.tell(addresses.risk(account), SupervisorHold(reason))
