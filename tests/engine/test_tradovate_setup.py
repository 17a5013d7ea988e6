"""The configured Tradovate broker: refused clearly in a build without the adapter, secrets
only from the environment or a 0600 file in the data directory, registered for redaction; the
local server's socket bound at once, so a busy port is one line before anything starts."""

from __future__ import annotations

import importlib.util
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from brokers.base import Broker
from engine import tradovate_setup
from engine.clock import VirtualClock
from engine.config import TradovateConfig, TradovateSimConfig, parse_config
from engine.instruments import ContractTable
from engine.logs import SECRETS
from engine.tradovate_setup import BrokerSetupError, local_tradovate, tradovate_broker
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
