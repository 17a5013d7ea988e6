"""Reports (S10.5): each follower's trading day — copies, skips, rejections, copy latency,
slippage, drift episodes and missed copies."""

from __future__ import annotations

import re
from datetime import date
from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from engine.api import report_views
from engine.api.context import ApiContext
from engine.api.errors import ApiError, query_text
from engine.api.operations import ACCOUNT, Operation, Query, json_of
from engine.api.report_schemas import ReportOut
from engine.domain.reports import NotATradingDay, day_window, trading_day

TAG = "reports"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _bad_day(raw: str, why: str) -> ApiError:
    shown = raw if len(raw) <= 40 else raw[:37] + "..."
    return ApiError(422, "invalid", f"day: {why} (got {shown!r})", "day",
                    [{"field": "day", "message": why}])  # fmt: skip


def query_day(request: Request, ctx: ApiContext) -> date:
    """``day``: a trading day as YYYY-MM-DD; the current one when absent."""
    raw = request.query_params.get("day")
    if raw is None:
        return trading_day(ctx.clock.now())
    try:
        if not _DATE.match(raw):
            raise ValueError
        day = date.fromisoformat(raw)
    except ValueError:
        raise _bad_day(raw, "expected a date as YYYY-MM-DD") from None
    try:
        day_window(day)
    except NotATradingDay as error:
        raise _bad_day(raw, str(error)) from None
    return day


async def get_report(request: Request, ctx: ApiContext) -> Response:
    read = partial(
        report_views.report,
        ctx.engine,
        query_day(request, ctx),
        query_text(request, "account"),
    )
    return json_of(await ctx.read(read))


DAY = Query(
    "day",
    {"type": "string", "format": "date"},
    "The trading day, YYYY-MM-DD: it ends at that day's 17:00 America/Chicago reset (S5.8); "
    "default: the current one",
)
OPERATIONS = [
    Operation(
        "GET",
        "/api/reports",
        get_report,
        "Each follower's trading day (S10.5): copies, skips, rejections, copy latency "
        "(p50/p95/max), slippage in ticks, drift episodes and missed copies",
        TAG,
        response=ReportOut,
        query=(DAY, ACCOUNT),
        errors=(404, 422),
    ),
]
