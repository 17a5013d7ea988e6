"""ResetScheduleActor: fires the S5.8 resets at their instants on the engine clock.

Holds one timer, for the next reset; when it fires, every account is told to apply it, and the
timer is set for the one after. In replay, ``advance`` fires every reset in between at its exact
instant, in order, because the harness moves the virtual clock timer by timer.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from actors import addresses
from actors.risk_messages import ApplyReset
from engine.resets import Reset, next_reset
from engine.runtime.base import ActorContext

log = structlog.get_logger("actors.schedule")

ADDRESS = ("schedule", "resets")


@dataclass(frozen=True, slots=True)
class ResetDue:
    reset: Reset


@dataclass(frozen=True, slots=True)
class Track:
    account: str
    on: bool


class ResetScheduleActor:
    def __init__(self, ctx: ActorContext, accounts: list[str]) -> None:
        self.ctx = ctx
        self.accounts = list(accounts)
        self._arm()

    def _arm(self) -> None:
        upcoming = next_reset(self.ctx.now())
        self.ctx.services.timers.schedule(upcoming.at, self.ctx.address, ResetDue(upcoming))

    def receive(self, message: object) -> None:
        match message:
            case ResetDue(reset=reset):
                log.info("reset", kind=reset.kind.value, at=reset.at.isoformat())
                for account in self.accounts:
                    self.ctx.tell(addresses.account(account), ApplyReset(reset.kind, reset.at))
                self._arm()
            case Track(account=account, on=on):
                if on and account not in self.accounts:
                    self.accounts.append(account)
                elif not on and account in self.accounts:
                    self.accounts.remove(account)
            case _:
                log.warning("unknown message", message=repr(message))
