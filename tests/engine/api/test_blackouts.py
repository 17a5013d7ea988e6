"""Blackouts through the API (S9.5): list, add, remove by key; an account whose ``blackout`` key
is set shows the one running (marked) or the next."""

from __future__ import annotations

import pytest

from tests.engine.api.conftest import ApiRig

pytestmark = pytest.mark.trio

# The rig's clock: Tuesday 2026-01-06 09:00 in Chicago.
CPI = {"start": "2026-01-06T08:00:00-06:00", "end": "2026-01-06T10:00:00-06:00", "label": "CPI"}
FOMC = {"start": "2026-01-07T13:00:00-06:00", "end": "2026-01-07T13:30:00-06:00", "label": "FOMC"}
CPI_KEY = "2026-01-06T14:00:00+00:00/2026-01-06T16:00:00+00:00/CPI"


async def test_blackouts_are_added_listed_and_removed(api: ApiRig) -> None:
    assert await api.get("/api/blackouts") == []
    added = await api.post("/api/blackouts", FOMC, status=201)
    assert added == {**FOMC, "key": added["key"], "active": False}
    await api.post("/api/blackouts", CPI, status=201)
    listed = await api.get("/api/blackouts")
    assert [(b["label"], b["active"]) for b in listed] == [("CPI", True), ("FOMC", False)]
    assert listed[0]["key"] == CPI_KEY  # the same whatever offset it was written in
    again = await api.post("/api/blackouts", CPI, status=409)  # the same interval twice
    assert again["error"] == "refused"
    done = await api.call("DELETE", f"/api/blackouts?key={CPI_KEY.replace('+', '%2B')}", status=200)
    assert "removed" in done["message"]
    assert [b["label"] for b in await api.get("/api/blackouts")] == ["FOMC"]
    api.rig.restart()  # durable (S7.2)
    assert [b.label for b in api.rig.engine.topology.blackouts] == ["FOMC"]


async def test_an_account_with_the_blackout_key_shows_the_running_one(api: ApiRig) -> None:
    """S9.5: a block account shows the blackout running now (active) or the next one."""
    await api.call("PUT", "/api/accounts/F1/limits", {"blackout": "block"}, status=200)
    await api.post("/api/blackouts", FOMC, status=201)
    api.idle()
    account = await api.get("/api/accounts/F1")
    assert account["blackout"] == {**FOMC, "active": False}
    await api.post("/api/blackouts", CPI, status=201)
    api.idle()
    account = await api.get("/api/accounts/F1")
    assert account["blackout"] == {**CPI, "active": True}


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({**CPI, "end": CPI["start"]}, "end", "must be after start"),
        ({**CPI, "start": "2026-01-06T08:00:00"}, "start", "timezone"),
        ({**CPI, "label": ""}, "label", "at least 1"),
        ({"start": CPI["start"], "end": CPI["end"]}, "label", "missing"),
        ({**CPI, "when": "now"}, "when", "unknown key"),
        ({**CPI, "start": "0001-01-01T00:00:00+05:00"}, "start", "too far"),
    ],
)
async def test_a_wrong_blackout_is_refused_by_field(
    api: ApiRig, body: dict[str, str], field: str, says: str
) -> None:
    problem = await api.post("/api/blackouts", body, status=422)
    assert problem["field"] == field
    assert says in problem["message"], problem["message"]
    assert await api.get("/api/blackouts") == []


async def test_removing_needs_a_known_key(api: ApiRig) -> None:
    problem = await api.call("DELETE", "/api/blackouts", status=422)
    assert problem["field"] == "key"
    problem = await api.call("DELETE", "/api/blackouts?key=nope", status=404)
    assert "GET /api/blackouts" in problem["message"]
