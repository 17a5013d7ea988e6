"""docs/examples/prop-firm-profiles.toml, the example profiles in the style of some firms'
published rules (SEMANTICS S9.7): a configuration the engine's loader takes as it is, every
profile naming the firm's page and the day it was read, the file saying they are examples that
firms change, and between them the kinds of account the risk guide describes."""

from __future__ import annotations

import re
import tomllib
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from engine.app.config import ConfigError, load_config
from engine.domain.max_contracts import MICRO_ROOTS
from engine.domain.risk_profile import RiskRules, RiskValue, parse_values
from engine.domain.sessions import BlackoutMode
from engine.domain.threshold import MaxLossMode

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "prop-firm-profiles.toml"
TABLE = re.compile(r"^\[profiles\.([A-Za-z0-9._-]+)\]\s*$")
URL = re.compile(r"https://\S+")
READ = re.compile(r"\bread (\d{4}-\d{2}-\d{2})\b")


def _profiles() -> dict[str, dict[str, RiskValue]]:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    return {name: parse_values(keys) for name, keys in raw["profiles"].items()}


def _comments_above(lines: list[str], index: int) -> list[str]:
    """The comment lines right above line ``index``, up to the first line that is not one."""
    block: list[str] = []
    while index > 0 and lines[index - 1].startswith("#"):
        index -= 1
        block.insert(0, lines[index])
    return block


def test_the_engine_takes_the_example_file_as_a_configuration() -> None:
    try:
        config = load_config(EXAMPLE)
    except ConfigError as error:
        pytest.fail(f"the engine refuses {EXAMPLE.relative_to(ROOT)}: {error}")
    assert config.profile_keys == _profiles()
    assert [(b.label, b.end - b.start) for b in config.blackouts] == [("NFP", timedelta(minutes=3))]


def test_every_profile_names_the_page_it_came_from_and_the_day_it_was_read() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    tables = [(i, m[1]) for i, line in enumerate(lines) if (m := TABLE.match(line))]
    assert [name for _, name in tables] == list(_profiles())
    for index, name in tables:
        comment = "\n".join(_comments_above(lines, index))
        assert URL.search(comment), f"{name}: no page named above it"
        dates = READ.findall(comment)
        assert dates, f"{name}: no 'read YYYY-MM-DD' above it"
        for day in dates:
            date.fromisoformat(day)  # a real date, or the test fails here


def test_the_file_says_first_that_they_are_examples_that_firms_change() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    head = text[: text.index("[profiles.")]
    assert "EXAMPLES, NOT ADVICE" in head
    assert "Firms change their rules" in head


def test_the_profiles_cover_the_kinds_of_account_the_risk_guide_describes() -> None:
    """An end-of-day and an intraday trailing threshold (S9.3), one stopped at the starting
    balance; a funded account with a daily loss limit and a consistency rule (S5.2, S9.6); a cap
    with micros at 0.1 and one counting them as full lots (S9.2); a session close (S9.4); a news
    blackout (S9.5)."""
    rules = {name: RiskRules.of(keys) for name, keys in _profiles().items()}
    trailing = {(r.max_loss_mode, r.max_loss_stop) for r in rules.values() if r.max_loss}
    assert (MaxLossMode.EOD, Decimal(0)) in trailing
    assert any(mode is MaxLossMode.INTRADAY for mode, _ in trailing)
    assert any("daily_loss_limit" in r.limits and r.consistency_pct for r in rules.values())
    capped = [r for r in rules.values() if r.max_contracts]
    assert any(not r.contract_weights for r in capped)
    as_lots = dict.fromkeys(MICRO_ROOTS, Decimal(1))
    assert any({m: r.contract_weights.get(m) for m in MICRO_ROOTS} == as_lots for r in capped)
    assert all(r.flatten_at for r in rules.values() if r.max_loss)
    assert any(r.blackout is BlackoutMode.FLATTEN for r in rules.values())
