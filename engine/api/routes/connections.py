"""Connections: list, add, take offline, reconnect, re-authorize, delete (S1, S4.1)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from brokers.base import AuthorizationError
from engine.api import schemas, views
from engine.api.context import ApiContext
from engine.api.errors import ApiError, body, query_bool
from engine.api.operations import DRY_RUN, Operation, json_of
from engine.api.routes.profiles import unknown_profile
from engine.core.engine import Engine
from engine.domain.risk_profile import RiskValue

TAG = "connections"


def _id(request: Request) -> str:
    return str(request.path_params["connection"])


async def list_connections(request: Request, ctx: ApiContext) -> Response:
    return json_of(ctx.view(views.connections_out, ctx.engine))


async def get_connection(request: Request, ctx: ApiContext) -> Response:
    return json_of(ctx.view(views.connection_out, ctx.engine, _id(request)))


def _add(
    engine: Engine, new: schemas.NewConnection, limits: dict[str, dict[str, RiskValue]]
) -> None:
    engine.add_connection(new.id, new.broker, {a.id: a.balance for a in new.accounts})
    for account in new.accounts:
        if account.profile is not None:
            engine.set_account_profile(account.id, account.profile)
        if limits[account.id]:
            engine.set_risk(account.id, limits[account.id])


async def add_connection(request: Request, ctx: ApiContext) -> Response:
    new = await body(request, schemas.NewConnection, ctx.max_body_bytes)
    ids = [a.id for a in new.accounts]
    if len(set(ids)) != len(ids):
        raise ApiError(422, "invalid", "accounts: an account id is listed twice", "accounts")
    # Each account's keys (null is nothing to set) and profile, checked before anything is added.
    limits = {
        a.id: a.limits.changes(f"accounts[{i}].limits")[0] for i, a in enumerate(new.accounts)
    }
    topology = ctx.engine.topology_snapshot()
    for i, account in enumerate(new.accounts):
        if account.profile is not None and account.profile not in topology.profiles:
            raise unknown_profile(topology, account.profile, f"accounts[{i}].profile")
    await ctx.command(_add, ctx.engine, new, limits)
    return json_of(ctx.view(views.connection_out, ctx.engine, new.id), 201)


async def take_offline(request: Request, ctx: ApiContext) -> Response:
    connection = _id(request)
    await ctx.command(ctx.engine.take_offline, connection)
    return json_of(schemas.Done(message=f"connection {connection}: taking it offline"), 202)


async def reconnect(request: Request, ctx: ApiContext) -> Response:
    connection = _id(request)
    await ctx.command(ctx.engine.reconnect, connection)
    return json_of(schemas.Done(message=f"connection {connection}: reconnecting"), 202)


async def reauthorize(request: Request, ctx: ApiContext) -> Response:
    """S1.2: a single-use ``state`` and the broker's authorize URL carrying it."""
    connection = _id(request)
    engine = ctx.engine
    config = engine.connection(connection)
    broker = engine.brokers.get(config.broker)
    if broker is None:
        raise ApiError(409, "refused", f"no broker {config.broker!r} configured")
    state, issued = ctx.oauth.issue(connection)
    try:
        url = await ctx.read(broker.authorize_url, connection, state, ctx.redirect_uri)
    except AuthorizationError as error:
        ctx.oauth.consume(state)  # never handed out: spend it at once
        raise ApiError(409, "refused", str(error)) from None
    return json_of(
        schemas.Authorize(
            connection=connection, authorize_url=url, expires_at=issued.expires_at.isoformat()
        )
    )


async def delete_connection(request: Request, ctx: ApiContext) -> Response:
    """S4.1/S4.2: immediate and cascading; ``dry_run`` lists exactly what would go."""
    connection = _id(request)
    engine = ctx.engine
    # S8.8: the working orders that stay at the broker, read while the accounts still exist.
    preview = engine.topology_snapshot().plan_delete_connection(connection)
    orders = ctx.view(views.staying_orders, engine, views.touched_by(preview))
    if query_bool(request, "dry_run"):
        return json_of(views.connection_deletion(preview, orders, dry_run=True))
    plan = await ctx.command(engine.delete_connection, connection)
    return json_of(views.connection_deletion(plan, orders, dry_run=False))


_PATH = "/api/connections/{connection}"
OPERATIONS = [
    Operation(
        "GET",
        "/api/connections",
        list_connections,
        "Every connection with its state and accounts",
        TAG,
        response=list[schemas.ConnectionOut],
    ),
    Operation(
        "POST",
        "/api/connections",
        add_connection,
        "Add a connection (one broker login) with its accounts",
        TAG,
        body=schemas.NewConnection,
        response=schemas.ConnectionOut,
        status=201,
        errors=(409,),
        command=True,
        description="A paper connection is connected at once; a real broker's connection"
        " starts in reauth_required: re-authorize it.",
    ),
    Operation(
        "GET", _PATH, get_connection, "One connection", TAG,
        response=schemas.ConnectionOut, errors=(404,),
    ),
    Operation(
        "POST", f"{_PATH}/offline", take_offline, "Take the connection offline (S1.4)", TAG,
        response=schemas.Done, status=202, errors=(404,), command=True,
    ),
    Operation(
        "POST", f"{_PATH}/reconnect", reconnect, "Reconnect a connection that is offline", TAG,
        response=schemas.Done, status=202, errors=(404,), command=True,
    ),
    Operation(
        "POST",
        f"{_PATH}/reauthorize",
        reauthorize,
        "Start re-authorization: the broker's authorize URL (S1.2)",
        TAG,
        response=schemas.Authorize,
        errors=(404, 409),
        description="Send the browser to authorize_url; the broker sends it back to"
        " /oauth/callback with a single-use state, and the connection returns to connected.",
    ),
    Operation(
        "DELETE",
        _PATH,
        delete_connection,
        "Delete the connection and its accounts (S4.1); dry_run lists the cascade",
        TAG,
        response=schemas.ConnectionDeletion,
        query=(DRY_RUN,),
        errors=(404,),
        command=True,
        description="Immediate: no confirmation, no order sent, records kept (S4).",
    ),
]  # fmt: skip
