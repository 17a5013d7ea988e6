"""Connections through the API: list, add, take offline, reconnect, delete with its cascade
(S1.4, S4.1), and re-authorization by OAuth with single-use state values (S1.2)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.engine.api.conftest import ApiRig

pytestmark = pytest.mark.trio


async def test_list_and_get(api: ApiRig) -> None:
    connections = await api.get("/api/connections")
    assert [c["id"] for c in connections] == ["lead", "f1", "f2"]
    assert connections[0] == {
        "id": "lead",
        "broker": "paper",
        "state": "connected",
        "offline": False,
        "accounts": ["LEAD"],
    }
    assert (await api.get("/api/connections/f1"))["accounts"] == ["F1"]
    missing = await api.get("/api/connections/nope", status=404)
    assert missing["error"] == "not_found"
    assert "nope" in missing["message"]


async def test_add_a_connection_with_accounts_and_limits(api: ApiRig) -> None:
    body = {
        "id": "prop2",
        "accounts": [{"id": "P1", "balance": "25000", "limits": {"daily_loss_limit": "750"}}],
    }
    added = await api.post("/api/connections", body, status=201)
    assert added == {
        "id": "prop2",
        "broker": "paper",
        "state": "connected",
        "offline": False,
        "accounts": ["P1"],
    }
    api.idle()
    account = await api.get("/api/accounts/P1")
    assert account["balance"] == "25000.00"
    assert account["limits"] == {"daily_loss_limit": "750"}
    again = await api.post("/api/connections", body, status=409)
    assert "already exists" in again["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "bad id"}, "id"),
        ({"id": "ok", "accounts": [{"id": "A", "balance": "-1"}]}, "accounts[0].balance"),
        (
            {"id": "ok", "accounts": [{"id": "A", "limits": {"max_los": "1"}}]},
            "accounts[0].limits.max_los",
        ),
        ({"id": "ok", "password": "x"}, "password"),
        ({"id": "ok", "accounts": [{"id": "A"}, {"id": "A"}]}, "accounts"),
    ],
)
async def test_add_refuses_bad_fields_by_name(api: ApiRig, body: object, field: str) -> None:
    problem = await api.post("/api/connections", body, status=422)
    assert problem["field"] is not None
    assert problem["field"].startswith(field)
    assert (await api.get("/api/connections/ok", status=404))["error"] == "not_found"


async def test_unknown_broker_is_refused_with_the_reason(api: ApiRig) -> None:
    problem = await api.post("/api/connections", {"id": "t", "broker": "tradovate"}, status=409)
    assert "no broker 'tradovate'" in problem["message"]


async def test_take_offline_then_reconnect(api: ApiRig) -> None:
    """S1.4: offline pauses the connection's accounts; reconnect brings it back."""
    await api.post("/api/connections/f1/offline")
    api.idle()
    assert (await api.get("/api/connections/f1"))["state"] == "disconnected"
    assert (await api.get("/api/connections/f1"))["offline"] is True
    account = await api.get("/api/accounts/F1")
    assert account["copying"] == "paused: connection disconnected"
    await api.post("/api/connections/f1/reconnect")
    api.idle()
    assert (await api.get("/api/connections/f1"))["state"] == "connected"
    await api.post("/api/connections/nope/offline", status=404)


async def test_delete_dry_run_lists_the_cascade_and_removes_nothing(api: ApiRig) -> None:
    """S4.1/S4.2: the leader's connection takes its group; decision 0004: the page shows it."""
    plan = await api.call("DELETE", "/api/connections/lead?dry_run=true", status=200)
    assert plan == {
        "dry_run": True,
        "connection": "lead",
        "accounts": ["LEAD"],
        "groups": ["g1"],
        "memberships": [],
        "orphaned_followers": [
            {"group": "g1", "account": "F1"},
            {"group": "g1", "account": "F2"},
        ],
        "working_orders": [],
    }
    assert len(await api.get("/api/groups")) == 1
    follower = await api.call("DELETE", "/api/connections/f1?dry_run=1", status=200)
    assert follower["memberships"] == [{"group": "g1", "account": "F1"}]
    assert follower["groups"] == []


