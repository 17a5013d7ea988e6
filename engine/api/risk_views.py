"""Read models of an account's risk profile (S5.2, S9): its own keys, its profile and the keys in
force (from the setup, where a command changes them first), the S9 figures its risk and account
actors publish, the named profiles (S9.7) and the blackouts (S9.5)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from actors.account import AccountView
from actors.risk import RiskView
from engine.api import risk_schemas as rs
from engine.core.engine import Engine
from engine.core.topology import Topology, UnknownId
from engine.domain.decimals import plain
from engine.domain.risk_profile import number_text
from engine.domain.sessions import Blackout

SHARE = Decimal("0.0001")


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.01")))


def rules_fields(view: AccountView, risk: RiskView) -> dict[str, Any]:
    """The S9 figures of an account's answer: the threshold and the room above it (S9.3), the
    contracts in use and the cap (S9.2), the next session close (S9.4), the blackout running or
    next (S9.5), the best day's share (S9.6), the commissions charged (S9.1)."""
    blackout = risk.blackout
    share = risk.best_day_share
    return {
        "threshold": _money(risk.threshold),
        # The equity above it, at the prices the account's equity is shown at.
        "threshold_distance": _money(
            None if risk.threshold is None else view.equity - risk.threshold
        ),
        "start_balance": _money(risk.start_balance),
        "contracts_in_use": number_text(risk.contracts_in_use),
        "max_contracts": None if risk.max_contracts is None else number_text(risk.max_contracts),
        "next_session_close": (
            None if risk.next_session_close is None else risk.next_session_close.isoformat()
        ),
        "blackout": None
        if blackout is None
        else rs.AccountBlackout(
            start=blackout.start.isoformat(),
            end=blackout.end.isoformat(),
            label=blackout.label,
            active=risk.blackout_active,
        ),
        "best_day_share": None if share is None else plain(share.quantize(SHARE)),
        "commissions": _money(view.commissions),
    }


def limits_out(engine: Engine, account: str, topology: Topology | None = None) -> rs.Limits:
    """The account's own keys, its profile and every key in force, read from the setup."""
    topology = engine.topology_snapshot() if topology is None else topology
    config = topology.require_account(account)
    risk = engine.risk_view(account)
    if risk is None:
        raise UnknownId(f"unknown account {account!r}")
    return rs.Limits(
        account=account,
        profile=config.profile,
        limits=rs.values_json(config.limits),
        effective=rs.values_json(topology.effective(account)),
        triggers_off=list(risk.triggers_off),
    )


def profile_out(topology: Topology, name: str) -> rs.ProfileOut:
    values = topology.profiles.get(name)
    if values is None:
        known = ", ".join(sorted(topology.profiles)) or "none"
        raise UnknownId(f"unknown profile {name!r} (profiles: {known})")
    return rs.ProfileOut(
        name=name,
        limits=rs.values_json(values),
        accounts=sorted(topology.users_of(name)),
    )


def profiles_out(engine: Engine) -> list[rs.ProfileOut]:
    topology = engine.topology_snapshot()
    return [profile_out(topology, name) for name in sorted(topology.profiles)]


def blackout_out(blackout: Blackout, now: datetime) -> rs.BlackoutOut:
    return rs.BlackoutOut(
        key=blackout.key(),
        start=blackout.start.isoformat(),
        end=blackout.end.isoformat(),
        label=blackout.label,
        active=blackout.active(now),
    )


def blackouts_out(engine: Engine, now: datetime) -> list[rs.BlackoutOut]:
    """Every blackout, the earliest first."""
    return [blackout_out(b, now) for b in sorted(engine.topology_snapshot().blackouts)]


__all__ = [
    "blackout_out",
    "blackouts_out",
    "limits_out",
    "profile_out",
    "profiles_out",
    "rules_fields",
]
