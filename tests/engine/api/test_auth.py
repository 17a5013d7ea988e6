"""No API call without the bearer token (401); the token file is made once, 0600, and a file
others can read is refused."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from engine.api.app import OPERATIONS
from engine.api.auth import TOKEN_FILE, TokenError, bearer_ok, load_or_create_token
from tests.engine.api.conftest import TOKEN, ApiRig

PROTECTED = [op for op in OPERATIONS if not op.public]


HEADERS = [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"bearer {TOKEN}x"]


@pytest.mark.trio
async def test_every_call_needs_the_token(api: ApiRig) -> None:
    """Every operation but the callback, with no, empty, malformed or wrong credentials."""
    api.http.headers.pop("Authorization", None)
    for op in PROTECTED:
        path = re.sub(r"{\w+}", "F1", op.path)
        for header in HEADERS:
            headers = {} if header is None else {"Authorization": header}
            response = await api.http.request(op.method, path, headers=headers, json={})
            where = f"{op.method} {path} with {header!r}"
            assert response.status_code == 401, where
            assert response.headers["www-authenticate"] == "Bearer", where
            assert response.json()["error"] == "unauthorized", where
    api.rig.idle()
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert (await api.http.get("/api/accounts/F1", headers=good)).json()["risk_status"] == "OK"
    assert len((await api.http.get("/api/groups", headers=good)).json()) == 1  # nothing changed


@pytest.mark.trio
async def test_a_wrong_token_is_told_apart_from_a_missing_one(api: ApiRig) -> None:
    api.http.headers.pop("Authorization", None)
    missing = (await api.http.get("/api/accounts")).json()["message"]
    wrong = await api.http.get("/api/accounts", headers={"Authorization": "Bearer wrong-token"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"
    assert wrong.json()["message"].startswith("token not accepted")
    assert missing.startswith("this call needs Authorization: Bearer <token>")
    assert "api.token" in wrong.json()["message"]
    assert "api.token" in missing


@pytest.mark.trio
async def test_page_schema_and_callback_need_no_token(api: ApiRig) -> None:
    api.http.headers.pop("Authorization", None)
    assert (await api.http.get("/")).status_code == 200
    assert (await api.http.get("/static/cockpit.js")).status_code == 200
    assert (await api.http.get("/openapi.json")).status_code == 200
    assert (await api.http.get("/oauth/callback?state=x&code=y")).status_code == 400


def test_token_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    token, new = load_or_create_token(tmp_path)
    assert new
    assert len(token) >= 40
    mode = stat.S_IMODE((tmp_path / TOKEN_FILE).stat().st_mode)
    assert mode == 0o600
    again, new_again = load_or_create_token(tmp_path)
    assert (again, new_again) == (token, False)


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    load_or_create_token(tmp_path)
    (tmp_path / TOKEN_FILE).chmod(0o644)
    with pytest.raises(TokenError, match="chmod 600"):
        load_or_create_token(tmp_path)


def test_bearer_comparison() -> None:
    assert bearer_ok(f"Bearer {TOKEN}", TOKEN)
    assert bearer_ok(f"bearer {TOKEN}", TOKEN)
    assert not bearer_ok(f"Bearer {TOKEN[:-1]}", TOKEN)
    assert not bearer_ok(None, TOKEN)
    assert not bearer_ok("Token abc", TOKEN)
