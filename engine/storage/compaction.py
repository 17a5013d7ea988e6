"""Keeping the intent, fan-out and status logs to what a restart still needs (decision 0013).

The three logs are append-only (decisions 0002 and 0011): every order, every leader fill and
every risk status change adds a frame. Once the store holds what a frame said, and the order
or fan-out it was about is settled, a restart no longer needs it. A compaction rewrites each
log atomically (``FrameLog.rewrite``: a new file, flushed to disk, renamed over the old one) to:

- the intent log: the intents whose order has no final status in the ledger yet (no ledger row,
  or ``sent`` / ``unknown``): those a restart looks up at the broker (S2.6). The cause numbers
  of the intents dropped are first moved into the store's counters, so no client order id is
  ever derived twice (``engine/storage/recovery.py``);
- the fan-out log: the fills some follower has not decided on, the last fill of each leader
  and symbol, one settled frame per decision on those — an answered copy order included, since
  its intent goes — and the last join of each follower (``fanouts.still_needed``). It is
  rewritten before the intent log: a crash between the two leaves the decisions in both;
- the status log: per account, the newest state when the store's row is older.

The engine compacts at every start, once the recovery has read the logs, and while running
whenever a log has grown past ``COMPACT_AFTER_BYTES`` and doubled since it was last compacted
(``Engine.maintain``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from engine.storage.durable import decode_risk
from engine.storage.fanouts import COPY_KIND, UNRESOLVED, still_needed
from engine.storage.recovery import advance_counters
from engine.storage.store import Store

if TYPE_CHECKING:
    from engine.storage.records import Records

log = structlog.get_logger("engine.storage.compaction")

COMPACT_AFTER_BYTES = 1 << 20  # a log past this size, and twice its size after the last


@dataclass(frozen=True, slots=True)
class Compacted:
    """Bytes before and after, per log."""

    intents: tuple[int, int]
    fanouts: tuple[int, int]
    statuses: tuple[int, int]


def is_intent(frame: Any) -> bool:
    return isinstance(frame, list | tuple) and len(frame) >= 8


def compact(records: Records, followers: Mapping[str, tuple[str, ...]]) -> Compacted:
    """Rewrite the three logs to what a restart still needs; ``followers``: each group's
    members now."""
    store = records.store
    store.flush()
    intents = [frame for frame in records.intents if is_intent(frame)]
    statuses = records.ledger_statuses(str(frame[0]) for frame in intents)
    final = {
        coid for coid, status in statuses.items() if status not in UNRESOLVED
    }  # answered: the ledger has the outcome
    answered = {
        (str(frame[7]), str(frame[1]))
        for frame in intents
        if str(frame[6]) == COPY_KIND and str(frame[0]) in final
    }
    advance_counters(store, [frame for frame in intents if str(frame[0]) in final])
    path = records.fanouts.path
    fanouts = records.fanouts.rewrite(
        lambda frames: still_needed(path, frames, answered, followers)
    )
    kept_intents = records.intents.rewrite(
        lambda frames: [f for f in frames if not (is_intent(f) and str(f[0]) in final)]
    )
    kept_statuses = records.statuses.rewrite(lambda frames: _newer_statuses(store, frames))
    done = Compacted(kept_intents, fanouts, kept_statuses)
    log.info(
        "logs compacted",
        intents=f"{done.intents[0]} -> {done.intents[1]} bytes",
        fanouts=f"{done.fanouts[0]} -> {done.fanouts[1]} bytes",
        statuses=f"{done.statuses[0]} -> {done.statuses[1]} bytes",
    )
    return done


def _newer_statuses(store: Store, frames: Sequence[Any]) -> list[Any]:
    """Per account, the last frame when it is newer than the store's row."""
    stored = {
        str(row[0]): int(row[1]) for row in store.query("SELECT account, version FROM risk_state")
    }
    last: dict[str, int] = {}
    versions: dict[int, int] = {}
    for offset, frame in enumerate(frames):
        try:
            account, data = frame
            versions[offset] = decode_risk(data).version
        except (KeyError, TypeError, ValueError, ArithmeticError):
            continue  # kept as it is: the start reports it, with its place
        last[str(account)] = offset
    keep = {
        offset for account, offset in last.items() if versions[offset] > stored.get(account, -1)
    }
    return [f for offset, f in enumerate(frames) if offset in keep or offset not in versions]


def due(sizes: Iterable[tuple[int, int]]) -> bool:
    """Whether a log (its size now, and after its last compaction) has grown enough."""
    return any(now > COMPACT_AFTER_BYTES and now > 2 * after for now, after in sizes)