async def test_delete_is_immediate(api: ApiRig) -> None:
    done = await api.call("DELETE", "/api/connections/lead", status=200)
    assert done["dry_run"] is False
    assert done["groups"] == ["g1"]
    api.idle()
    assert await api.get("/api/groups") == []
    await api.get("/api/connections/lead", status=404)
    await api.get("/api/accounts/LEAD", status=404)
    assert (await api.get("/api/accounts/F1"))["copying"] == "not in a group"
    await api.call("DELETE", "/api/connections/lead", status=404)


# --- re-authorization (S1.2) --------------------------------------------------------------------


def _callback(url: str) -> tuple[str, str]:
    """The path and query the paper broker's authorize page sends the browser back to."""
    parts = urlsplit(url)
    assert parts.path == "/oauth/callback"
    return parts.path, parts.query


async def test_reauthorize_restores_an_expired_connection(api: ApiRig) -> None:
    """S1.1: expiry pauses every account of the login; one re-authorization restores them."""
    api.rig.broker.expire_token("f1")
    api.idle()
    assert (await api.get("/api/connections/f1"))["state"] == "reauth_required"
    answer = await api.post("/api/connections/f1/reauthorize", status=200)
    assert answer["connection"] == "f1"
    path, query = _callback(answer["authorize_url"])
    assert set(parse_qs(query)) == {"code", "state"}
    page = await api.http.get(f"{path}?{query}", headers={"Authorization": ""})
    assert page.status_code == 200
    assert "re-authorized" in page.text
    api.idle()
    assert (await api.get("/api/connections/f1"))["state"] == "connected"


async def test_a_state_is_single_use(api: ApiRig) -> None:
    answer = await api.post("/api/connections/f2/reauthorize", status=200)
    path, query = _callback(answer["authorize_url"])
    assert (await api.http.get(f"{path}?{query}")).status_code == 200
    again = await api.http.get(f"{path}?{query}")
    assert again.status_code == 400
    assert "already used" in again.text


async def test_unknown_or_expired_state_is_refused_before_the_broker_is_asked(
    api: ApiRig,
) -> None:
    unknown = await api.http.get("/oauth/callback?code=abc&state=made-up-by-someone")
    assert unknown.status_code == 400
    assert "not started by this engine" in unknown.text
    missing = await api.http.get("/oauth/callback?code=abc")
    assert missing.status_code == 400

    answer = await api.post("/api/connections/f2/reauthorize", status=200)
    api.rig.clock.advance(timedelta(minutes=11))
    path, query = _callback(answer["authorize_url"])
    expired = await api.http.get(f"{path}?{query}")
    assert expired.status_code == 400
    assert "expired" in expired.text


async def test_a_code_the_broker_does_not_know_is_refused(api: ApiRig) -> None:
    answer = await api.post("/api/connections/f2/reauthorize", status=200)
    state = parse_qs(urlsplit(answer["authorize_url"]).query)["state"][0]
    refused = await api.http.get(f"/oauth/callback?code=forged&state={state}")
    assert refused.status_code == 400
    assert "does not know this authorization code" in refused.text


async def test_the_broker_saying_no_is_shown(api: ApiRig) -> None:
    answer = await api.post("/api/connections/f2/reauthorize", status=200)
    state = parse_qs(urlsplit(answer["authorize_url"]).query)["state"][0]
    denied = await api.http.get(f"/oauth/callback?error=access_denied&state={state}")
    assert denied.status_code == 400
    assert "access_denied" in denied.text


async def test_reauthorize_unknown_connection(api: ApiRig) -> None:
    await api.post("/api/connections/nope/reauthorize", status=404)
