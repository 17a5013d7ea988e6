"""Named risk profiles through the API (S9.7): list, show, create, change and remove keys,
delete (refused while used); an account chooses its profile, its own keys override the
profile's key by key, and a key it removes gives way to the profile's."""

from __future__ import annotations

import pytest

from tests.engine.api.conftest import ApiRig

pytestmark = pytest.mark.trio

EVAL = {"max_loss": "2500", "max_loss_mode": "intraday_trailing", "commission": "2.10"}


async def test_a_profile_is_created_shown_changed_and_deleted(api: ApiRig) -> None:
    """S9.7: PUT creates the profile with its keys, sets or removes (null) keys of an existing
    one; GET lists and shows them; DELETE removes an unused one."""
    assert await api.get("/api/profiles") == []
    made = await api.call("PUT", "/api/profiles/eval-50k", EVAL, status=200)
    assert made == {
        "name": "eval-50k",
        "limits": {"commission": "2.10", "max_loss": "2500", "max_loss_mode": "intraday_trailing"},
        "accounts": [],
    }
    change = {"max_contracts": 5, "commission": None, "max_loss": "2000"}
    changed = await api.call("PUT", "/api/profiles/eval-50k", change, status=200)
    assert changed["limits"] == {
        "max_contracts": "5",
        "max_loss": "2000",
        "max_loss_mode": "intraday_trailing",
    }
    assert await api.get("/api/profiles/eval-50k") == changed
    assert await api.get("/api/profiles") == [changed]
    empty = await api.call("PUT", "/api/profiles/blank", {}, status=200)
    assert empty["limits"] == {}
    done = await api.call("DELETE", "/api/profiles/blank", status=200)
    assert done["message"] == "profile blank deleted"
    assert [p["name"] for p in await api.get("/api/profiles")] == ["eval-50k"]
    api.rig.restart()  # durable (S7.2)
    assert api.rig.engine.topology.profiles["eval-50k"]["max_loss_mode"] == "intraday_trailing"


async def test_an_account_uses_a_profile_and_overrides_it_key_by_key(api: ApiRig) -> None:
    """S9.7: the keys in force are the profile's, overridden by the account's own; removing an
    own key lets the profile's apply; a profile change reaches every account using it."""
    await api.call("PUT", "/api/profiles/eval", EVAL, status=200)
    chosen = await api.call(
        "PUT", "/api/accounts/F1/limits", {"profile": "eval", "max_loss": "3000"}, status=200
    )
    assert chosen["profile"] == "eval"
    assert chosen["limits"] == {"max_loss": "3000"}
    assert chosen["effective"] == {**EVAL, "max_loss": "3000"}
    assert (await api.get("/api/profiles/eval"))["accounts"] == ["F1"]
    back = await api.call("PUT", "/api/accounts/F1/limits", {"max_loss": None}, status=200)
    assert back["limits"] == {}
    assert back["effective"]["max_loss"] == "2500"
    await api.call("PUT", "/api/profiles/eval", {"commission": "1.50"}, status=200)
    api.idle()
    account = await api.get("/api/accounts/F1")
    assert account["profile"] == "eval"
    assert account["effective"]["commission"] == "1.50"
    assert account["threshold"] == "47500.00"  # the profile's max_loss of 2500 is in force
    cleared = await api.call("PUT", "/api/accounts/F1/limits", {"profile": None}, status=200)
    assert (cleared["profile"], cleared["effective"]) == (None, {})


async def test_a_profile_in_use_cannot_be_deleted(api: ApiRig) -> None:
    await api.call("PUT", "/api/profiles/eval", EVAL, status=200)
    await api.call("PUT", "/api/accounts/F2/limits", {"profile": "eval"}, status=200)
    problem = await api.call("DELETE", "/api/profiles/eval", status=409)
    assert problem["error"] == "refused"
    assert "F2" in problem["message"]
    assert [p["name"] for p in await api.get("/api/profiles")] == ["eval"]
    await api.call("PUT", "/api/accounts/F2/limits", {"profile": None}, status=200)
    await api.call("DELETE", "/api/profiles/eval", status=200)


async def test_profile_mistakes_are_named(api: ApiRig) -> None:
    """A wrong key or value names the key; an unknown profile is a 404 (422 where an account
    is given it); a name that is not an id says so."""
    problem = await api.call("PUT", "/api/profiles/eval", {"max_loss": "-1"}, status=422)
    assert (problem["field"], problem["message"][:17]) == ("max_loss", "max_loss: negativ")
    problem = await api.call("PUT", "/api/profiles/eval", {"max_lose": "1"}, status=422)
    assert problem["field"] == "max_lose"
    assert await api.get("/api/profiles") == []
    await api.get("/api/profiles/nope", status=404)
    await api.call("DELETE", "/api/profiles/nope", status=404)
    problem = await api.call("PUT", "/api/profiles/no%20spaces", {}, status=422)
    assert problem["field"] == "profile"
    problem = await api.call("PUT", "/api/accounts/F1/limits", {"profile": "nope"}, status=422)
    assert problem["field"] == "profile"
    assert "no profile 'nope'" in problem["message"]
    await api.call("PUT", "/api/accounts/NOPE/limits", {"profile": None}, status=404)


async def test_a_new_account_comes_with_its_profile_and_keys(api: ApiRig) -> None:
    """POST /api/connections: each account's own keys and profile, checked before anything is
    added."""
    await api.call("PUT", "/api/profiles/eval", EVAL, status=200)
    body = {
        "id": "c9",
        "accounts": [{"id": "N1", "profile": "eval", "limits": {"max_contracts": "3"}}],
    }
    await api.post("/api/connections", body, status=201)
    limits = await api.get("/api/accounts/N1/limits")
    assert (limits["profile"], limits["limits"]) == ("eval", {"max_contracts": "3"})
    assert limits["effective"] == {**EVAL, "max_contracts": "3"}
    bad = {"id": "c10", "accounts": [{"id": "N2", "limits": {"flatten_at": "25:00"}}]}
    problem = await api.post("/api/connections", bad, status=422)
    assert problem["field"] == "accounts[0].limits.flatten_at"
    unknown = {"id": "c10", "accounts": [{"id": "N2", "profile": "nope"}]}
    problem = await api.post("/api/connections", unknown, status=422)
    assert problem["field"] == "accounts[0].profile"
    assert "c10" not in [c["id"] for c in await api.get("/api/connections")]
