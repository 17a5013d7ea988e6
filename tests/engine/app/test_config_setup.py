"""The configuration's setup sections (engine/app/config_setup.py) for the S9 rules: every risk
key in an account's limits and in ``[profiles.NAME]`` tables (S9.7), the profile an account uses,
``[[blackout]]`` intervals (S9.5); the first start seeds them; each error names the section, the
key and what is wrong."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.app.config import ConfigError, load_config, parse_config
from engine.app.seeding import seed_from_config
from engine.core.engine import Engine, EngineSettings
from engine.storage.store import Store
from tests.conftest import START

S9 = """
[[connections]]
id = "prop"

[profiles.eval-50k]
max_loss = 2000
max_loss_mode = "eod_trailing"
commissions = { ES = 2.10, MES = "0.60" }
flatten_at = "15:10"

[profiles.funded]

[[accounts]]
id = "F1"
connection = "prop"
profile = "eval-50k"
limits = { daily_loss_limit = "1000", max_contracts = 2.5, max_loss_stop = 0, flatten_at = "off", blackout = "flatten", contract_weights = { MNQ = 0.2 } }

[[accounts]]
id = "F2"
connection = "prop"

[[blackout]]
start = 2026-11-25T07:29:00-06:00
end = 2026-11-25T07:45:00-06:00
label = "CPI"

[[blackout]]
start = 2026-11-24T19:00:00Z
end = "2026-11-24T20:00:00+00:00"
label = "FOMC"
"""  # noqa: E501


def test_s9_every_risk_key_profiles_and_blackouts(tmp_path: Path) -> None:
    """S9.7: an account's own keys of every shape and the profile it uses; S9.5: blackouts,
    offset datetimes (TOML's or ISO text), by start."""
    config = parse_config(tomllib.loads(S9), "engine.toml", base_dir=tmp_path)
    assert config.profile_keys == {
        "eval-50k": {
            "max_loss": Decimal(2000),
            "max_loss_mode": "eod_trailing",
            "commissions": {"ES": Decimal("2.1"), "MES": Decimal("0.60")},
            "flatten_at": "15:10",
        },
        "funded": {},
    }
    f1 = config.accounts[0]
    assert f1.profile == "eval-50k"
    assert f1.limits == {
        "daily_loss_limit": Decimal(1000),
        "max_contracts": Decimal("2.5"),
        "max_loss_stop": Decimal(0),
        "flatten_at": "off",
        "blackout": "flatten",
        "contract_weights": {"MNQ": Decimal("0.2")},
    }
    assert config.accounts[1].profile is None
    assert [(b.label, b.start.utcoffset()) for b in config.blackouts] == [
        ("FOMC", timedelta(0)),
        ("CPI", timedelta(hours=-6)),
    ]


def test_s9_seeding_writes_profiles_account_profiles_and_blackouts(tmp_path: Path) -> None:
    config = parse_config(tomllib.loads(S9), "engine.toml", base_dir=tmp_path)
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
        assert topology.profiles == config.profile_keys
        assert topology.accounts["F1"].profile == "eval-50k"
        assert topology.accounts["F1"].limits == config.accounts[0].limits
        assert topology.blackouts == config.blackouts
        effective = topology.effective("F1")
        assert (effective["max_loss"], effective["flatten_at"]) == (Decimal(2000), "off")
    finally:
        engine.stop()
        store.close()


ACCOUNT = "[[connections]]\nid = 'c'\n[[accounts]]\nid = 'F1'\nconnection = 'c'\n"
BLACKOUT = "[[blackout]]\nlabel = 'CPI'\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ACCOUNT + "limits = { max_loss_mode = 'daily' }",
         'accounts[0].limits.max_loss_mode: account "F1": unknown value \'daily\'; expected one'
         " of: static, intraday_trailing, eod_trailing"),
        (ACCOUNT + "limits = { max_contracts = -1 }",
         'accounts[0].limits.max_contracts: account "F1": negative: -1; expected a number of'
         " contracts"),
        (ACCOUNT + "limits = { flatten_at = '17:30' }",
         'accounts[0].limits.flatten_at: account "F1": flatten_at must be a time of day "HH:MM"'
         ' before 17:00, got "17:30"'),
        (ACCOUNT + "limits = { commissions = { es = 1 } }",
         "accounts[0].limits.commissions: account \"F1\": 'es' is not a contract root"),
        (ACCOUNT + "limits = { start_balance = 0 }",
         'accounts[0].limits.start_balance: account "F1": must be more than 0'),
        (ACCOUNT + "profile = 'eval'",
         "accounts[0].profile: account \"F1\": expected the name of a [profiles.NAME] table, got"
         " 'eval' (profiles: none is defined)"),
        (ACCOUNT + "profile = 'eval'\n[profiles.funded]\n",
         "got 'eval' (profiles: funded)"),
        ("[profiles.eval]\nmax_los = 1",
         "profiles.eval.max_los: profile \"eval\": unknown risk key 'max_los'; expected one of:"
         " daily_loss_limit"),
        ("[profiles.eval]\nblackout = 'on'",
         "profiles.eval.blackout: profile \"eval\": unknown value 'on'; expected one of: off,"
         " block, flatten"),
        ("[profiles.'a b']\nmax_loss = 1",
         'profiles."a b": expected a profile name of 1-64 letters'),
        ("[profiles]\neval = 1", "profiles.eval: expected a table"),
        (BLACKOUT + "start = 2026-11-25T07:29:00\nend = 2026-11-25T07:45:00-06:00",
         "blackout[0].start: expected a date and time with its UTC offset, e.g."
         " 2026-11-25T07:29:00-06:00 (got 2026-11-25T07:29:00)"),
        (BLACKOUT + "start = 2026-11-25T07:29:00-06:00\nend = 2026-11-25T07:29:00-06:00",
         "blackout[0]: end 2026-11-25T07:29:00-06:00 must be after start"
         " 2026-11-25T07:29:00-06:00"),
        ("[[blackout]]\nstart = 2026-11-25T07:29:00Z\nend = 2026-11-25T07:45:00Z",
         "blackout[0].label: missing"),
        ("[[blackout]]\nstart = 2026-11-25T07:29:00Z\nend = 2026-11-25T07:45:00Z\nlabel = ''",
         "blackout[0].label: expected a label of 1-64 characters on one line"),
        ("[[blackout]]\nstart = 2026-11-25T07:29:00Z\nend = 2026-11-25T07:45:00Z\n"
         'label = "a\\nb"',
         "blackout[0].label: expected a label of 1-64 characters on one line"),
        (BLACKOUT + "start = 2026-11-25T07:29:00Z\nend = 2026-11-25T07:45:00Z\nwhen = 1",
         "blackout[0].when: unknown key; expected one of: start, end, label"),
        (BLACKOUT + "start = 2026-11-25T07:29:00Z\nend = 2026-11-25T07:45:00Z\n"
         + BLACKOUT + "start = 2026-11-25T01:29:00-06:00\nend = 2026-11-25T07:45:00Z",
         "blackout[1]: the same interval and label as blackout[0]"),
    ],
)  # fmt: skip
def test_s9_errors_name_the_section_the_key_and_what(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "engine.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(expected in line for line in caught.value.errors), caught.value.errors
    assert str(caught.value).startswith(f"{path}: ")
