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

The supervisor itself is the strategy and its counts; what each kind of actor re-links and
holds is its child spec (``engine.core.children``), and it reaches the actors only through the
tree it is handed.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from brokers.clock import Clock
from engine.core.tree import ActorTree
from engine.domain.activity import Kind, Level
from engine.host.address import Address
from engine.storage.records import Records

log = structlog.get_logger("engine.core.supervisor")


@dataclass(frozen=True)
class ChildSpec:
    """How one kind of actor is supervised (OTP's child specification): what to re-link after
    it is restarted, and what to hold when its restarts exceed the intensity."""

    kind: str
    relink: Callable[[str], None]  # the actor's id
    escalate: Callable[[str, str], None]  # the actor's id, the reason


class Supervisor:
    """One-for-one: a failed child alone is restarted; past ``intensity`` restarts within
    ``period``, its spec escalates."""

    def __init__(
        self,
        tree: ActorTree,
        clock: Clock,
        records: Records,
        children: Iterable[ChildSpec],
        intensity: int = 5,
        period: timedelta = timedelta(seconds=30),
    ) -> None:
        self.tree = tree
        self.clock = clock
        self.records = records
        self.children = {spec.kind: spec for spec in children}
        self.intensity = intensity
        self.period = period
        self.restarts: dict[Address, deque[datetime]] = defaultdict(deque)
        self.total = 0

    def on_failure(self, address: Address, error: BaseException) -> None:
        kind, ident = address
        spec = self.children.get(kind)
        if spec is None or not self.tree.exists(address):
            log.error(
                "failure outside the supervised tree", actor=f"{kind}:{ident}", error=repr(error)
            )
            return
        now = self.clock.now()
        history = self.restarts[address]
        history.append(now)
        while history and now - history[0] > self.period:
            history.popleft()
        self.tree.restart(address)
        self.total += 1
        account = ident if kind in ("account", "risk") else None
        self.records.activity(
            Level.ERROR,
            Kind.RESTART,
            f"{kind} actor {ident} failed ({error!r}); restarted from the store "
            f"({len(history)} in {self.period.total_seconds():g} s)",
            account=account,
            connection=ident if kind == "connection" else None,
        )
        spec.relink(ident)
        if len(history) > self.intensity:
            count = len(history)
            reason = (
                f"{kind} actor {ident} restarted {count} times in "
                f"{self.period.total_seconds():g} s (limit {self.intensity})"
            )
            log.error("restart intensity exceeded", actor=f"{kind}:{ident}", restarts=count)
            spec.escalate(ident, reason)


__all__ = ["ChildSpec", "Supervisor"]
