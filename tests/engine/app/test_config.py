"""The configuration file: every key, the defaults (the demo), and errors that name the key and
the expected form; secrets never come from it (the setup's S9 sections: test_config_setup.py)."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.app.config import (
    Config,
    ConfigError,
    TradovateConfig,
    is_secret_key,
    load_config,
    parse_config,
)
from engine.app.config_errors import key_name
from engine.app.seeding import seed_from_config
from engine.core.engine import Engine, EngineSettings
from engine.domain.copying import CopyMode
from engine.storage.store import Store
from tests.conftest import START

FULL = """
data_dir = "state"

[api]
host = "0.0.0.0"
port = 9000
public_url = "https://engine.example.com/"
max_body_bytes = 4096

[log]
terminal = "json"
level = "warning"
file = "run.log"

[engine]
threads = 2
max_copy_age_seconds = 5
mirror_grace_seconds = 0.5
settle_seconds = 3
durability_timeout_seconds = 30

[broker]
kind = "paper"
state_file = "broker.json"

[demo]
market = true
leader = "LEAD"
seed = 7
leader_interval_seconds = [1, 2]

[[connections]]
id = "lead"

[[connections]]
id = "prop"
broker = "paper"

[[accounts]]
id = "LEAD"
connection = "lead"

[[accounts]]
id = "F1"
connection = "prop"
balance = "25000"
limits = { daily_loss_limit = "1000", trailing_drawdown = 2000 }

