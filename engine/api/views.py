"""Read models of the API, built from the engine's views and the store.

Called on a worker thread (``ApiContext.read``): each ``inspect`` runs between an actor's
messages, so what a view shows is what the actor had, never a half-handled message. The topology
is copied before it is walked; a command may change it meanwhile.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from actors import addresses
from engine.api import schemas
from engine.core.engine import Engine
from engine.core.setup_changes import AccountDeletion
from engine.core.topology import DeletionPlan, GroupConfig, UnknownId
from engine.domain.activity import Kind, Level

MAX_PAGE = 500


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"))) if value.is_finite() else str(value)


def connection_out(engine: Engine, connection: str) -> schemas.ConnectionOut:
    config = engine.topology.require_connection(connection)
    seen: tuple[str, bool] | None = engine.runtime.inspect(
        addresses.connection(connection), lambda c: (c.state.value, bool(c.offline))
    )
    state, offline = seen if seen is not None else (config.state, config.offline)
    accounts = [a.id for a in list(engine.topology.accounts.values()) if a.connection == connection]
    return schemas.ConnectionOut(
        id=config.id,
        broker=config.broker,
        state=state,
        offline=offline and state == "disconnected",
        accounts=accounts,
    )


def connections_out(engine: Engine) -> list[schemas.ConnectionOut]:
    out = []
    for connection in list(engine.topology.connections):
        try:
            out.append(connection_out(engine, connection))
        except UnknownId:
            continue  # deleted meanwhile
    return out


def account_out(engine: Engine, account: str) -> schemas.AccountOut:
    topology = engine.topology
    config = topology.require_account(account)
    view = engine.account_view(account)
    risk = engine.risk_view(account)
    if view is None or risk is None:
        raise UnknownId(f"unknown account {account!r}")
    membership = _membership(engine, account)
    daily = view.realized_daily + view.unrealized
    weekly = view.realized_weekly + view.unrealized
    return schemas.AccountOut(
        id=account,
        connection=config.connection,
        connection_state=view.connection_state,
        positions=dict(view.positions),
        working_orders=view.working,
        balance=_money(view.balance),
        realized_daily=_money(view.realized_daily),
        realized_weekly=_money(view.realized_weekly),
        unrealized=_money(view.unrealized),
        daily_pnl=_money(daily),
        weekly_pnl=_money(weekly),
        equity=_money(view.balance + daily),
        high_water=_money(risk.high_water),
        risk_status=risk.status.value,
        lock_reason=risk.lock_reason.value,
        flattening=risk.flattening,
        supervisor_hold=risk.supervisor_hold,
        limits={k: str(v) for k, v in sorted(risk.limits.items())},
        triggers_off=list(risk.triggers_off),
        membership=membership,
        copying=_copying(view.connection_state, risk.status.value, membership),
    )


def _membership(engine: Engine, account: str) -> schemas.Membership | None:
    found = engine.topology.group_of(account)
    if found is None:
        return None
    group, leads = found
    if leads:
        return schemas.Membership(group=group, role="leader")
    view = engine.group_view(group)
    members = view.members if view is not None else engine.topology.groups[group].members
    for m in members:
        if m.account == account:
            return schemas.Membership(
                group=group,
                role="follower",
                ratio=str(m.ratio),
                max_qty=m.max_qty,
                symbol_map=dict(m.symbol_map),
                disable_reason=m.disable_reason,
            )
    return None


def _copying(connection_state: str, status: str, membership: schemas.Membership | None) -> str:
    """How copying stands for the account, in words for the Cockpit."""
    if membership is None:
        return "not in a group"
    if membership.role == "leader":
        if connection_state != "connected":
            return f"paused: leader's connection {connection_state}"
        return "leader"
    if connection_state != "connected":
        return f"paused: connection {connection_state}"
    if membership.disable_reason:
        return f"disabled: {membership.disable_reason}"
    if status != "OK":
        return f"disabled: {status}"
    return "copying"


def accounts_out(engine: Engine, connection: str | None = None) -> list[schemas.AccountOut]:
    out = []
    for config in list(engine.topology.accounts.values()):
        if connection is not None and config.connection != connection:
            continue
        try:
            out.append(account_out(engine, config.id))
        except UnknownId:
            continue
    return out


def limits_out(engine: Engine, account: str) -> schemas.Limits:
    engine.topology.require_account(account)
    risk = engine.risk_view(account)
    if risk is None:
        raise UnknownId(f"unknown account {account!r}")
    return schemas.Limits(
        account=account,
        limits={k: str(v) for k, v in sorted(risk.limits.items())},
        triggers_off=list(risk.triggers_off),
    )


def group_out(engine: Engine, group: str) -> schemas.GroupOut:
    config = engine.topology.require_group(group)
    view = engine.group_view(group)
    members = view.members if view is not None else tuple(config.members)
    return schemas.GroupOut(
        id=group,
        leader=config.leader,
        followers=[
            schemas.FollowerOut(
                account=m.account,
                ratio=str(m.ratio),
                max_qty=m.max_qty,
                symbol_map=dict(m.symbol_map),
                disable_reason=m.disable_reason,
            )
            for m in members
        ],
        leader_positions=dict(view.leader_positions) if view is not None else {},
    )


def groups_out(engine: Engine) -> list[schemas.GroupOut]:
    out = []
    for group in list(engine.topology.groups):
        try:
            out.append(group_out(engine, group))
        except UnknownId:
            continue
    return out


# --- deletions ----------------------------------------------------------------------------------


def connection_deletion(plan: DeletionPlan, *, dry_run: bool) -> schemas.ConnectionDeletion:
    return schemas.ConnectionDeletion(
        dry_run=dry_run,
        connection=plan.connection,
        accounts=list(plan.accounts),
        groups=list(plan.groups),
        memberships=[{"group": g, "account": a} for g, a in plan.memberships],
        orphaned_followers=[{"group": g, "account": a} for g, a in plan.orphaned_followers],
    )


def account_deletion(plan: AccountDeletion, *, dry_run: bool) -> schemas.AccountDeletion:
    return schemas.AccountDeletion(
        dry_run=dry_run,
        account=plan.account,
        connection=plan.connection,
        groups=list(plan.groups),
        memberships=[{"group": g, "account": a} for g, a in plan.memberships],
        orphaned_followers=[{"group": g, "account": a} for g, a in plan.orphaned_followers],
    )


def group_deletion(config: GroupConfig, *, dry_run: bool) -> schemas.GroupDeletion:
    return schemas.GroupDeletion(
        dry_run=dry_run,
        group=config.id,
        leader=config.leader,
        followers=[m.account for m in config.members],
    )


# --- records (S7) -------------------------------------------------------------------------------


def _page_where(
    filters: dict[str, str | None],
    since: datetime | None,
    until: datetime | None,
    before: int | None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in filters.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("time >= ?")
        params.append(since.isoformat())
    if until is not None:
        clauses.append("time < ?")
        params.append(until.isoformat())
    if before is not None:
        clauses.append("seq < ?")
        params.append(before)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def activity_page(
    engine: Engine,
    *,
    account: str | None = None,
    connection: str | None = None,
    level: Level | None = None,
    kind: Kind | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 100,
) -> schemas.ActivityPage:
    engine.store.flush()
    where, params = _page_where(
        {
            "account": account,
            "connection": connection,
            "level": level.value if level else None,
            "kind": kind.value if kind else None,
        },
        since,
        until,
        before,
    )
    rows = engine.store.query(
        f"SELECT * FROM activity{where} ORDER BY seq DESC LIMIT ?", [*params, limit + 1]
    )
    items = [
        schemas.ActivityOut(
            seq=r["seq"],
            time=r["time"],
            level=r["level"],
            kind=r["kind"],
            account=r["account"],
            connection=r["connection"],
            message=r["message"],
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return schemas.ActivityPage(items=items, next_before=items[-1].seq if more else None)


def _positions(text: str) -> dict[str, int]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}


def reconciliation_page(
    engine: Engine,
    *,
    account: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 100,
) -> schemas.ReconciliationPage:
    engine.store.flush()
    where, params = _page_where({"account": account}, since, until, before)
    rows = engine.store.query(
        f"SELECT * FROM reconciliations{where} ORDER BY seq DESC LIMIT ?", [*params, limit + 1]
    )
    items = [
        schemas.ReconciliationOut(
            seq=r["seq"],
            time=r["time"],
            account=r["account"],
            connection=r["connection"],
            cause=r["cause"],
            before=_positions(r["before"]),
            target=_positions(r["target"]),
            orders=_positions(r["orders"]),
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return schemas.ReconciliationPage(items=items, next_before=items[-1].seq if more else None)


def order_page(
    engine: Engine,
    *,
    account: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 100,
) -> schemas.OrderPage:
    engine.store.flush()
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("account", account), ("status", status)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("created_at >= ?")
        params.append(since.isoformat())
    if until is not None:
        clauses.append("created_at < ?")
        params.append(until.isoformat())
    if before is not None:
        clauses.append("rowid < ?")
        params.append(before)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    rows = engine.store.query(
        f"SELECT rowid AS seq, * FROM orders{where} ORDER BY rowid DESC LIMIT ?",
        [*params, limit + 1],
    )
    items = [
        schemas.OrderOut(
            client_order_id=r["client_order_id"],
            account=r["account"],
            connection=r["connection"],
            symbol=r["symbol"],
            qty=r["qty"],
            order_type=r["order_type"],
            kind=r["kind"],
            cause=r["cause"],
            status=r["status"],
            reason=r["reason"] or None,
            created_at=r["created_at"],
            updated_at=r["updated_at"],
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return schemas.OrderPage(items=items, next_before=rows[limit - 1]["seq"] if more else None)


def counts(engine: Engine) -> tuple[int, int, int]:
    t = engine.topology
    return len(t.connections), len(t.accounts), len(t.groups)


__all__ = [
    "MAX_PAGE",
    "account_deletion",
    "account_out",
    "accounts_out",
    "activity_page",
    "connection_deletion",
    "connection_out",
    "connections_out",
    "counts",
    "group_deletion",
    "group_out",
    "groups_out",
    "limits_out",
    "order_page",
    "reconciliation_page",
]
