"""ResetScheduleActor: fires the S5.8 resets at their instants on the engine clock.

Holds one timer, for the next reset; when it fires, every account is told to apply it, and the
timer is set for the one after. In replay, ``advance`` fires every reset in between at its exact
instant, in order, because the harness moves the virtual clock timer by timer.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from actors import addresses
from actors.messages.account import ApplyReset
from actors.messages.schedule import ResetDue, Track
from engine.domain.resets import Reset, next_reset, resets_between
from engine.host.base import ActorContext

log = structlog.get_logger("actors.schedule")

ADDRESS = ("schedule", "resets")
LAST_RESET = "last_reset"  # the instant of the last reset applied (or of the store's creation)


class ResetScheduleActor:
    def __init__(
        self, ctx: ActorContext, accounts: list[str], last_applied: datetime | None
    ) -> None:
        self.ctx = ctx
        self.accounts = list(accounts)
        if last_applied is not None:
            # S5.8: resets missed while the engine was down are applied, in order, at start-up.
            for missed in resets_between(last_applied, ctx.now()):
                self._apply(missed)
        else:
            self._persist(ctx.now())
        self._arm()

    def _apply(self, reset: Reset) -> None:
        log.info("reset", kind=reset.kind.value, at=reset.at.isoformat())
        for account in self.accounts:
            self.ctx.tell(addresses.account(account), ApplyReset(reset.kind, reset.at))
        self._persist(reset.at)

    def _persist(self, instant: datetime) -> None:
        self.ctx.storage.set_marker(LAST_RESET, instant)

    def _arm(self) -> None:
        upcoming = next_reset(self.ctx.now())
        self.ctx.services.timers.schedule(upcoming.at, self.ctx.address, ResetDue(upcoming))

    def receive(self, message: object) -> None:
        match message:
            case ResetDue(reset=reset):
                self._apply(reset)
                self._arm()
            case Track(account=account, on=on):
                if on and account not in self.accounts:
                    self.accounts.append(account)
                elif not on and account in self.accounts:
                    self.accounts.remove(account)
            case _:
                log.warning("unknown message", message=repr(message))
