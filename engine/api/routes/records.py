"""Records (S7): the activity log, reconciliations and the order ledger, paged newest first."""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from engine.api import schemas, views
from engine.api.context import ApiContext
from engine.api.errors import ApiError, query_enum, query_int, query_text, query_time
from engine.api.operations import (
    ACCOUNT,
    BEFORE,
    CONNECTION,
    LIMIT,
    SINCE,
    UNTIL,
    Operation,
    Query,
    json_of,
)
from engine.domain.activity import Kind, Level

TAG = "records"


def _window(request: Request) -> dict[str, object]:
    since, until = query_time(request, "since"), query_time(request, "until")
    if since is not None and until is not None and until < since:
        raise ApiError(422, "invalid", "until: expected an instant after since", "until")
    return {
        "since": since,
        "until": until,
        "before": query_int(request, "before", 1, 2**62, None),
        "limit": query_int(request, "limit", 1, views.MAX_PAGE, 100),
    }


async def list_activity(request: Request, ctx: ApiContext) -> Response:
    read = partial(
        views.activity_page,
        ctx.engine,
        account=query_text(request, "account"),
        connection=query_text(request, "connection"),
        level=query_enum(request, "level", Level),
        kind=query_enum(request, "kind", Kind),
        fill=query_text(request, "fill", MAX_FILL_KEY),
        **_window(request),  # type: ignore[arg-type]
    )
    return json_of(await ctx.read(read))


async def list_reconciliations(request: Request, ctx: ApiContext) -> Response:
    read = partial(
        views.reconciliation_page,
        ctx.engine,
        account=query_text(request, "account"),
        **_window(request),  # type: ignore[arg-type]
    )
    return json_of(await ctx.read(read))


async def list_orders(request: Request, ctx: ApiContext) -> Response:
    read = partial(
        views.order_page,
        ctx.engine,
        account=query_text(request, "account"),
        status=query_text(request, "status"),
        **_window(request),  # type: ignore[arg-type]
    )
    return json_of(await ctx.read(read))


LEVEL = Query("level", {"type": "string", "enum": [lv.value for lv in Level]})
KIND = Query("kind", {"type": "string", "enum": [k.value for k in Kind]})
MAX_FILL_KEY = 300  # an account id and a broker fill id
FILL = Query(
    "fill",
    {"type": "string", "minLength": 1, "maxLength": MAX_FILL_KEY},
    "one leader fill, LEADER:fill id: its own entry and every follower entry it caused",
)
STATUS = Query(
    "status",
    {"type": "string", "minLength": 1, "maxLength": 128},
    "sent, partially_filled, filled, rejected, done, unknown, not_received, not_sent",
)
PAGING = (SINCE, UNTIL, BEFORE, LIMIT)
OPERATIONS = [
    Operation(
        "GET",
        "/api/activity",
        list_activity,
        "Activity log (S7.1), newest first, filtered by account, connection, level, kind, "
        "leader fill, time",
        TAG,
        response=schemas.ActivityPage,
        query=(ACCOUNT, CONNECTION, LEVEL, KIND, FILL, *PAGING),
        errors=(422,),
    ),
    Operation(
        "GET",
        "/api/reconciliations",
        list_reconciliations,
        "Reconciliation records (S3.3), newest first",
        TAG,
        response=schemas.ReconciliationPage,
        query=(ACCOUNT, *PAGING),
        errors=(422,),
    ),
    Operation(
        "GET",
        "/api/orders",
        list_orders,
        "The order ledger (S2.6): every order the engine sent, newest first",
        TAG,
        response=schemas.OrderPage,
        query=(ACCOUNT, STATUS, *PAGING),
        errors=(422,),
    ),
]
