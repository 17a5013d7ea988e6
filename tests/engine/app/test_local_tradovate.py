"""The local Tradovate server inside the engine (``engine/app/local_tradovate.py``), in process over
real sockets on 127.0.0.1: every connection becomes a login named after it (before and after
the server serves), an earlier run's token is dropped, the authorize URL leads to the server's
own page, and the demo acts at the server through its venue; its configuration: loopback only,
the demo on by default on it, and the command line's ``--tradovate-sim`` replacing the file's
``[broker]``. The whole engine on it, as a process, is in ``test_live.py``."""

from __future__ import annotations

import socket
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trio

from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.tradovate.callback import serve_callback
from brokers.tradovate.sim import RunningSim
from brokers.tradovate.tokens import Token, TokenStore
from engine.app.config import ConfigError, TradovateSimConfig, load_config, parse_config
from engine.app.demo import VenueError
from engine.app.local_tradovate import TOKEN_DIR, LocalTradovate
from engine.app.logs import SECRETS
from tests.brokers.tradovate.conftest import Recorder
from tests.conftest import START


def _local(data_dir: Path, **broker: object) -> LocalTradovate:
    config = parse_config({"broker": {"kind": "tradovate-sim", **broker}}, "engine.toml")
    assert isinstance(config.broker, TradovateSimConfig)
    return LocalTradovate(config.broker, data_dir, VirtualClock(START), ContractTable())


def _logins(sim: RunningSim) -> dict[str, list[str]]:
    exchange = sim.exchange
    return {
        user.name: sorted(a.name for a in exchange.accounts_of(user.id))
        for user in exchange.users.values()
    }


async def _until_logins(sim: RunningSim, expected: dict[str, list[str]]) -> None:
    with trio.fail_after(5):
        while _logins(sim) != expected:
            await trio.sleep(0.01)


@pytest.mark.trio
async def test_connections_become_logins_and_sign_in_on_the_servers_page(tmp_path: Path) -> None:
    TokenStore(tmp_path / TOKEN_DIR).save("early", Token("an-earlier-runs-token", START))
    local = _local(tmp_path)
    settings = local.adapter.settings
    assert settings.rest_url == f"{local.url}/v1"
    assert settings.token_dir == tmp_path / TOKEN_DIR
    secret = settings.client_secret.get_secret_value()
    assert secret not in SECRETS.scrub(f"secret={secret}")

    early = Recorder()
    local.broker.session("early", ("E1",), early)  # as engine.start() does, before trio runs
    assert TokenStore(tmp_path / TOKEN_DIR).load("early") is None
    async with local.running() as sim:
        assert sim.base_url == local.url
        await _until_logins(sim, {"early": ["E1"]})
        local.broker.session("late", ("L1", "L2"), Recorder())  # a connection added by the API
        await _until_logins(sim, {"early": ["E1"], "late": ["L1", "L2"]})
        assert not local.is_delivering("early")

        async with serve_callback(local.broker) as callback:
            url = callback.begin("early")
            assert url.startswith(f"{local.url}/oauth?")
            async with httpx.AsyncClient() as browser:
                page = await browser.get(url)
                assert "Sign in as early" in page.text and "Sign in as late" in page.text
                approved = await browser.post(
                    f"{local.url}/oauth/approve",
                    data={
                        "user": "early",
                        "client_id": parse_qs(urlsplit(url).query)["client_id"][0],
                        "redirect_uri": callback.redirect_uri,
                        "state": parse_qs(urlsplit(url).query)["state"][0],
                    },
                )
                assert approved.status_code == 302
                back = await browser.get(approved.headers["location"])
            assert back.status_code == 200, back.text
            with trio.fail_after(5):
                await local.wait_live("early")
        assert not local.is_delivering("late")


@pytest.mark.trio
async def test_the_demo_trades_and_quotes_at_the_server(tmp_path: Path) -> None:
    local = _local(tmp_path)
    local.broker.session("lead", ("LEAD",), Recorder())
    async with local.running():
        venue = local.venue
        with pytest.raises(VenueError, match="no price"):
            venue.trade("LEAD", "ESZ6", 1)
        venue.set_price("ESZ6", Decimal("5000.25"))
        venue.trade("LEAD", "ESZ6", 3, (1, 2))
        venue.trade("LEAD", "ESZ6", -1)
        assert venue.position("LEAD", "ESZ6") == 2
        assert venue.position("LEAD", "NQZ6") == 0
        with pytest.raises(VenueError, match="no account 'NOBODY'"):
            venue.position("NOBODY", "ESZ6")
    with pytest.raises(RuntimeError, match="not serving"):
        _ = local.venue


def test_a_server_that_never_served_frees_its_port(tmp_path: Path) -> None:
    local = _local(tmp_path)
    port = int(local.url.rsplit(":", 1)[1])
    local.close()
    again = socket.socket()
    try:
        again.bind(("127.0.0.1", port))
    finally:
        again.close()


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("tradovate.example.com", False),
    ],
)
def test_the_server_is_for_this_machine_only(host: str, allowed: bool) -> None:
    raw = {"broker": {"kind": "tradovate-sim", "host": host}}
    if allowed:
        broker = parse_config(raw, "engine.toml").broker
        assert isinstance(broker, TradovateSimConfig) and broker.host == host
        return
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "engine.toml")
    assert caught.value.errors == [
        'broker.host: expected a loopback address ("127.0.0.1", "::1" or "localhost"): the local'
        " Tradovate server signs in whoever reaches it, so it serves this machine only"
        f" (got {host!r})"
    ]


def test_the_command_line_switch_replaces_the_files_broker(tmp_path: Path) -> None:
    """``run --tradovate-sim``: the file's [broker] gives way, its keys kept for the same kind;
    the demo is on by default on the local server as on the paper broker."""
    assert load_config(None, broker="tradovate-sim").demo_setup
    path = tmp_path / "engine.toml"
    path.write_text('[broker]\nkind = "tradovate"\nenvironment = "live"\n')
    config = load_config(path, broker="tradovate-sim")
    assert config.broker == TradovateSimConfig(kind="tradovate-sim")
    assert config.demo_setup and config.demo_market
    path.write_text('[broker]\nkind = "tradovate-sim"\nport = 4999\n')
    assert load_config(path, broker="tradovate-sim").broker == TradovateSimConfig(
        kind="tradovate-sim", port=4999
    )
    path.write_text('[[connections]]\nid = "c"\nbroker = "paper"\n')
    with pytest.raises(ConfigError, match=r"connections\[0\]\.broker: expected 'tradovate-sim'"):
        load_config(path, broker="tradovate-sim")
