"""A scenario's engine setup (SCENARIOS.md): a follower's copy mode (SEMANTICS S8.1) and the
engine timings of ``[settings]`` (S2.9 ``max_copy_age``, S8.4 ``mirror_grace``), read, checked
with their place, and reaching the engine the harness builds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine.domain.copying import CopyMode
from engine.replay.harness import Harness
from engine.replay.scenario import (
    AddFollowerStep,
    FollowerSpec,
    Scenario,
    ScenarioError,
    ScenarioSettings,
    parse_scenario,
)

FILE = "setup.toml"

SETUP = """\
name = "copy modes"

[[connection]]
id = "lead"

[[connection]]
id = "f"

[[account]]
id = "LEAD"
connection = "lead"

[[account]]
id = "F1"
connection = "f"

[[account]]
id = "F2"
connection = "f"

[[account]]
id = "F3"
connection = "f"

[[group]]
id = "g1"
leader = "LEAD"
followers = [{ account = "F1", copy = "orders" }, { account = "F2" }]
"""


def parse(text: str) -> Scenario:
    return parse_scenario(text, FILE)


def errors(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse(text)
    return [f"{e.place}: {e.problem}" for e in info.value.errors]


def test_copy_mode_of_a_follower_defaults_to_fills() -> None:
    text = SETUP + '\n[[step]]\nadd_follower = { group = "g1", account = "F3", copy = "orders" }\n'
    scenario = parse(text)
    assert [f.copy for f in scenario.groups[0].followers] == [CopyMode.ORDERS, CopyMode.FILLS]
    assert scenario.steps[0].value == AddFollowerStep(
        "g1", FollowerSpec("F3", copy=CopyMode.ORDERS)
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            SETUP.replace('copy = "orders"', 'copy = "all"'),
            '[[group]] 1 (g1): followers[1].copy: must be one of "fills", "orders", not "all"',
        ),
        (
            SETUP.replace('copy = "orders"', "copy = true"),
            "[[group]] 1 (g1): followers[1].copy: must be a string, not true",
        ),
        (
            SETUP + '\n[[step]]\nadd_follower = { group = "g1", account = "F3", copy = "" }\n',
            'step 1: add_follower.copy: must be one of "fills", "orders", not ""',
        ),
    ],
)
def test_invalid_copy_mode(text: str, expected: str) -> None:
    assert errors(text) == [expected]


def test_settings_default_to_the_semantics_values() -> None:
    assert parse(SETUP).settings == ScenarioSettings(timedelta(seconds=10), timedelta(seconds=2))


def test_settings_are_read() -> None:
    scenario = parse(SETUP + '\n[settings]\nmax_copy_age = "1m"\nmirror_grace = "5s"\n')
    assert scenario.settings == ScenarioSettings(timedelta(minutes=1), timedelta(seconds=5))
    only = parse(SETUP + '\n[settings]\nmirror_grace = "3s"\n').settings
    assert only == ScenarioSettings(mirror_grace=timedelta(seconds=3))


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            'mirror_grace = "2"',
            "[settings]: mirror_grace: must be a positive whole number followed by s, m, h or d "
            '("90s", "45m", "2h", "3d"), not "2"',
        ),
        (
            'max_copy_age = "0s"',
            "[settings]: max_copy_age: must be a positive whole number followed by s, m, h or d "
            '("90s", "45m", "2h", "3d"), not "0s"',
        ),
        (
            'drift_grace = "soon"',
            "[settings]: drift_grace: must be a positive whole number followed by s, m, h or d "
            '("90s", "45m", "2h", "3d"), not "soon"',
        ),
        (
            'drift = "5s"',
            "[settings]: drift: unknown key 'drift' (expected one of: max_copy_age, "
            "mirror_grace, drift_grace, drift_check, copy_fill_timeout, stale_prices_after)",
        ),
    ],
)
def test_invalid_settings(settings: str, expected: str) -> None:
    assert errors(f"{SETUP}\n[settings]\n{settings}\n") == [expected]


def test_settings_not_a_table() -> None:
    assert errors("settings = 3\n" + SETUP) == ["[settings]: must be a table, not 3"]


def test_settings_and_copy_modes_reach_the_engine_and_survive_a_restart(tmp_path: Path) -> None:
    steps = (
        '[[step]]\nadd_follower = { group = "g1", account = "F3", copy = "orders" }\n'
        "[[step]]\nrestart = true\n"
    )
    settings = '[settings]\nmax_copy_age = "4s"\nmirror_grace = "7s"\n'
    harness = Harness(parse(f"{SETUP}\n{settings}\n{steps}"), "deterministic", tmp_path)
    try:
        harness.setup()
        harness.run()
        assert harness.engine.settings.max_copy_age == timedelta(seconds=4)
        assert harness.engine.settings.mirror_grace == timedelta(seconds=7)
        members = harness.engine.topology_snapshot().groups["g1"].members
        assert {m.account: m.copy for m in members} == {
            "F1": CopyMode.ORDERS,
            "F2": CopyMode.FILLS,
            "F3": CopyMode.ORDERS,
        }
    finally:
        harness.close()
