"""Reports through the API (S10.5): each follower's trading day, the current one by default, one
account's, a past one, and clear errors for a bad day or an unknown account."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from engine.domain.reports import day_window, trading_day
from tests.conftest import ES
from tests.engine.api.conftest import ApiRig

pytestmark = pytest.mark.trio


async def test_s10_5_the_current_trading_day_of_every_follower(api: ApiRig) -> None:
    rig = api.rig
    rig.price(ES, Decimal("5000.25"))
    rig.broker.hold("f1")
    rig.trade("LEAD", 2)
    rig.advance(0.2)
    rig.price(ES, Decimal("5000.50"))
    rig.broker.release("f1")
    rig.idle()
    report = await api.get("/api/reports")
    day = trading_day(rig.clock.now())
    start, end = day_window(day)
    assert (report["day"], report["start"], report["end"]) == (
        day.isoformat(),
        start.isoformat(),
        end.isoformat(),
    )
    f1, f2 = report["followers"]
    assert (f1["account"], f1["group"], f1["copies"], f1["filled"]) == ("F1", "g1", 1, 1)
    assert f1["to_order"] == {"count": 1, "p50_ms": 0.0, "p95_ms": 0.0, "max_ms": 0.0}
    assert f1["to_fill"]["max_ms"] == 200.0
    assert f1["slippage"] == {
        "fills": 1,
        "contracts": 2,
        "mean_ticks": "1.00",
        "worst_ticks": "1.00",
    }
    assert f2["slippage"]["mean_ticks"] == "0.00"
    assert (f2["skips"], f2["rejections"], f2["drift_episodes"], f2["missed_copies"]) == (
        0, 0, 0, 0,
    )  # fmt: skip
    one = await api.get(f"/api/reports?day={day.isoformat()}&account=F2")
    assert [f["account"] for f in one["followers"]] == ["F2"]


async def test_s10_5_a_quiet_day_shows_every_follower_at_zero(api: ApiRig) -> None:
    day = trading_day(api.rig.clock.now()) - timedelta(days=1)
    report = await api.get(f"/api/reports?day={day.isoformat()}")
    assert [(f["account"], f["copies"]) for f in report["followers"]] == [("F1", 0), ("F2", 0)]
    assert report["followers"][0]["to_fill"]["p50_ms"] is None
    assert report["followers"][0]["slippage"]["mean_ticks"] is None


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("day=2026-02-30", "day: expected a date as YYYY-MM-DD (got '2026-02-30')"),
        ("day=yesterday", "day: expected a date as YYYY-MM-DD"),
        ("day=2026-01-10", "day: 2026-01-10 is a Saturday: no trading day ends on it"),
    ],
)
async def test_s10_5_a_bad_day_is_refused_naming_it(api: ApiRig, query: str, says: str) -> None:
    problem = await api.get(f"/api/reports?{query}", status=422)
    assert problem["field"] == "day" and problem["message"].startswith(says)


async def test_s10_5_an_unknown_account_is_404(api: ApiRig) -> None:
    problem = await api.get("/api/reports?account=NOPE", status=404)
    assert problem["message"] == "unknown account 'NOPE'"
    leader = await api.get("/api/reports?account=LEAD")  # known: its day, all zero
    assert [f["account"] for f in leader["followers"]] == ["LEAD"]


async def test_s10_5_the_route_is_in_the_openapi_document(api: ApiRig) -> None:
    document = await api.get("/openapi.json")
    operation = document["paths"]["/api/reports"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"day", "account"}
