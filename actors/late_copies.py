"""Copies that waited for a confirmed position longer than ``max_copy_age`` (S2.9, S3.5).

While a leader's or a follower's positions are unknown (its snapshot failed, S3.5), the leader's
fills wait: a leader's are fanned out once its answer says where it stood, a follower's offers
are decided once its own answer is in. Replayed one by one after a long wait, S2.9 would skip
each opening part as stale but still send each closing part — a leader that sold 1 and bought it
back while unknown would leave its follower closed while it still holds the position, which S3.5
forbids (never closed because a snapshot failed). So what waited past ``max_copy_age`` is not
replayed: it is treated as made while the account was down (S2.1), and the follower is
reconciled flatten-only toward the leader's position after it (S3.1, S3.2). What is still fresh
is copied as it happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from actors.messages.account import CopyOffer, RetryCopy

# A leader fill that waited: (fill id, symbol, signed qty, fill time, price).
HeldFill = tuple[str, str, int, datetime, Decimal]


def split_waited(
    fills: Sequence[HeldFill], now: datetime, max_age: timedelta
) -> tuple[list[HeldFill], list[HeldFill]]:
    """The leader's held fills, as (left to the reconciliation, fanned out): every fill up to
    the last one older than ``max_age``, then the rest, in order."""
    last = -1
    for index, (_, _, _, time, _) in enumerate(fills):
        if now - time > max_age:
            last = index
    return list(fills[: last + 1]), list(fills[last + 1 :])


def waited_too_long(
    offers: Sequence[CopyOffer | RetryCopy], group: str, now: datetime, max_age: timedelta
) -> bool:
    """Whether an offer of ``group`` held for the follower's snapshot is older than ``max_age``
    (a completion after a restart keeps S2.9's own rule, fill by fill)."""
    return any(
        isinstance(offer, CopyOffer)
        and offer.group == group
        and not offer.completion
        and now - offer.fill_time > max_age
        for offer in offers
    )
