"""The local Tradovate server's configuration: loopback only, the demo on by default on it, and
the command line's ``--tradovate-sim`` replacing the file's ``[broker]``."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ConfigError, TradovateSimConfig, load_config, parse_config


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
