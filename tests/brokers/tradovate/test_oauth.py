"""OAuth (S1.2) against the local server over real HTTP: the authorize page, the callback's
single-use state, the code exchange in both of Tradovate's forms, the token kept 0600, and
renewal ahead of expiry on the engine clock (TRADOVATE.md, "OAuth")."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from brokers.base import AuthorizationError, SessionRestored, TokenExpired, TokenIssued
from brokers.clock import VirtualClock
from brokers.tradovate import TradovateBroker, TradovateSettings
from brokers.tradovate.callback import CallbackListener, serve_callback
from brokers.tradovate.sim import RunningSim, serve_sim
from tests.brokers.tradovate.conftest import Recorder
from tests.conftest import START


@dataclass
class Served:
    sim: RunningSim
    broker: TradovateBroker
    callback: CallbackListener
    clock: VirtualClock
    sink: Recorder


@asynccontextmanager
async def served(
    tmp_path: Path, *, settings: dict[str, Any] | None = None, **server: Any
) -> AsyncIterator[Served]:
    clock = VirtualClock(START)
    async with serve_sim(clock, users={"alice": ["A1", "A2"]}, **server) as sim:
        broker = TradovateBroker(
            sim.settings(tmp_path / "tokens", autonomous_timers=False, **(settings or {})), clock
        )
        sink = Recorder()
        broker.session("conn", ("A1", "A2"), sink)
        async with broker.running(), serve_callback(broker) as callback:
            yield Served(sim, broker, callback, clock, sink)


async def sign_in(s: Served, url: str, user: str = "alice") -> tuple[str, str]:
    """What the browser does: the authorize page, sign in; returns (callback URL, state)."""
    state = parse_qs(urlsplit(url).query)["state"][0]
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
        assert page.status_code == 200
        assert 'type="password"' not in page.text and "password" not in page.text.lower()
        approved = await browser.post(
            f"{s.sim.base_url}/oauth/approve",
            data={
                "user": user,
                "client_id": s.sim.client_id,
                "redirect_uri": s.callback.redirect_uri,
                "state": state,
            },
        )
    assert approved.status_code == 302
    return approved.headers["location"], state


async def follow(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as browser:
        return await browser.get(url)


@pytest.mark.trio
async def test_round_trip_stores_the_token_0600_and_connects(tmp_path: Path) -> None:
    async with served(tmp_path) as s:
        back, state = await sign_in(s, s.callback.begin("conn"))
        page = await follow(back)
        assert page.status_code == 200
        assert await s.callback.outcome(state) is None
        await s.broker.settled()
        token_file = s.broker.tokens.path("conn")
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        (issued,) = s.sim.auth.issued()
        assert issued in token_file.read_text()
        assert issued not in page.text
        # The engine hears of the new token (not the token itself) and the session comes up.
        (event,) = s.sink.of(TokenIssued)
        assert issued not in repr(event) and issued != event.token
        assert event.expires_at == START + timedelta(minutes=80)
        assert s.sink.events.index(event) < s.sink.events.index(s.sink.of(SessionRestored)[-1])
        assert s.broker.sessions()[0].live


@pytest.mark.trio
async def test_the_refresh_token_is_kept_beside_the_access_token_never_shown(
    tmp_path: Path,
) -> None:
    async with served(tmp_path, token_lifetime=timedelta(minutes=20)) as s:
        back, _ = await sign_in(s, s.callback.begin("conn"))
        await follow(back)
        await s.broker.settled()
        (refresh,) = s.sim.auth.refresh_tokens()
        token_file = s.broker.tokens.path("conn")
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        kept = s.broker.tokens.load("conn")
        assert kept is not None and kept.refresh_token == refresh
        assert refresh not in repr(kept) and refresh not in repr(s.sink.events)
        s.clock.set(START + timedelta(minutes=5))  # renewed: the refresh token stays with it
        await s.broker.run_due()
        await s.broker.settled()
        renewed = s.broker.tokens.load("conn")
        assert renewed is not None and renewed.value != kept.value
        assert renewed.refresh_token == refresh
        assert len(s.sim.requests_to("auth/renewaccesstoken")) == 1


@pytest.mark.trio
async def test_a_forged_state_is_refused_before_any_exchange(tmp_path: Path) -> None:
    async with served(tmp_path) as s:
        url = s.callback.begin("conn")
        back, _ = await sign_in(s, url.replace("state=", "state=forged"))
        page = await follow(back)
        assert page.status_code == 400
        assert "unknown or was already used" in page.text
        assert s.sim.requests_to("auth/oauthtoken") == []
        assert not s.broker.tokens.path("conn").exists()
        assert s.callback.refused == 1


@pytest.mark.trio
async def test_a_reused_state_is_refused(tmp_path: Path) -> None:
    async with served(tmp_path) as s:
        back, state = await sign_in(s, s.callback.begin("conn"))
        assert (await follow(back)).status_code == 200
        again = await follow(back)
        assert again.status_code == 400
        assert len(s.sim.requests_to("auth/oauthtoken")) == 1
        assert len(s.sink.of(TokenIssued)) == 1
        assert await s.callback.outcome(state) is None


@pytest.mark.trio
async def test_a_refused_code_says_why_without_the_code_or_the_secret(tmp_path: Path) -> None:
    async with served(tmp_path) as s:
        back, state = await sign_in(s, s.callback.begin("conn"))
        code = parse_qs(urlsplit(back).query)["code"][0]
        await s.broker.exchange_code("conn", code, s.callback.redirect_uri)  # the code is used
        with pytest.raises(AuthorizationError) as refused:
            await s.broker.exchange_code("conn", code, s.callback.redirect_uri)
        message = str(refused.value)
        assert "unknown or used" in message
        assert code not in message and s.sim.client_secret not in message
        page = await follow(back)  # the callback now exchanges the used code: refused too
        assert page.status_code == 400 and code not in page.text
        assert "Authorization failed" in page.text
        assert await s.callback.outcome(state) is not None


@pytest.mark.trio
async def test_the_json_form_of_the_token_endpoint(tmp_path: Path) -> None:
    async with served(tmp_path, settings={"token_format": "json"}) as s:
        back, state = await sign_in(s, s.callback.begin("conn"))
        await follow(back)
        assert await s.callback.outcome(state) is None
        assert s.broker.tokens.load("conn") is not None


def test_token_endpoint_defaults_to_the_host_then_v1() -> None:
    settings = TradovateSettings.demo("id", "s3cr3t-value", Path("tokens"))
    assert settings.token_urls() == (
        "https://demo.tradovateapi.com/auth/oauthtoken",
        "https://demo.tradovateapi.com/v1/auth/oauthtoken",
    )
    assert "s3cr3t-value" not in repr(settings) and "s3cr3t-value" not in str(settings)


@pytest.mark.trio
async def test_renewed_ahead_of_expiry_on_the_engine_clock(tmp_path: Path) -> None:
    async with served(tmp_path, token_lifetime=timedelta(minutes=20)) as s:
        back, _ = await sign_in(s, s.callback.begin("conn"))
        await follow(back)
        await s.broker.settled()
        first = s.broker.tokens.load("conn")
        assert first is not None
        due = s.broker.next_due()
        assert due == START + timedelta(minutes=5)  # 20 min token, renewed 15 min ahead
        s.clock.set(due)
        await s.broker.run_due()
        await s.broker.settled()
        renewed = s.broker.tokens.load("conn")
        assert renewed is not None and renewed.value != first.value
        assert renewed.expires_at == due + timedelta(minutes=20)
        assert len(s.sim.requests_to("auth/renewaccesstoken")) == 1
        authorized = s.sink.events.index(s.sink.of(TokenIssued)[0])
        assert not any(isinstance(e, TokenExpired) for e in s.sink.events[authorized:])
        assert s.broker.sessions()[0].live


@pytest.mark.trio
async def test_a_refused_renewal_means_reauthorization(tmp_path: Path) -> None:
    async with served(tmp_path, token_lifetime=timedelta(minutes=20)) as s:
        back, _ = await sign_in(s, s.callback.begin("conn"))
        await follow(back)
        await s.broker.settled()
        before = len(s.sink.events)
        s.sim.auth.refuse_renewal.add(s.sim.exchange.user("alice").id)
        s.clock.set(START + timedelta(minutes=5))
        await s.broker.run_due()
        await s.broker.settled()
        assert s.sink.events[before:] == [TokenExpired("conn")]
        assert not s.broker.sessions()[0].live


@pytest.mark.trio
async def test_no_token_means_reauth_required_at_once(tmp_path: Path) -> None:
    async with served(tmp_path) as s:
        await s.broker.settled()
        assert s.sink.events == [TokenExpired("conn")]
        assert s.sim.requests == []  # nothing was tried without a token
