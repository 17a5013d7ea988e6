"""Read models of the API, built from the engine's reads and the store's queries.

Called on a worker thread (``ApiContext.read``). Each actor view is the one the actor published
after its last batch of messages (``engine/host/views.py``): what the actor had between two
messages, never a half-handled one, read at once however busy the actors are. What a command
sets in the engine's own setup (membership terms, limits) is read from the setup, so a command's
answer and the reads after it show it even before the actor has handled it. The topology is a
copy (``Engine.topology_snapshot``); a command may change the engine's own meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Literal, cast

from actors.account import AccountView
from actors.group import GroupView
from actors.risk import RiskView
from engine.api import schemas
from engine.api.risk_schemas import values_json
from engine.api.risk_views import rules_fields
from engine.core.engine import Engine
from engine.core.topology import AccountDeletion, DeletionPlan, GroupConfig, Topology, UnknownId
from engine.domain.activity import Kind, Level
from engine.domain.copying import Membership
from engine.domain.decimals import plain
from engine.domain.limit_distances import AccountFigures, limit_distances
from engine.domain.risk_profile import RiskRules
from engine.domain.risk_status import RiskStatus
from engine.domain.working import WorkingLine
from engine.storage.queries import Window

MAX_PAGE = 500


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"))) if value.is_finite() else str(value)


def connection_out(
    engine: Engine, connection: str, topology: Topology | None = None
) -> schemas.ConnectionOut:
    topology = engine.topology_snapshot() if topology is None else topology
    config = topology.require_connection(connection)
    seen = engine.connection_status(connection)
    state, offline = seen if seen is not None else (config.state, config.offline)
    accounts = topology.accounts_of(connection)
    return schemas.ConnectionOut(
        id=config.id,
        broker=config.broker,
        state=state,
        offline=offline and state == "disconnected",
        accounts=accounts,
    )


def connections_out(engine: Engine) -> list[schemas.ConnectionOut]:
    out = []
    topology = engine.topology_snapshot()
    for connection in topology.connections:
        try:
            out.append(connection_out(engine, connection, topology))
        except UnknownId:
            continue  # deleted meanwhile
    return out


def account_out(
    engine: Engine, account: str, topology: Topology | None = None
) -> schemas.AccountOut:
    topology = engine.topology_snapshot() if topology is None else topology
    config = topology.require_account(account)
    view = engine.account_view(account)
    risk = engine.risk_view(account)
    if view is None or risk is None:
        raise UnknownId(f"unknown account {account!r}")
    membership = _membership(engine, topology, account)
    effective = topology.effective(account)
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
        daily_pnl=_money(view.daily_pnl),
        weekly_pnl=_money(view.weekly_pnl),
        equity=_money(view.equity),
        high_water=_money(risk.high_water),
        risk_status=risk.status.value,
        lock_reason=risk.lock_reason.value,
        flattening=risk.flattening,
        supervisor_hold=risk.supervisor_hold,
        drift=dict(view.drift),
        profile=config.profile,
        limits=values_json(config.limits),
        effective=values_json(effective),
        triggers_off=list(risk.triggers_off),
        limit_distances=_limit_distances(view, risk, RiskRules.of(effective).limits),
        membership=membership,
        copying=_copying(view.connection_state, risk.status.value, membership),
        orders=[working_order_out(line) for line in view.orders],
        missed_copies=list(view.missed_copies),
        stale_prices=list(view.stale_prices),
        **rules_fields(view, risk),
    )


def _price(value: Decimal | None) -> str | None:
    return None if value is None else plain(value)


def working_order_out(line: WorkingLine) -> schemas.WorkingOrderOut:
    return schemas.WorkingOrderOut(
        broker_order_id=line.broker_order_id,
        client_order_id=line.client_order_id,
        symbol=line.symbol,
        qty=line.qty,
        order_type=str(line.order_type),
        price=_price(line.price),
        stop=_price(line.stop),
        role=_role(line.role),
        active=line.active,
        mirrors=line.mirrors,
    )


def _role(role: str | None) -> Literal["stop", "target"] | None:
    if role is None:
        return None
    return "stop" if str(role) == "stop" else "target"


def _limit_distances(
    view: AccountView, risk: RiskView, limits: Mapping[str, Decimal]
) -> list[schemas.LimitDistanceOut]:
    """Each limit of the setup's (what a command set first) and the distance to it, on the
    account's figures at the market's prices now."""
    figures = AccountFigures(view.daily_pnl, view.weekly_pnl, view.equity, risk.high_water)
    halted = risk.status is not RiskStatus.OK
    return [
        schemas.LimitDistanceOut(
            limit=cast(schemas.LimitName, d.limit.value),
            value=plain(d.value),
            distance=_money(d.distance),
            standing=d.standing.value,
        )
        for d in limit_distances(figures, limits, off=risk.triggers_off, halted=halted)
    ]


def _membership(engine: Engine, topology: Topology, account: str) -> schemas.Membership | None:
    found = topology.group_of(account)
    if found is None:
        return None
    group, leads = found
    if leads:
        return schemas.Membership(group=group, role="leader")
    for m in topology.groups[group].members:
        if m.account == account:
            return schemas.Membership(
                group=group,
                role="follower",
                ratio=plain(m.ratio),
                max_qty=m.max_qty,
                symbol_map=dict(m.symbol_map),
                disable_reason=_reason(engine.group_view(group), m),
                copy=m.copy,
            )
    return None


def _reason(view: GroupView | None, member: Membership) -> str:
    """A follower's disable reason: its group actor's (S5.3); the terms are the setup's, where
    a command changes them first."""
    if view is not None:
        for m in view.members:
            if m.account == member.account:
                return m.disable_reason
    return member.disable_reason


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
    topology = engine.topology_snapshot()
    for config in topology.accounts.values():
        if connection is not None and config.connection != connection:
            continue
        try:
            out.append(account_out(engine, config.id, topology))
        except UnknownId:
            continue
    return out


def follower_out(member: Membership) -> schemas.FollowerOut:
    return schemas.FollowerOut(
        account=member.account,
        ratio=plain(member.ratio),
        max_qty=member.max_qty,
        symbol_map=dict(member.symbol_map),
        disable_reason=member.disable_reason,
        copy=member.copy,
    )


def group_out(engine: Engine, group: str) -> schemas.GroupOut:
    config = engine.group(group)
    view = engine.group_view(group)
    members = [replace(m, disable_reason=_reason(view, m)) for m in config.members]
    return schemas.GroupOut(
        id=group,
        leader=config.leader,
        followers=[follower_out(m) for m in members],
        leader_positions=dict(view.leader_positions) if view is not None else {},
        on_drift=config.on_drift,
    )


def groups_out(engine: Engine) -> list[schemas.GroupOut]:
    out = []
    for group in engine.topology_snapshot().groups:
        try:
            out.append(group_out(engine, group))
        except UnknownId:
            continue
    return out


# --- deletions ----------------------------------------------------------------------------------


def staying_orders(engine: Engine, accounts: Iterable[str]) -> list[schemas.StayingOrder]:
    """S8.8: the working orders of ``accounts`` (those a deletion removes or leaves without a
    group), which stay at the broker: a deletion sends nothing, cancels included."""
    out = []
    for account in dict.fromkeys(accounts):
        view = engine.account_view(account)
        if view is not None:
            out += [
                schemas.StayingOrder(account=account, **working_order_out(line).model_dump())
                for line in view.orders
            ]
    return out


def touched_by(plan: DeletionPlan | AccountDeletion) -> list[str]:
    """The accounts a deletion removes or takes out of their group."""
    removed = plan.accounts if isinstance(plan, DeletionPlan) else (plan.account,)
    return [
        *removed,
        *(a for _, a in plan.memberships),
        *(a for _, a in plan.orphaned_followers),
    ]


def connection_deletion(
    plan: DeletionPlan, orders: list[schemas.StayingOrder], *, dry_run: bool
) -> schemas.ConnectionDeletion:
    return schemas.ConnectionDeletion(
        dry_run=dry_run,
        connection=plan.connection,
        accounts=list(plan.accounts),
        groups=list(plan.groups),
        memberships=[{"group": g, "account": a} for g, a in plan.memberships],
        orphaned_followers=[{"group": g, "account": a} for g, a in plan.orphaned_followers],
        working_orders=orders,
    )


def account_deletion(
    plan: AccountDeletion, orders: list[schemas.StayingOrder], *, dry_run: bool
) -> schemas.AccountDeletion:
    return schemas.AccountDeletion(
        dry_run=dry_run,
        account=plan.account,
        connection=plan.connection,
        groups=list(plan.groups),
        memberships=[{"group": g, "account": a} for g, a in plan.memberships],
        orphaned_followers=[{"group": g, "account": a} for g, a in plan.orphaned_followers],
        working_orders=orders,
    )


def group_deletion(
    config: GroupConfig, orders: list[schemas.StayingOrder], *, dry_run: bool
) -> schemas.GroupDeletion:
    """The followers' working orders stay at the broker, no longer followed (S8.8); the
    leader's are its own."""
    return schemas.GroupDeletion(
        dry_run=dry_run,
        group=config.id,
        leader=config.leader,
        followers=[m.account for m in config.members],
        working_orders=orders,
    )