[[groups]]
id = "main"
leader = "LEAD"
followers = [
    { account = "F1", ratio = "0.5", max_qty = 3, symbol_map = { ES = "MES" }, copy = "orders" },
]
"""


def test_no_file_is_the_demo() -> None:
    config = load_config(None)
    assert config.demo_setup
    assert config.demo_market
    assert config.demo_leader("DEMO-LEAD") == "DEMO-LEAD"
    assert config.broker.kind == "paper"
    assert (config.api.host, config.api.port) == ("127.0.0.1", 8765)
    assert config.data_path == Path("data")


def test_every_key(tmp_path: Path) -> None:
    path = tmp_path / "engine.toml"
    path.write_text(FULL)
    config = load_config(path)
    assert config.data_path == tmp_path / "state"  # relative to the file
    assert config.api.public_url == "https://engine.example.com"
    assert (config.api.port, config.api.max_body_bytes) == (9000, 4096)
    assert (config.log.terminal, config.log.level, config.log.file) == (
        "json",
        "warning",
        "run.log",
    )
    assert config.engine.threads == 2
    assert config.engine.durability_timeout_seconds == 30
    assert config.engine.mirror_grace_seconds == 0.5
    assert config.broker.kind == "paper"
    assert config.path(config.broker.state_file) == tmp_path / "broker.json"
    assert not config.demo_setup  # [[connections]] describe the setup
    assert config.demo_market
    assert config.demo_leader("DEMO-LEAD") == "LEAD"
    assert config.accounts[1].limits == {
        "daily_loss_limit": Decimal(1000),
        "trailing_drawdown": Decimal(2000),
    }
    assert config.groups[0].followers[0].symbol_map == {"ES": "MES"}


def test_seeds_an_empty_store(tmp_path: Path) -> None:
    config = parse_config(tomllib.loads(FULL), "engine.toml", base_dir=tmp_path)
    clock = VirtualClock(START)
    contracts = ContractTable()
    store = Store(tmp_path / "engine.sqlite")
    engine = Engine(
        store=store,
        clock=clock,
        brokers={"paper": PaperBroker(clock, contracts)},
        contracts=contracts,
        settings=EngineSettings(),
    )
    try:
        seed_from_config(engine, config)
        topology = engine.topology
        assert list(topology.connections) == ["lead", "prop"]
        assert topology.accounts["F1"].balance == Decimal(25000)
        assert topology.accounts["F1"].limits["daily_loss_limit"] == Decimal(1000)
        member = topology.groups["main"].members[0]
        assert (member.ratio, member.max_qty, member.symbol_map, member.copy) == (
            Decimal("0.5"),
            3,
            (("ES", "MES"),),
            CopyMode.ORDERS,
        )
    finally:
        engine.stop()
        store.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[api]\nport = 'x'", "api.port: expected an integer (got 'x')"),
        ("[api]\nport = 70000", "api.port: expected a value less than or equal to 65535"),
        ("[api]\nhostname = 'a'", "api.hostname: unknown key; expected one of: host, port"),
        ("[api]\npublic_url = 'ftp://x'", 'api.public_url: expected an http(s) URL'),
        ("[log]\nlevel = 'loud'", "log.level: expected 'debug', 'info', 'warning' or 'error'"),
        ("[log]\nfile = '../x.log'", "log.file: expected a file name in the data directory"),
        ("[engine]\nthreads = -1", "engine.threads: expected a value greater than or equal to 0"),
        ("[engine]\ndurability_timeout_seconds = 0",
         "engine.durability_timeout_seconds: expected a value greater than 0"),
        ("[broker]\nkind = 'ib'", 'broker.kind: expected kind = "paper", "tradovate"'),
        ("[broker]\nkind = 'tradovate'\nenvironment = 'prod'",
         "broker.environment: expected 'demo' or 'live' (got 'prod')"),
        ("[broker]\nkind = 'tradovate'\nclient_secret = 's'", "broker.client_secret: secrets"),
        ("[broker]\nkind = 'tradovate'\n[demo]\nmarket = true",
         'demo.market: needs broker.kind = "paper"'),
        ("[demo]\nleader_interval_seconds = [5, 1]", "demo.leader_interval_seconds: expected"),
        ("[[connections]]\nid = 'a b'", "connections[0].id: expected an id of"),
        ("[[connections]]\nid = 'c'\n[[accounts]]\nid = 'A'\nconnection = 'd'",
         "accounts[0].connection: expected the id of a [[connections]] entry, got 'd'"),
        ("[[connections]]\nid = 'c'\n[[accounts]]\nid = 'A'\nconnection = 'c'\n"
         "limits = { max_los = 1 }", "accounts[0].limits.max_los: account \"A\": unknown risk"
         " key 'max_los'; expected one of: daily_loss_limit, daily_profit_target"),
        ("[[connections]]\nid = 'c'\n[[accounts]]\nid = 'A'\nconnection = 'c'\n"
         "[[groups]]\nid = 'g'\nleader = 'A'\nfollowers = [{ account = 'A', ratio = '-1' }]",
         "groups[0].followers[0].ratio: expected a value greater than 0"),
        ("[[connections]]\nid = 'c'\n[[accounts]]\nid = 'A'\nconnection = 'c'\n"
         "[[groups]]\nid = 'g'\nleader = 'A'\nfollowers = [{ account = 'A' }]",
         "groups[0].followers[0].account: account 'A' is already in a group"),
        ("[[connections]]\nid = 'c'\n[[accounts]]\nid = 'A'\nconnection = 'c'\n"
         "[[groups]]\nid = 'g'\nleader = 'A'\nfollowers = [{ account = 'B', "
         "symbol_map = { ES = 'XX' } }]", "unknown instrument root 'XX'"),
        ("[[connections]]\nid = 'c'\n[[accounts]]\nid = 'A'\nconnection = 'c'\n"
         "[[groups]]\nid = 'g'\nleader = 'A'\nfollowers = [{ account = 'B', copy = 'all' }]",
         "groups[0].followers[0].copy: expected 'fills' or 'orders' (got 'all')"),
        ("[[connections]]\nid = 'c'\n[[accounts]]\nid = 'A'\nconnection = 'c'\n"
         "[[groups]]\nid = 'g'\nleader = 'A'\non_drift = 'close'",
         "groups[0].on_drift: expected 'alert' or 'reduce' (got 'close')"),
        ("[[connections]]\nid = 'c'\n[[accounts]]\nid = 'A'\nconnection = 'c'\n"
         "[[groups]]\nid = 'g'\nleader = 'A'\nfollowers = [{ account = 'B', "
         "copy = 'orders', symbol_map = { ES = 'CL' } }]",
         "groups[0].followers[0]: copy = \"orders\" copies prices unchanged, so symbol_map "
         "ES → CL needs roots of the same price scale: ES ticks 0.25, CL ticks 0.01"),
        ("[demo]\nsetup = true\n[[connections]]\nid = 'c'", "demo.setup: expected false"),
        ("password = 'hunter2'", "password: secrets and passwords are never read"),
        ("data_dir = 5", "data_dir: expected a string (got 5)"),
    ],
)  # fmt: skip
def test_errors_name_the_key_and_the_expected_form(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "engine.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(expected in line for line in caught.value.errors), caught.value.errors
    assert str(caught.value).startswith(f"{path}: ")


def test_not_toml_says_where(tmp_path: Path) -> None:
    path = tmp_path / "engine.toml"
    path.write_text("[api\nport = 1\n")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 1"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "engine.toml"
    path.write_text("[api]\nport = 'x'\nhost = 5\n[log]\nlevel = 'x'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.errors) == 3


def test_the_tradovate_section_validates() -> None:
    config = parse_config(
        {"broker": {"kind": "tradovate", "environment": "live", "client_secret_file": "tv.secret"}},
        "x",
    )
    assert config.broker.kind == "tradovate"
    assert not config.demo_setup
    assert not config.demo_market
    assert config.demo_leader("DEMO-LEAD") == ""
    sim = parse_config({"broker": {"kind": "tradovate-sim", "port": 0}}, "x")
    assert sim.broker.kind == "tradovate-sim"


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(ValueError, match="frozen"):
        config.api.port = 1  # type: ignore[misc]


def test_a_key_that_is_not_a_bare_word_is_quoted_on_its_one_line() -> None:
    """Found by fuzzing: a key holding a line break split its message over two lines."""
    with pytest.raises(ConfigError) as raised:
        parse_config({"api": {"po\nrt": 1}, "my\rtoken": "x"}, "engine.toml")
    assert str(raised.value).splitlines() == [
        'engine.toml: "my\\rtoken": secrets and passwords'
        " are never read from the config file; a broker secret comes from an environment"
        " variable or a 0600 file in the data directory (see broker.client_secret_env)"
    ]
    with pytest.raises(ConfigError) as raised:
        parse_config({"api": {"po\nrt": 1, "a.b": 2}}, "engine.toml")
    assert [line.split(": unknown key")[0] for line in str(raised.value).splitlines()] == [
        'engine.toml: api."po\\nrt"',
        'engine.toml: api."a.b"',
    ]


def test_a_value_with_control_characters_is_escaped_in_its_message() -> None:
    """Found by fuzzing: a symbol_map root holding a carriage return broke its message's line."""
    raw = tomllib.loads(FULL)
    raw["groups"][0]["followers"][0]["symbol_map"] = {"ES": "\r"}
    with pytest.raises(ConfigError) as raised:
        parse_config(raw, "engine.toml")
    (line,) = str(raised.value).splitlines()
    assert "unknown instrument root '\\r'" in line


