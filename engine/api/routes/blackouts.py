"""Blackouts (S9.5): the engine-wide intervals in which accounts whose ``blackout`` key is
``block`` or ``flatten`` open nothing — list, add, remove by key."""

from __future__ import annotations

from datetime import UTC

from starlette.requests import Request
from starlette.responses import Response

from engine.api import risk_views, schemas
from engine.api.context import ApiContext
from engine.api.errors import ApiError, body, query_text
from engine.api.operations import Operation, Query, json_of
from engine.core.topology import UnknownId
from engine.domain.resets import CHICAGO
from engine.domain.sessions import Blackout

TAG = "blackouts"
MAX_KEY = 256
KEY = Query(
    "key",
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY},
    "the blackout's key, as listed",
    required=True,
)


async def list_blackouts(request: Request, ctx: ApiContext) -> Response:
    return json_of(ctx.view(risk_views.blackouts_out, ctx.engine, ctx.clock.now()))


async def add_blackout(request: Request, ctx: ApiContext) -> Response:
    new = await body(request, schemas.NewBlackout, ctx.max_body_bytes)
    try:
        blackout = Blackout(new.start, new.end, new.label)
        for instant in (new.start, new.end):  # shown in UTC and in Chicago time
            instant.astimezone(UTC), instant.astimezone(CHICAGO)
    except ValueError as error:
        message = str(error).removeprefix(f"blackout {new.label!r}: ")
        raise _invalid("end", message) from None
    except OverflowError:
        raise _invalid("start", "a date too far from today to be a blackout") from None
    await ctx.command(ctx.engine.add_blackout, blackout)
    return json_of(risk_views.blackout_out(blackout, ctx.clock.now()), 201)


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(
        422, "invalid", f"{field}: {message}", field, [{"field": field, "message": message}]
    )


async def remove_blackout(request: Request, ctx: ApiContext) -> Response:
    key = query_text(request, "key", MAX_KEY)
    if key is None:
        raise _invalid("key", "missing: give the blackout's key, as listed")
    if all(b.key() != key for b in ctx.engine.topology_snapshot().blackouts):
        raise UnknownId(f"no blackout {key!r} (GET /api/blackouts lists their keys)")
    await ctx.command(ctx.engine.remove_blackout, key)
    return json_of(schemas.Done(message=f"blackout {key} removed"))


OPERATIONS = [
    Operation(
        "GET", "/api/blackouts", list_blackouts, "Every blackout interval (S9.5)", TAG,
        response=list[schemas.BlackoutOut],
    ),
    Operation(
        "POST",
        "/api/blackouts",
        add_blackout,
        "Add a blackout interval",
        TAG,
        body=schemas.NewBlackout,
        response=schemas.BlackoutOut,
        status=201,
        errors=(409,),
        command=True,
        description="Start included, end excluded, both with a UTC offset. Accounts whose"
        " blackout key is block or flatten refuse opening orders inside it; flatten ones are"
        " also flattened at its start.",
    ),
    Operation(
        "DELETE",
        "/api/blackouts",
        remove_blackout,
        "Remove a blackout interval by its key",
        TAG,
        response=schemas.Done,
        query=(KEY,),
        errors=(404,),
        command=True,
    ),
]  # fmt: skip
