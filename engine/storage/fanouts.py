"""The fan-out log: what a restart needs to complete a fan-out a crash cut short (S2.9).

A leader fill is written here (one frame, one ``write`` system call, in the leader account's
thread) before its fan-out starts. Every follower then leaves a durable trace of its decision:
an order intent in the intent log (``engine/intents.py``), or a *settled* frame here when the
offer ends without an order (nothing to send, skipped, refused by the gate, not sent). At the
next start, a logged fill with a follower that left no trace had its fan-out cut short: the
group offers it to that follower again, under the same rules (an opening copy older than
``max_copy_age`` is skipped as stale, a closing copy never is).

A follower that joined its group after a fill was never offered it: a ``joined`` frame, written
when the membership is made, tells which fills predate it.

Frames: ``["F", group, leader, fill_id, symbol, before, after, fill_time]`` for a leader fill,
``["S", cause, account]`` for a settled offer, ``["J", group, account]`` for a follower joining.
A torn last frame is dropped on open, like the intent log's (``engine/frames.py``).

The log is compacted (``engine/storage/compaction.py``) to what a restart still needs
(:func:`still_needed`): the fills not yet decided by every follower, the last fill of each
leader and symbol, the decisions on those, and the last join of each follower.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.domain.copying import LeaderFill, LoggedFill, PendingFill
from engine.domain.order_ids import OrderKind, label
from engine.storage.frames import FrameError, FrameLog, read_frames

FanOutLogError = FrameError

FILL, SETTLED, JOINED = "F", "S", "J"
COPY_KIND = label(OrderKind.COPY)  # the ledger's kind of a copy order
UNRESOLVED = frozenset({"sent", "unknown"})  # ledger statuses that say nothing of the outcome


@dataclass(slots=True)
class FanOutRecord:
    fills: list[LoggedFill] = field(default_factory=list)
    settled: set[tuple[str, str]] = field(default_factory=set)
    joined: dict[tuple[str, str], int] = field(default_factory=dict)  # last join's position


class FanOutLog(FrameLog):
    def leader_fill(self, group: str, fill: LeaderFill) -> None:
        self.append(
            [
                (
                    FILL,
                    group,
                    fill.leader,
                    fill.fill_id,
                    fill.symbol,
                    fill.before,
                    fill.after,
                    fill.fill_time.isoformat(),
                )
            ]
        )

    def settled(self, cause: str, account: str) -> None:
        self.append([(SETTLED, cause, account)])

    def joined(self, group: str, accounts: Iterable[str]) -> None:
        self.append([(JOINED, group, account) for account in accounts])

    def read(self) -> FanOutRecord:
        """What the log holds, in order."""
        frames, _ = read_frames(self.path)
        return parse_fanouts(self.path, frames)


def parse_fanouts(path: Path, frames: Sequence[Any]) -> FanOutRecord:
    """The fills, settlements and joins in ``frames`` (of the fan-out log at ``path``)."""
    record = FanOutRecord()
    for offset, frame in enumerate(frames):
        try:
            if frame[0] == FILL:
                _, group, leader, fill_id, symbol, before, after, at = frame
                record.fills.append(
                    LoggedFill(
                        str(group),
                        LeaderFill(
                            str(leader),
                            str(fill_id),
                            str(symbol),
                            int(before),
                            int(after),
                            datetime.fromisoformat(at),
                        ),
                        offset,
                    )
                )
            elif frame[0] == SETTLED:
                record.settled.add((str(frame[1]), str(frame[2])))
            elif frame[0] == JOINED:
                record.joined[(str(frame[1]), str(frame[2]))] = offset
            else:
                raise ValueError(f"unknown frame kind {frame[0]!r}")
        except (TypeError, ValueError, IndexError, KeyError) as error:
            raise FanOutLogError(f"{path}: frame {offset + 1}: {error}") from None
    return record


def still_needed(
    path: Path,
    frames: Sequence[Any],
    decided_elsewhere: Container[tuple[str, str]],
    followers: Mapping[str, tuple[str, ...]],
) -> list[Any]:
    """The frames of the fan-out log a restart still needs (decision 0013), in their order:
    each fill some follower — a member now, and already when the fill came — has not decided
    on, and the last fill of each leader and symbol (a restart compares the leader's position
    with it); after each kept fill, one settled frame per decision made on it, whether the log
    or ``decided_elsewhere`` (copies whose order has an answer in the ledger) knows it; and the
    last join of each follower to each group. Everything else is settled and goes."""
    record = parse_fanouts(path, frames)
    decided = _Either(record.settled, decided_elsewhere)
    pending = pending_fills(record.fills, decided, followers, record.joined)
    keep = {p.fill.position for found in pending.values() for p in found}
    last: dict[tuple[str, str], int] = {}
    for fill in record.fills:
        last[(fill.fill.leader, fill.fill.symbol)] = fill.position
    keep.update(last.values())
    fills = {fill.position: fill for fill in record.fills}
    members: dict[str, set[str]] = {}
    for cause, account in record.settled:
        members.setdefault(cause, set()).add(account)
    out: list[Any] = []
    for offset, frame in enumerate(frames):
        if frame[0] == FILL and offset in keep:
            out.append(frame)
            fill = fills[offset]
            candidates = members.get(fill.cause, set()) | set(followers.get(fill.group, ()))
            out.extend(
                (SETTLED, fill.cause, account)
                for account in sorted(candidates)
                if (fill.cause, account) in decided
            )
        elif frame[0] == JOINED and record.joined.get((str(frame[1]), str(frame[2]))) == offset:
            out.append(frame)
    return out


class _Either:
    """Decided when either set says so."""

    def __init__(self, *sets: Container[tuple[str, str]]) -> None:
        self.sets = sets

    def __contains__(self, key: object) -> bool:
        return any(key in found for found in self.sets)


def decided_copies(
    settled: Iterable[tuple[str, str]],
    intents: Iterable[Any],
    statuses: Mapping[str, str],
) -> set[tuple[str, str]]:
    """Every (cause, follower) whose copy decision is durable and its outcome known: settled
    without an order, or a copy order the ledger has an answer for. A copy intent of unknown
    outcome is not decided: the follower asks the broker about it (S2.6)."""
    decided = set(settled)
    for frame in intents:
        if not isinstance(frame, list | tuple) or len(frame) < 8:
            continue
        coid, account, kind, cause = str(frame[0]), str(frame[1]), str(frame[6]), str(frame[7])
        if kind == COPY_KIND and statuses.get(coid, "unknown") not in UNRESOLVED:
            decided.add((cause, account))
    return decided


def pending_fills(
    fills: Iterable[LoggedFill],
    decided: Container[tuple[str, str]],
    followers: Mapping[str, tuple[str, ...]],
    joined: Mapping[tuple[str, str], int],
) -> dict[str, list[PendingFill]]:
    """By group: the logged fills with followers — members now, and already when the fill
    came — that never decided on them."""
    last_after: dict[tuple[str, str], int] = {}
    undecided: list[tuple[LoggedFill, tuple[str, ...]]] = []
    for fill in fills:
        last_after[(fill.fill.leader, fill.fill.symbol)] = fill.fill.after
        members = followers.get(fill.group, ())
        missing = tuple(
            m
            for m in members
            if (fill.cause, m) not in decided and joined.get((fill.group, m), -1) < fill.position
        )
        if missing:
            undecided.append((fill, missing))
    pending: dict[str, list[PendingFill]] = {}
    for fill, missing in undecided:
        pending.setdefault(fill.group, []).append(
            PendingFill(fill, missing, last_after[(fill.fill.leader, fill.fill.symbol)])
        )
    return pending
