"""The status log: a risk status, lock or flatten change, durable before anything acts on it
(S7.2).

A breach or a lock must survive a kill that comes right after it — before the liquidation it
starts is even sent, before a person reads about it. Waiting for the store's writer to commit
would hold the risk actor (and every actor sharing its thread) behind everything else queued
for the store, just when a thousand accounts breach at once. So the decisive state is appended
here with one ``write`` system call from the risk actor's own thread — the guarantee of the
intent log (decision 0002) — and the store row follows behind, as every other write does.
The flatten in flight is part of that state, with the attempt number of each liquidation it has
sent: a restart carries it on, and never re-cancels or re-sends what the broker already has.

Each state carries a version, one more at every save of that account's risk state. At a start
the engine takes, per account, the newer of the store's row and the log's last frame, writes it
to the store, and empties the log. Frames: ``[account, {risk state}]`` (``engine/durable.py``).
"""

from __future__ import annotations

from engine.domain.state import RiskState
from engine.storage.durable import decode_risk, encode_risk
from engine.storage.frames import FrameError, FrameLog, read_frames

StatusLogError = FrameError


class StatusLog(FrameLog):
    def record(self, account: str, state: RiskState) -> None:
        self.append([(account, encode_risk(state))])

    def latest(self) -> dict[str, RiskState]:
        """The last state logged for each account."""
        frames, _ = read_frames(self.path)
        found: dict[str, RiskState] = {}
        for number, frame in enumerate(frames, start=1):
            try:
                account, data = frame
                found[str(account)] = decode_risk(data)
            except (KeyError, TypeError, ValueError, ArithmeticError) as error:
                raise StatusLogError(f"{self.path}: frame {number}: {error!r}") from None
        return found
