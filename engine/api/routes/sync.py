"""Sync (S6.2): a follower brought to its leader's target ``t(L)`` on request, opening or adding
if needed — shown first (``?dry_run=true``, nothing sent), then confirmed with the orders shown
as ``expect``: the follower sends nothing if its plan differs by the time it acts (the leader
or the follower traded in between), and says so in a ``skip`` entry beside its record.

The plan comes from :meth:`Engine.plan_sync` (the rule the follower's actor applies, on the
views the actors published last); a confirmed sync answers 202 with the plan as computed at
that moment, and the follower's actor then sends, through the risk gate (S5.4, S5.5).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from engine.api import schemas
from engine.api.context import ApiContext
from engine.api.errors import optional_body, query_bool
from engine.api.operations import Operation, Query, json_of
from engine.core.engine import Engine
from engine.core.sync_preview import SyncPreview
from engine.domain.sync_rule import as_shown, describe_orders

TAG = "sync"
DRY_RUN = Query(
    "dry_run",
    {"type": "boolean", "default": False},
    "Show the orders it would send, and send nothing",
)
Orders = Mapping[str, int]


def sync_out(preview: SyncPreview, shown: Orders | None, *, dry_run: bool) -> schemas.SyncOut:
    """``shown``: the orders the user confirmed (None: none were shown, the plan goes)."""
    plan = preview.plan if dry_run else as_shown(preview.plan, shown)
    account = preview.account
    if plan.skip:
        message = f"{account}: nothing {'to send' if dry_run else 'sent'} — {plan.skip}"
    elif not plan.orders:
        message = f"{account}: nothing to send, it is at its leader's target"
    else:
        verb = "would send" if dry_run else "sending"
        message = f"{account}: {verb} {describe_orders(plan.orders)} toward its leader's target"
        if preview.gate:
            message += f" — {preview.gate}"
    return schemas.SyncOut(
        account=account,
        group=preview.group,
        connection=preview.connection,
        connection_state=preview.connection_state,
        risk_status=preview.status,
        positions=dict(plan.before),
        targets=dict(plan.target),
        orders=dict(plan.orders),
        skip=plan.skip,
        gate=preview.gate if plan.orders else "",
        dry_run=dry_run,
        message=message,
    )


def _sync(engine: Engine, account: str, expect: Orders | None) -> SyncPreview:
    """The plan at this moment, then the command: one step, no other command in between."""
    preview = engine.plan_sync(account)
    engine.sync(account, expect)
    return preview


def _sync_group(
    engine: Engine, group: str, expect: Mapping[str, Orders] | None
) -> list[SyncPreview]:
    previews = engine.plan_sync_group(group)
    engine.sync_group(group, expect)
    return previews


async def sync_account(request: Request, ctx: ApiContext) -> Response:
    """S6.2 for one follower; a leader, or an account in no group, is refused (409)."""
    account = str(request.path_params["account"])
    if query_bool(request, "dry_run"):
        preview = ctx.view(ctx.engine.plan_sync, account)
        return json_of(sync_out(preview, None, dry_run=True))
    change = await optional_body(request, schemas.SyncExpect, ctx.max_body_bytes)
    preview = await ctx.command(_sync, ctx.engine, account, change.expect)
    return json_of(sync_out(preview, change.expect, dry_run=False), 202)


async def sync_group(request: Request, ctx: ApiContext) -> Response:
    """S6.2 for every follower of the group."""
    group = str(request.path_params["group"])
    if query_bool(request, "dry_run"):
        previews = ctx.view(ctx.engine.plan_sync_group, group)
        followers = [sync_out(p, None, dry_run=True) for p in previews]
        return json_of(schemas.SyncGroupOut(group=group, dry_run=True, followers=followers))
    change = await optional_body(request, schemas.SyncGroupExpect, ctx.max_body_bytes)
    expect = change.expect
    previews = await ctx.command(_sync_group, ctx.engine, group, expect)
    followers = [
        sync_out(p, None if expect is None else expect.get(p.account, {}), dry_run=False)
        for p in previews
    ]
    return json_of(schemas.SyncGroupOut(group=group, dry_run=False, followers=followers), 202)


OPERATIONS = [
    Operation(
        "POST",
        "/api/accounts/{account}/sync",
        sync_account,
        "Sync a follower to its leader's target (S6.2); dry_run shows the orders first",
        TAG,
        body=schemas.SyncExpect,
        response=schemas.SyncOut,
        status=202,
        also=(200,),
        query=(DRY_RUN,),
        errors=(404, 409),
        command=True,
        body_optional=True,
        description="With dry_run=true: 200 and the orders it would send, nothing sent."
        " Without: 202, the orders go at market through the risk gate; with expect (the"
        " orders shown), nothing is sent if the plan differs by then. One reconciliation"
        " record per sync, also when nothing is sent. 409 for a leader or an account in no"
        " group.",
    ),
    Operation(
        "POST",
        "/api/groups/{group}/sync",
        sync_group,
        "Sync every follower of a group to the leader's target (S6.2)",
        TAG,
        body=schemas.SyncGroupExpect,
        response=schemas.SyncGroupOut,
        status=202,
        also=(200,),
        query=(DRY_RUN,),
        errors=(404,),
        command=True,
        body_optional=True,
        description="As a follower's sync, for each follower; expect is by follower, and one"
        " missing from it is expected to send nothing.",
    ),
]