# --- secrets, and the keys that only look like them ----------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["token", "access_token", "refresh_token", "api_token", "client_secret", "password",
     "passwd", "Password", "TOKEN", "secret_key", "api_key", "apikey", "passphrase",
     "my\rtoken", "token_value", "credentials"],
)  # fmt: skip
def test_a_key_naming_a_secret_is_refused_wherever_it_is(key: str) -> None:
    assert is_secret_key(key)
    for raw, where in (
        ({key: "x"}, key_name(key)),
        ({"broker": {"kind": "tradovate", key: "x"}}, f"broker.{key_name(key)}"),
        ({"connections": [{"id": "c", key: "x"}]}, f"connections[0].{key_name(key)}"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_config(raw, "engine.toml")
        assert caught.value.errors == [
            f"{where}: secrets and passwords are never read from the config file; a broker"
            " secret comes from an environment variable or a 0600 file in the data directory"
            " (see broker.client_secret_env)"
        ]


@pytest.mark.parametrize(
    "key",
    ["token_url", "TOKEN_URL", "auth_url", "rest_url", "client_secret_env", "client_secret_file",
     "password_file", "api_token_env", "refresh_token-url", "kind", "state_file", "leader"],
)  # fmt: skip
def test_a_url_or_where_a_secret_lives_is_not_a_secret(key: str) -> None:
    """The filter refuses no URL nor the place a secret is kept; the schema decides the rest
    (``password_file`` is not a key of it, so it is an unknown key, not a secret)."""
    assert not is_secret_key(key)


def test_token_url_is_a_url_not_a_secret() -> None:
    raw = {"broker": {"kind": "tradovate", "token_url": "https://sandbox.example.com/auth/token"}}
    broker = parse_config(raw, "engine.toml").broker
    assert isinstance(broker, TradovateConfig)
    assert broker.hosts == {"token_url": "https://sandbox.example.com/auth/token"}
    with pytest.raises(ConfigError) as caught:
        parse_config({"api": {"token_url": "https://x"}}, "engine.toml")
    (line,) = caught.value.errors
    assert line.startswith("api.token_url: unknown key; expected one of: host, port")


# --- the Tradovate hosts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("rest_url", "https://sandbox.example.com/v1"),
        ("rest_url", "http://127.0.0.1:8080/v1"),
        ("rest_url", "http://127.3.4.5/v1"),
        ("rest_url", "http://[::1]:8080/v1"),
        ("rest_url", "http://localhost:8080/v1"),
        ("ws_url", "wss://sandbox.example.com/v1/websocket"),
        ("ws_url", "ws://127.0.0.1:8080/v1/websocket"),
        ("md_url", "wss://md.sandbox.example.com/v1/websocket"),
        ("md_url", "ws://localhost/md/v1/websocket"),
        ("auth_url", "https://trader.sandbox.example.com/oauth"),
        ("auth_url", "https://sandbox.example.com/oauth?tenant=7"),
        ("auth_url", "http://[::1]/oauth"),
        ("token_url", "https://sandbox.example.com/auth/oauthtoken"),
        ("token_url", "http://127.0.0.1:8080/v1/auth/oauthtoken"),
    ],
)
def test_a_host_override_is_https_or_plain_on_loopback(key: str, url: str) -> None:
    broker = parse_config({"broker": {"kind": "tradovate", key: url}}, "engine.toml").broker
    assert isinstance(broker, TradovateConfig)
    assert broker.hosts == {key: url}