# --- records (S7) -------------------------------------------------------------------------------


def activity_page(
    engine: Engine,
    *,
    account: str | None = None,
    connection: str | None = None,
    level: Level | None = None,
    kind: Kind | None = None,
    fill: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 100,
) -> schemas.ActivityPage:
    page = engine.queries.activity(
        Window(since, until, before, limit),
        account=account,
        connection=connection,
        level=level.value if level else None,
        kind=kind.value if kind else None,
        fill=fill,
    )
    items = [
        schemas.ActivityOut(
            seq=r.seq,
            time=r.time,
            level=r.level,
            kind=r.kind,
            account=r.account,
            connection=r.connection,
            message=r.message,
            fill=r.fill,
        )
        for r in page.items
    ]
    return schemas.ActivityPage(items=items, next_before=page.next_before)


def reconciliation_page(
    engine: Engine,
    *,
    account: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 100,
) -> schemas.ReconciliationPage:
    page = engine.queries.reconciliations(Window(since, until, before, limit), account=account)
    items = [
        schemas.ReconciliationOut(
            seq=r.seq,
            time=r.time,
            account=r.account,
            connection=r.connection,
            cause=r.cause,
            before=r.before,
            target=r.target,
            orders=r.orders,
        )
        for r in page.items
    ]
    return schemas.ReconciliationPage(items=items, next_before=page.next_before)


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
    page = engine.queries.orders(
        Window(since, until, before, limit), account=account, status=status
    )
    items = [
        schemas.OrderOut(
            client_order_id=r.client_order_id,
            account=r.account,
            connection=r.connection,
            symbol=r.symbol,
            qty=r.qty,
            order_type=r.order_type,
            kind=r.kind,
            cause=r.cause,
            status=r.status,
            reason=r.reason or None,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in page.items
    ]
    return schemas.OrderPage(items=items, next_before=page.next_before)


def counts(engine: Engine) -> tuple[int, int, int]:
    t = engine.topology_snapshot()
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
    "order_page",
    "reconciliation_page",
]
