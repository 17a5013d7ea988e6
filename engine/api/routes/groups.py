"""Copy groups and memberships: create, delete, add/remove/change followers, flatten (S2, S6)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from engine.api import schemas, views
from engine.api.context import ApiContext
from engine.api.errors import ApiError, body, query_bool
from engine.api.operations import DRY_RUN, Operation, json_of
from engine.core.engine import Engine
from engine.core.topology import CommandRefused, GroupConfig
from engine.domain.copying import Membership

TAG = "groups"


def _id(request: Request) -> str:
    return str(request.path_params["group"])


def _membership(follower: schemas.NewFollower) -> Membership:
    return Membership(
        follower.account,
        follower.ratio,
        follower.max_qty,
        tuple(sorted(follower.symbol_map.items())),
        copy=follower.copy_mode,
    )


async def list_groups(request: Request, ctx: ApiContext) -> Response:
    return json_of(ctx.view(views.groups_out, ctx.engine))


async def get_group(request: Request, ctx: ApiContext) -> Response:
    return json_of(ctx.view(views.group_out, ctx.engine, _id(request)))


async def create_group(request: Request, ctx: ApiContext) -> Response:
    new = await body(request, schemas.NewGroup, ctx.max_body_bytes)
    members = [_membership(f) for f in new.followers]
    await ctx.command(ctx.engine.add_group, new.id, new.leader, members, new.on_drift)
    return json_of(ctx.view(views.group_out, ctx.engine, new.id), 201)


async def change_group(request: Request, ctx: ApiContext) -> Response:
    """S10.2: the group's on_drift, from its next drift episode on."""
    group = _id(request)
    change = await body(request, schemas.GroupChange, ctx.max_body_bytes)
    ctx.engine.group(group)  # 404 before the command
    if change.on_drift is not None:
        await ctx.command(ctx.engine.set_on_drift, group, change.on_drift)
    return json_of(ctx.view(views.group_out, ctx.engine, group))


async def delete_group(request: Request, ctx: ApiContext) -> Response:
    """The group goes; its accounts stay and copy nothing. No order is sent."""
    group = _id(request)
    config = ctx.engine.group(group)
    # S8.8: the followers' working orders stay at the broker, no longer followed.
    orders = ctx.view(views.staying_orders, ctx.engine, [m.account for m in config.members])
    if query_bool(request, "dry_run"):
        return json_of(views.group_deletion(config, orders, dry_run=True))
    removed: GroupConfig = await ctx.command(ctx.engine.delete_group, group)
    return json_of(views.group_deletion(removed, orders, dry_run=False))


async def add_follower(request: Request, ctx: ApiContext) -> Response:
    group = _id(request)
    new = await body(request, schemas.NewFollower, ctx.max_body_bytes)
    ctx.engine.group(group)  # 404 before the command
    await ctx.command(ctx.engine.add_follower, group, _membership(new))
    return json_of(ctx.view(views.group_out, ctx.engine, group), 201)


def _change(engine: Engine, group: str, account: str, change: schemas.FollowerChange) -> Membership:
    config = engine.group(group)
    current = next((m for m in config.members if m.account == account), None)
    if current is None:
        raise CommandRefused(f"account {account!r} does not follow group {group!r}")
    max_qty = None if change.clear_max_qty else (change.max_qty or current.max_qty)
    updated = Membership(
        account,
        change.ratio if change.ratio is not None else current.ratio,
        max_qty,
        tuple(sorted(change.symbol_map.items()))
        if change.symbol_map is not None
        else current.symbol_map,
        copy=change.copy_mode if change.copy_mode is not None else current.copy,
    )
    return engine.update_follower(group, updated)


async def change_follower(request: Request, ctx: ApiContext) -> Response:
    """New ratio, max_qty, symbol_map or copy mode, from the follower's next copy on."""
    group, account = _id(request), str(request.path_params["account"])
    change = await body(request, schemas.FollowerChange, ctx.max_body_bytes)
    if change.clear_max_qty and change.max_qty is not None:
        raise ApiError(
            422, "invalid", "max_qty: give max_qty or clear_max_qty, not both", "max_qty"
        )
    _require_follower(ctx.engine, group, account)
    m = await ctx.command(_change, ctx.engine, group, account, change)
    return json_of(views.follower_out(m))


def _require_follower(engine: Engine, group: str, account: str) -> None:
    config = engine.group(group)
    if not any(m.account == account for m in config.members):
        raise ApiError(
            404, "not_found", f"account {account!r} does not follow group {group!r}", "account"
        )


async def remove_follower(request: Request, ctx: ApiContext) -> Response:
    group, account = _id(request), str(request.path_params["account"])
    _require_follower(ctx.engine, group, account)
    await ctx.command(ctx.engine.remove_follower, group, account)
    return json_of(schemas.Done(message=f"{account} no longer follows group {group}"))


async def flatten_group(request: Request, ctx: ApiContext) -> Response:
    """S6: the leader and every follower; no risk status changes."""
    group = _id(request)
    await ctx.command(ctx.engine.flatten_group, group)
    return json_of(schemas.Done(message=f"group {group}: flattening"), 202)


_PATH = "/api/groups/{group}"
_FOLLOWER = f"{_PATH}/followers/{{account}}"
OPERATIONS = [
    Operation(
        "GET", "/api/groups", list_groups, "Every copy group with its followers", TAG,
        response=list[schemas.GroupOut],
    ),
    Operation(
        "POST",
        "/api/groups",
        create_group,
        "Create a copy group: one leader, any followers",
        TAG,
        body=schemas.NewGroup,
        response=schemas.GroupOut,
        status=201,
        errors=(404, 409),
        command=True,
        description="An account belongs to at most one group (409 otherwise).",
    ),
    Operation(
        "GET", _PATH, get_group, "One copy group", TAG,
        response=schemas.GroupOut, errors=(404,),
    ),
    Operation(
        "PATCH",
        _PATH,
        change_group,
        "Change a group's on_drift (S10.2)",
        TAG,
        body=schemas.GroupChange,
        response=schemas.GroupOut,
        errors=(404, 422),
        command=True,
    ),
    Operation(
        "DELETE",
        _PATH,
        delete_group,
        "Delete a copy group (its accounts stay); dry_run lists what goes",
        TAG,
        response=schemas.GroupDeletion,
        query=(DRY_RUN,),
        errors=(404, 422),
        command=True,
    ),
    Operation(
        "POST",
        f"{_PATH}/followers",
        add_follower,
        "Add a follower with its ratio, max_qty, symbol_map and copy mode",
        TAG,
        body=schemas.NewFollower,
        response=schemas.GroupOut,
        status=201,
        errors=(404, 409),
        command=True,
        description="copy = \"orders\" with a symbol_map between roots of different tick sizes"
        " is refused (409, S8.2).",
    ),
    Operation(
        "PATCH",
        _FOLLOWER,
        change_follower,
        "Change a follower's ratio, max_qty, symbol_map or copy mode",
        TAG,
        body=schemas.FollowerChange,
        response=schemas.FollowerOut,
        errors=(404, 409),
        command=True,
    ),
    Operation(
        "DELETE", _FOLLOWER, remove_follower, "Remove a follower from the group", TAG,
        response=schemas.Done, errors=(404, 409), command=True,
    ),
    Operation(
        "POST", f"{_PATH}/flatten", flatten_group, "Flatten the leader and every follower (S6)",
        TAG, response=schemas.Done, status=202, errors=(404,), command=True,
    ),
]  # fmt: skip
