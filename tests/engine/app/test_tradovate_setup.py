"""The configured Tradovate broker: refused clearly in a build without the adapter, secrets
only from the environment or a 0600 file in the data directory, registered for redaction; the
local server's socket bound at once, so a busy port is one line before anything starts; the
configured host overrides in the adapter's settings, the rest the environment's own."""

from __future__ import annotations

import importlib
import importlib.util
import re
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from brokers.base import Broker
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from engine.app import tradovate_setup
from engine.app.config import ConfigError, TradovateConfig, TradovateSimConfig, parse_config
from engine.app.logs import SECRETS
from engine.app.tradovate_setup import BrokerSetupError, local_tradovate, tradovate_broker
from tests.conftest import START

HAS_ADAPTER = importlib.util.find_spec("brokers.tradovate") is not None


def _broker(
    toml: dict[str, object], data_dir: Path
) -> tuple[Broker, AbstractAsyncContextManager[Any]]:
    config = parse_config({"broker": toml}, "engine.toml")
    assert isinstance(config.broker, TradovateConfig)
    return tradovate_broker(config.broker, data_dir, VirtualClock(START))


def _local(toml: dict[str, object], data_dir: Path) -> object:
    config = parse_config({"broker": toml}, "engine.toml")
    assert isinstance(config.broker, TradovateSimConfig)
    return local_tradovate(config.broker, data_dir, VirtualClock(START), ContractTable())


def test_a_build_without_the_adapter_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tradovate_setup, "_adapter", lambda: None)
    with pytest.raises(BrokerSetupError, match=r'"tradovate": not available in this build'):
        _broker({"kind": "tradovate"}, tmp_path)
    with pytest.raises(BrokerSetupError, match=r'"tradovate-sim": not available in this build'):
        _local({"kind": "tradovate-sim"}, tmp_path)


@pytest.mark.skipif(not HAS_ADAPTER, reason="this build has no Tradovate adapter")
def test_the_local_server_on_a_busy_port_is_one_line(tmp_path: Path, busy_port: int) -> None:
    port = busy_port
    with pytest.raises(BrokerSetupError) as caught:
        _local({"kind": "tradovate-sim", "port": port}, tmp_path)
    assert str(caught.value) == (
        f"broker: the local Tradovate server cannot listen on 127.0.0.1:{port}:"
        " Address already in use"
    )


@pytest.mark.skipif(not HAS_ADAPTER, reason="this build has no Tradovate adapter")
def test_secrets_from_the_environment_or_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRADOVATE_CLIENT_ID", raising=False)
    monkeypatch.delenv("TRADOVATE_CLIENT_SECRET", raising=False)
    with pytest.raises(BrokerSetupError, match="TRADOVATE_CLIENT_ID is not set"):
        _broker({"kind": "tradovate"}, tmp_path)
    monkeypatch.setenv("TRADOVATE_CLIENT_ID", "app-id")
    secret = tmp_path / "tv.secret"
    secret.write_text("file-secret-value-123\n")
    secret.chmod(0o640)
    with pytest.raises(BrokerSetupError, match="readable by others"):
        _broker({"kind": "tradovate", "client_secret_file": "tv.secret"}, tmp_path)
    secret.chmod(0o600)
    broker, running = _broker({"kind": "tradovate", "client_secret_file": "tv.secret"}, tmp_path)
    assert "file-secret-value-123" not in SECRETS.scrub("file-secret-value-123")
    assert broker.settings.token_dir == tmp_path / "tradovate"  # type: ignore[attr-defined]
    assert hasattr(running, "__aenter__")


@pytest.mark.skipif(not HAS_ADAPTER, reason="this build has no Tradovate adapter")
@pytest.mark.parametrize("environment", ["demo", "live"])
def test_host_overrides_reach_the_adapters_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    tv = importlib.import_module("brokers.tradovate.settings")
    monkeypatch.setenv("TRADOVATE_CLIENT_ID", "app-id")
    monkeypatch.setenv("TRADOVATE_CLIENT_SECRET", "env-secret-value-456")
    own = {"demo": (tv.DEMO_REST, tv.DEMO_WS), "live": (tv.LIVE_REST, tv.LIVE_WS)}[environment]
    broker, _ = _broker({"kind": "tradovate", "environment": environment}, tmp_path)
    settings = broker.settings  # type: ignore[attr-defined]
    assert (settings.rest_url, settings.ws_url) == own
    assert (settings.md_url, settings.auth_url, settings.token_url) == (
        tv.MD_WS,
        tv.AUTHORIZE_PAGE,
        None,
    )

    hosts = {
        "rest_url": "https://api.sandbox.example.com/v1",
        "ws_url": "wss://api.sandbox.example.com/v1/websocket",
        "md_url": "ws://127.0.0.1:9001/md/v1/websocket",
        "auth_url": "https://trader.sandbox.example.com/oauth",
        "token_url": "http://localhost:9001/auth/oauthtoken",
    }
    with capture_logs() as logs:
        broker, _ = _broker({"kind": "tradovate", "environment": environment, **hosts}, tmp_path)
    settings = broker.settings  # type: ignore[attr-defined]
    assert {key: getattr(settings, key) for key in hosts} == hosts
    assert settings.token_urls() == (hosts["token_url"],)
    assert settings.client_id == "app-id"
    assert settings.client_secret.get_secret_value() == "env-secret-value-456"
    (logged,) = [e for e in logs if e["event"] == "tradovate hosts overridden"]
    assert logged["environment"] == environment
    assert logged["hosts"] == [f"{key} {url}" for key, url in hosts.items()]
    assert logged["directory"] == str(settings.token_dir)

    # One key alone: the others stay the environment's, the token endpoint follows the REST host.
    rest = "http://127.0.0.1:9001/v1"
    broker, _ = _broker(
        {"kind": "tradovate", "environment": environment, "rest_url": rest}, tmp_path
    )
    settings = broker.settings  # type: ignore[attr-defined]
    assert (settings.rest_url, settings.ws_url, settings.md_url) == (rest, own[1], tv.MD_WS)
    assert settings.token_urls() == (
        "http://127.0.0.1:9001/auth/oauthtoken",
        "http://127.0.0.1:9001/v1/auth/oauthtoken",
    )


