"""The control API's bodies of the S10.5 reports: each follower's trading day.

Latencies travel in milliseconds (to the microsecond the engine clock gives); slippage in ticks
as decimal strings rounded to two places — the figures are exact until shown.
"""

from __future__ import annotations

from pydantic import Field

from engine.api.schema_base import Response


class LatencyOut(Response):
    count: int = Field(description="copies measured")
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None


class SlippageOut(Response):
    fills: int = Field(description="copy fills measured against their leader fill")
    contracts: int
    mean_ticks: str | None = Field(
        description="per contract, follower price minus leader price in ticks, adverse positive"
    )
    worst_ticks: str | None = Field(description="the most adverse fill")


class FollowerDayOut(Response):
    account: str
    group: str | None = Field(description="the group it follows now (none: no longer)")
    copies: int = Field(description="copy and mirror orders sent")
    filled: int = Field(description="of them, those with a fill")
    skips: int
    rejections: int
    to_order: LatencyOut = Field(description="leader fill received to copy order sent")
    to_fill: LatencyOut = Field(description="leader fill received to the copy's first fill")
    slippage: SlippageOut
    drift_episodes: int
    missed_copies: int


class ReportOut(Response):
    day: str = Field(description="the trading day, YYYY-MM-DD (ends at 17:00 America/Chicago)")
    start: str = Field(description="its first instant (UTC)")
    end: str = Field(description="the instant after its last (UTC): the reset ending it")
    followers: list[FollowerDayOut]


__all__ = ["FollowerDayOut", "LatencyOut", "ReportOut", "SlippageOut"]