HTTP_EXPECTED = "expected an https:// URL, or http:// on a loopback address"
WS_EXPECTED = "expected a wss:// URL, or ws:// on a loopback address"


@pytest.mark.parametrize(
    ("key", "url", "expected"),
    [
        ("rest_url", "http://10.0.0.5/v1", HTTP_EXPECTED),
        ("rest_url", "http://sandbox.example.com/v1", HTTP_EXPECTED),
        ("rest_url", "http://0.0.0.0/v1", HTTP_EXPECTED),
        ("rest_url", "http://[::]/v1", HTTP_EXPECTED),
        ("rest_url", "http://127.0.0.1.example.com/v1", HTTP_EXPECTED),
        ("rest_url", "wss://sandbox.example.com/v1", HTTP_EXPECTED),
        ("rest_url", "HTTPS://sandbox.example.com/v1", HTTP_EXPECTED),
        ("rest_url", "sandbox.example.com/v1", HTTP_EXPECTED),
        ("rest_url", "https:///v1", HTTP_EXPECTED),
        ("rest_url", "https://sandbox.example.com/v1?x=1",
         "expected a URL without a '?' query (the REST paths are appended to it)"),
        ("auth_url", "http://192.168.1.20/oauth", HTTP_EXPECTED),
        ("auth_url", "https://sandbox.example.com/oauth#top",
         "expected a URL without a '#' fragment"),
        ("token_url", "ftp://127.0.0.1/token", HTTP_EXPECTED),
        ("token_url", "https://sandbox.example.com:99999/token",
         "expected a URL with a valid host and port"),
        ("token_url", "https://[::1/token", "expected a URL with a valid host and port"),
        ("ws_url", "ws://10.0.0.5/v1/websocket", WS_EXPECTED),
        ("ws_url", "https://sandbox.example.com/v1/websocket", WS_EXPECTED),
        ("md_url", "ws://md.sandbox.example.com/v1/websocket", WS_EXPECTED),
        ("md_url", "ws://localhost\n.example.com/v1/websocket", WS_EXPECTED),
    ],
)  # fmt: skip
def test_a_host_override_off_loopback_must_be_secure(key: str, url: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"broker": {"kind": "tradovate", key: url}}, "engine.toml")
    assert caught.value.errors == [f"broker.{key}: {expected} (got {url!r})"]
    (line,) = str(caught.value).splitlines()
    assert line.startswith("engine.toml: broker.")


def test_a_host_override_with_a_password_is_refused_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "engine.toml"
    path.write_text(
        '[broker]\nkind = "tradovate"\nrest_url = "https://me:hunter2@sandbox.example.com/v1"\n'
        'ws_url = "ws://me:hunter3@10.0.0.5/v1/websocket"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == [
        f"broker.{key}: expected a URL without a user name or password (secrets and passwords"
        " are never read from the config file)"
        for key in ("rest_url", "ws_url")
    ]
    assert "hunter" not in str(caught.value)


def test_no_host_override_keeps_the_environments_hosts() -> None:
    broker = parse_config({"broker": {"kind": "tradovate", "rest_url": ""}}, "engine.toml").broker
    assert isinstance(broker, TradovateConfig) and broker.hosts == {}
    for kind in ("paper", "tradovate-sim"):
        with pytest.raises(ConfigError) as caught:
            parse_config({"broker": {"kind": kind, "rest_url": "https://x/v1"}}, "engine.toml")
        (line,) = caught.value.errors
        assert line.startswith("broker.rest_url: unknown key; expected one of: ")


def test_the_operations_guides_example_is_taken_as_it_is(tmp_path: Path) -> None:
    """docs/operations.md's example configuration, copied as-is into a file, is one the engine
    starts on: every key, its own setup seeding the store (the demo's off), its leader traded by
    the simulated market."""
    guide = (Path(__file__).resolve().parents[3] / "docs" / "operations.md").read_text()
    section = guide[guide.index("## Configuration") :]
    start = section.index("```toml\n") + len("```toml\n")
    path = tmp_path / "engine.toml"
    path.write_text(section[start : section.index("```\n", start)])
    config = load_config(path)
    assert [c.id for c in config.connections] == ["lead", "prop"]
    assert [a.id for a in config.accounts] == ["LEAD", "F1"]
    assert [(g.leader, [f.account for f in g.followers]) for g in config.groups] == [
        ("LEAD", ["F1"])
    ]
    assert (config.accounts[1].profile, list(config.profiles)) == ("eval-50k", ["eval-50k"])
    assert [b.label for b in config.blackouts] == ["CPI"]
    assert not config.demo_setup
    assert config.demo_leader("DEMO-LEAD") == "LEAD"