@pytest.mark.skipif(not HAS_ADAPTER, reason="this build has no Tradovate adapter")
def test_tokens_of_other_hosts_are_kept_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token Tradovate issued is never presented to a sandbox the config later points at (nor
    one of a sandbox to Tradovate): each set of hosts has its own token directory."""
    tokens = importlib.import_module("brokers.tradovate.tokens")
    monkeypatch.setenv("TRADOVATE_CLIENT_ID", "app-id")
    monkeypatch.setenv("TRADOVATE_CLIENT_SECRET", "env-secret-value-456")
    sandbox: dict[str, object] = {
        "kind": "tradovate",
        "rest_url": "https://api.sandbox.example.com/v1",
    }

    def token_dir(toml: dict[str, object]) -> Path:
        broker, _ = _broker(toml, tmp_path)
        found: Path = broker.settings.token_dir  # type: ignore[attr-defined]
        return found

    own = token_dir({"kind": "tradovate"})
    assert own == tmp_path / "tradovate" == token_dir({"kind": "tradovate", "rest_url": ""})
    there = token_dir(sandbox)
    assert there.parent == tmp_path and re.fullmatch(r"tradovate-[0-9a-f]{12}", there.name)
    assert token_dir(dict(sandbox)) == there  # the same hosts, the same sign-ins
    others = {
        token_dir({**sandbox, "environment": "live"}),
        token_dir({**sandbox, "rest_url": "https://api.sandbox.example.com/v2"}),
        token_dir({**sandbox, "token_url": "https://auth.sandbox.example.com/token"}),
    }
    assert len(others) == 3 and not others & {own, there}

    tokens.TokenStore(own).save("prop", tokens.Token("tradovates-own-token", START))
    broker, _ = _broker(sandbox, tmp_path)
    assert broker.tokens.load("prop") is None  # type: ignore[attr-defined]
    broker, _ = _broker({"kind": "tradovate"}, tmp_path)
    assert broker.tokens.load("prop").value == "tradovates-own-token"  # type: ignore[attr-defined]


@pytest.mark.skipif(not HAS_ADAPTER, reason="this build has no Tradovate adapter")
def test_budgets_reach_the_adapters_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[broker.budgets]``: the per-login and per-host request budgets and the waits of
    TRADOVATE.md's last section are the operator's to set; a key left out keeps the default."""
    monkeypatch.setenv("TRADOVATE_CLIENT_ID", "app-id")
    monkeypatch.setenv("TRADOVATE_CLIENT_SECRET", "env-secret-value-456")
    default, _ = _broker({"kind": "tradovate"}, tmp_path)
    budgets = {
        "login_burst": 10,
        "login_per_s": 0.5,
        "host_sync_per_hour": 120,
        "host_renewal_burst": 3,
        "renewal_spacing_s": 45,
        "rate_limit_cooldown_s": 5400,
        "throttle_wait_s": 20,
    }
    broker, _ = _broker({"kind": "tradovate", "budgets": budgets}, tmp_path)
    settings = broker.settings  # type: ignore[attr-defined]
    assert settings.budget_burst == 10
    assert settings.budget_per_s == 0.5
    assert settings.host_sync_per_hour == 120
    assert settings.host_renewal_burst == 3
    assert settings.renewal_spacing.total_seconds() == 45
    assert settings.rate_limit_cooldown.total_seconds() == 5400
    assert settings.throttle_wait_s == 20
    untouched = default.settings  # type: ignore[attr-defined]
    assert settings.host_sync_burst == untouched.host_sync_burst
    assert settings.max_concurrent == untouched.max_concurrent


@pytest.mark.parametrize(
    ("budgets", "expected"),
    [
        ({"login_burst": 0}, "broker.budgets.login_burst: expected a value greater than or equal"),
        ({"host_sync_per_hour": -1}, "broker.budgets.host_sync_per_hour: expected a value greater"),
        ({"per_hour": 5}, "broker.budgets.per_hour: unknown key"),
    ],
)
def test_a_wrong_budget_is_one_line_naming_it(budgets: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"broker": {"kind": "tradovate", "budgets": budgets}}, "engine.toml")
    (line,) = caught.value.errors
    assert line.startswith(expected), line
