"""Accounts: state, positions, P&L, risk status, risk keys and profile, lock, unlock, flatten,
delete (S4.2, S5, S6, S9)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from engine.api import risk_views, schemas, views
from engine.api.context import ApiContext
from engine.api.errors import ApiError, body, query_bool, query_text
from engine.api.operations import CONNECTION, DRY_RUN, Operation, json_of
from engine.api.routes.profiles import unknown_profile
from engine.core.engine import Engine
from engine.domain.risk_profile import RiskValue

TAG = "accounts"


def _id(request: Request) -> str:
    return str(request.path_params["account"])


async def list_accounts(request: Request, ctx: ApiContext) -> Response:
    connection = query_text(request, "connection")
    return json_of(ctx.view(views.accounts_out, ctx.engine, connection))


async def get_account(request: Request, ctx: ApiContext) -> Response:
    return json_of(ctx.view(views.account_out, ctx.engine, _id(request)))


async def get_limits(request: Request, ctx: ApiContext) -> Response:
    return json_of(ctx.view(risk_views.limits_out, ctx.engine, _id(request)))


def _set_limits(
    engine: Engine,
    account: str,
    change: schemas.LimitsChange,
    values: dict[str, RiskValue],
    removed: tuple[str, ...],
) -> schemas.Limits:
    if "profile" in change.model_fields_set:
        engine.set_account_profile(account, change.profile)
    if values:
        engine.set_risk(account, values)
    if removed:
        engine.unset_risk(account, removed)
    answer = risk_views.limits_out(engine, account)
    # Setting a limit re-arms it (S5.7): the actor may not have handled the change yet.
    still_off = [t for t in answer.triggers_off if t not in values]
    return answer.model_copy(update={"triggers_off": still_off})


async def set_limits(request: Request, ctx: ApiContext) -> Response:
    """S5.2/S9: the account's own keys (``"0"`` switches a number off; ``null`` removes the key
    so its profile's applies) and its profile (S9.7); setting a limit re-arms it (S5.7)."""
    account = _id(request)
    change = await body(request, schemas.LimitsChange, ctx.max_body_bytes)
    values, removed = change.changes()
    if not values and not removed and "profile" not in change.model_fields_set:
        raise ApiError(422, "invalid", "body: give at least one key to set or remove, or a profile")
    topology = ctx.engine.topology_snapshot()
    topology.require_account(account)  # 404 before the command
    if change.profile is not None and change.profile not in topology.profiles:
        raise unknown_profile(topology, change.profile)
    answer = await ctx.command(_set_limits, ctx.engine, account, change, values, removed)
    return json_of(answer)


async def lock(request: Request, ctx: ApiContext) -> Response:
    """S5.7: a flat account locks at once; one with a position is flattened first."""
    account = _id(request)
    await ctx.command(ctx.engine.lock, account)
    return json_of(schemas.Done(message=f"account {account}: locking (manual)"), 202)


async def unlock(request: Request, ctx: ApiContext) -> Response:
    account = _id(request)
    await ctx.command(ctx.engine.unlock, account)
    return json_of(schemas.Done(message=f"account {account}: unlocking"), 202)


async def flatten_account(request: Request, ctx: ApiContext) -> Response:
    """S6: liquidate and cancel working orders; no risk status changes."""
    account = _id(request)
    await ctx.command(ctx.engine.flatten_account, account)
    return json_of(schemas.Done(message=f"account {account}: flattening"), 202)


async def delete_account(request: Request, ctx: ApiContext) -> Response:
    """S4.2: a leader takes its group with it; a follower only its membership."""
    account = _id(request)
    engine = ctx.engine
    # S8.8: the working orders that stay at the broker, read while the accounts still exist.
    preview = engine.topology_snapshot().plan_delete_account(account)
    orders = ctx.view(views.staying_orders, engine, views.touched_by(preview))
    if query_bool(request, "dry_run"):
        return json_of(views.account_deletion(preview, orders, dry_run=True))
    plan = await ctx.command(engine.delete_account, account)
    return json_of(views.account_deletion(plan, orders, dry_run=False))


_PATH = "/api/accounts/{account}"
OPERATIONS = [
    Operation(
        "GET",
        "/api/accounts",
        list_accounts,
        "Every account: positions, P&L, risk status, lock reason, copying state",
        TAG,
        response=list[schemas.AccountOut],
        query=(CONNECTION,),
        errors=(422,),
    ),
    Operation(
        "GET", _PATH, get_account, "One account", TAG,
        response=schemas.AccountOut, errors=(404,),
    ),
    Operation(
        "DELETE",
        _PATH,
        delete_account,
        "Delete an account (S4.2); dry_run lists the cascade",
        TAG,
        response=schemas.AccountDeletion,
        query=(DRY_RUN,),
        errors=(404, 422),
        command=True,
        description="Immediate: a leader's group goes with it, a follower loses its"
        " membership; no order is sent, records are kept.",
    ),
    Operation(
        "GET",
        f"{_PATH}/limits",
        get_limits,
        "The account's risk keys: its own, its profile, every key in force (S5.2, S9)",
        TAG,
        response=schemas.Limits,
        errors=(404,),
    ),
    Operation(
        "PUT",
        f"{_PATH}/limits",
        set_limits,
        "Set or remove the account's own risk keys, choose its profile",
        TAG,
        body=schemas.LimitsChange,
        response=schemas.Limits,
        errors=(404, 409),
        command=True,
        description="Only the keys given change: a value sets the account's own key (\"0\""
        " switches a number off), null removes it so the profile's value applies (S9.7);"
        " profile names the profile the account uses, null none. Each value is checked as"
        " the configuration's are; a wrong one is a 422 naming the key.",
    ),
    Operation(
        "POST", f"{_PATH}/lock", lock, "Lock the account (manual, S5.7)", TAG,
        response=schemas.Done, status=202, errors=(404,), command=True,
    ),
    Operation(
        "POST", f"{_PATH}/unlock", unlock, "Unlock the account (S5.7)", TAG,
        response=schemas.Done, status=202, errors=(404,), command=True,
    ),
    Operation(
        "POST", f"{_PATH}/flatten", flatten_account, "Flatten the account (S6)", TAG,
        response=schemas.Done, status=202, errors=(404,), command=True,
    ),
]  # fmt: skip
