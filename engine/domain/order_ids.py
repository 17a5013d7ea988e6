"""S2.6: client order ids derived deterministically from an order's cause.

The same cause, account, contract and attempt always give the same id, so an order re-sent
after a crash is recognisable by the broker and by the ledger; nothing is ever placed twice.
The id names its kind in its first letter (C copy, R reconciliation, L liquidation, S sync,
M mirror, X max-contracts reduction, D drift reduction),
which is how an account tells the risk actor's liquidations from copies without a lookup.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum


class OrderKind(StrEnum):
    COPY = "C"
    RECONCILE = "R"
    LIQUIDATE = "L"
    SYNC = "S"  # the user's sync command (S6.2)
    MIRROR = "M"  # a mirror of a leader's working order (S8)
    REDUCE = "X"  # brings the account back within its max contracts (S9.2)
    DRIFT = "D"  # brings a drifting follower toward its expected position (S10.2)


_LABELS = {
    OrderKind.COPY: "copy",
    OrderKind.RECONCILE: "reconciliation",
    OrderKind.LIQUIDATE: "liquidation",
    OrderKind.SYNC: "sync",
    OrderKind.MIRROR: "mirror",
    OrderKind.REDUCE: "reduction",
    OrderKind.DRIFT: "drift reduction",
}


def label(kind: OrderKind | None) -> str:
    """What an order of ``kind`` is called in the ledger and the activity log; an order the
    engine did not send (no kind) is a manual one."""
    return "manual" if kind is None else _LABELS[kind]


def leader_fill_of(kind: OrderKind | None, cause: str) -> str | None:
    """The leader fill an order of ``kind`` with ``cause`` copies (``LEADER:fill id``, the key
    its activity entries carry): a copy's cause is that fill; other orders copy none."""
    return cause if kind is OrderKind.COPY and cause else None


def client_order_id(kind: OrderKind, cause: str, account: str, symbol: str, attempt: int) -> str:
    digest = hashlib.blake2b(f"{cause}|{account}|{symbol}".encode(), digest_size=8).hexdigest()
    return f"{kind.value}{digest}-{attempt}"


def mirror_prefix(leader_order_id: str, account: str) -> str:
    """What every version of ``account``'s mirror of a leader order starts with (S8.9): the
    mirror found at the broker after a restart is matched to its leader order by it."""
    digest = hashlib.blake2b(f"{leader_order_id}|{account}".encode(), digest_size=8).hexdigest()
    return f"{OrderKind.MIRROR.value}{digest}-"


def mirror_order_id(leader_order_id: str, account: str, version: int) -> str:
    """S8.9: a mirror's client order id, from the leader order's id, the follower account and
    the mirror's version (a mirror placed again after it ended is a new version, never a
    re-send). A bracket's legs are mirrored with the ids of the leader's legs they mirror."""
    return f"{mirror_prefix(leader_order_id, account)}{version}"


def kind_of(client_order_id: str | None) -> OrderKind | None:
    if not client_order_id:
        return None
    try:
        return OrderKind(client_order_id[0])
    except ValueError:
        return None


def attempt_of(client_order_id: str) -> int:
    return int(client_order_id.rsplit("-", 1)[1])
