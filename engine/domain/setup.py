"""The setup the actor tree is built from, as values: connections (broker logins), accounts with
their risk limits, and copy groups with their follower memberships.

The rules that keep a setup whole (S4.3) are the topology's (``engine.core.topology``); the rows
behind it are the store's (``engine.storage.setup_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from engine.domain.copying import Membership


@dataclass
class ConnectionConfig:
    id: str
    broker: str = "paper"
    state: str = "connected"
    offline: bool = False
    token_expired: bool = False
    reconnects: int = 0


@dataclass
class AccountConfig:
    id: str
    connection: str
    balance: Decimal = Decimal(50000)
    limits: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class GroupConfig:
    id: str
    leader: str
    members: list[Membership] = field(default_factory=list)


__all__ = ["AccountConfig", "ConnectionConfig", "GroupConfig"]
