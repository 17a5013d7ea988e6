"""The setup the actor tree is built from, as values: connections (broker logins), accounts with
their own risk keys and the named profile they use (S5, S9.7), and copy groups with their
follower memberships. The named profiles and the engine-wide blackouts (S9.5) are the
topology's.

The rules that keep a setup whole (S4.3) are the topology's (``engine.core.topology``); the rows
behind it are the store's (``engine.storage.setup_rows``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from engine.domain.copying import Membership
from engine.domain.risk_profile import RiskValue
from engine.domain.watching import OnDrift

# The form of every id the user gives: connections, accounts, groups, profiles.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ID_FORM = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def is_id(text: object) -> bool:
    return isinstance(text, str) and re.fullmatch(ID_PATTERN, text) is not None


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
    # Its own risk keys (S5.2 limits and S9 keys), which override its profile's key by key.
    limits: dict[str, RiskValue] = field(default_factory=dict)
    profile: str | None = None  # the named profile it uses (S9.7), if any


@dataclass
class GroupConfig:
    id: str
    leader: str
    members: list[Membership] = field(default_factory=list)
    on_drift: OnDrift = OnDrift.ALERT  # S10.2


__all__ = ["ID_FORM", "ID_PATTERN", "AccountConfig", "ConnectionConfig", "GroupConfig", "is_id"]
