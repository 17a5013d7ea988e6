"""The harness plays an owner's working orders (SCENARIOS.md steps ``order``, ``oco``, ``modify``,
``cancel``) at the paper broker, which works them per SEMANTICS S8.10, and reads them back with
the ``working`` expectation. The account is a leader with a follower copying fills (S8.1's
default): the leader's orders filling are fills like any other (S2.1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.replay.harness import ScenarioResult, check_supported, run_scenario
from engine.replay.scenario import parse_scenario
from tests.engine.engine_process import ROOT

SETUP = """\
name = "{name}"

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

[[group]]
id = "g1"
leader = "LEAD"
followers = [{{ account = "F1" }}]

[[step]]
price = {{ symbol = "ESZ6", last = 5000 }}
"""

RUNTIMES = ("deterministic", "threads")


def scenario_text(name: str, *steps: str) -> str:
    return SETUP.format(name=name) + "".join(f"\n[[step]]\n{step}\n" for step in steps)


def run(text: str, runtime: str = "deterministic") -> ScenarioResult:
    scenario = parse_scenario(text, "owner.toml")
    check_supported(scenario)
    return run_scenario(scenario, runtime)


def failures(result: ScenarioResult) -> list[tuple[int, str, object, object]]:
    return [(f.step, f.check, f.expected, f.actual) for f in result.failures]


def price(last: float) -> str:
    return f'price = {{ symbol = "ESZ6", last = {last} }}'


def working(*orders: str, account: str = "LEAD") -> str:
    return f'expect = {{ account = "{account}", symbol = "ESZ6", working = [{", ".join(orders)}] }}'


def expect(account: str, checks: str) -> str:
    return f'expect = {{ account = "{account}", {checks} }}'


BRACKET = (
    'order = { account = "LEAD", id = "B1", symbol = "ESZ6", side = "buy", qty = 2, '
    'type = "limit", price = 4990, bracket = { stop = 4980, target = 5010 } }'
)
ENTRY = '{ side = "buy", type = "limit", qty = 2, price = 4990 }'


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_s8_10_a_bracket_works_its_legs_once_its_entry_fills(runtime: str) -> None:
    result = run(
        scenario_text(
            "bracket",
            BRACKET,
            working(ENTRY),  # the legs are not working before the entry fills
            price(4995),
            working(ENTRY),
            expect("LEAD", 'flat = true, symbol = "ESZ6", working = [' + ENTRY + "]"),
            price(4990),  # a buy limit fills at its price
            working(
                '{ side = "sell", type = "stop", qty = 2, stop = 4980 }',
                '{ side = "sell", type = "limit", qty = 2, price = 5010 }',
            ),
            expect("LEAD", 'position = 2, symbol = "ESZ6"'),
            expect("F1", 'position = 2, symbol = "ESZ6", orders_sent = 1'),
            price(5010),  # the target fills, which cancels its OCO sibling
            working(),
            expect("LEAD", "flat = true, realized_daily = 2000, orders_sent = 0"),
            expect("F1", "flat = true, orders_sent = 2"),
        ),
        runtime,
    )
    assert failures(result) == []
    assert "working" not in result.final["accounts"]["LEAD"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_s8_10_modify_and_cancel_an_entry_and_its_legs(runtime: str) -> None:
    result = run(
        scenario_text(
            "modify and cancel",
            BRACKET,
            'modify = { account = "LEAD", order = "B1", price = 4985, qty = 1 }',
            working('{ side = "buy", type = "limit", qty = 1, price = 4985 }'),
            price(4985),
            'modify = { account = "LEAD", order = "B1.stop", stop = 4975 }',
            'modify = { account = "LEAD", order = "B1.target", price = 5020 }',
            working(
                '{ side = "sell", type = "stop", qty = 1, stop = 4975 }',
                '{ side = "sell", type = "limit", qty = 1, price = 5020 }',
            ),
            'cancel = { account = "LEAD", order = "B1.target" }',  # ends its sibling too
            working(),
            price(4970),  # no stop left to trigger
            expect("LEAD", 'position = 1, symbol = "ESZ6", daily_pnl = -750'),
        ),
        runtime,
    )
    assert failures(result) == []


def test_s8_10_cancelling_an_entry_cancels_its_legs_and_a_stop_limit_shows_both_prices() -> None:
    stop_limit = (
        'order = { account = "LEAD", id = "SL", symbol = "ESZ6", side = "sell", qty = 1, '
        'type = "stop_limit", stop = 4970, price = 4969 }'
    )
    result = run(
        scenario_text(
            "cancel an entry",
            BRACKET,
            stop_limit,
            working(
                ENTRY, '{ side = "sell", type = "stop_limit", qty = 1, stop = 4970, price = 4969 }'
            ),
            'cancel = { account = "LEAD", order = "B1" }',
            'modify = { account = "LEAD", order = "SL", stop = 4960, price = 4959 }',
            working('{ side = "sell", type = "stop_limit", qty = 1, stop = 4960, price = 4959 }'),
            price(4980),  # the cancelled entry does not fill
            expect("LEAD", "flat = true"),
        )
    )
    assert failures(result) == []
    assert result.final["accounts"]["LEAD"]["working"] == [
        {"symbol": "ESZ6", "side": "sell", "type": "stop_limit", "qty": 1, "price": 4959.0,
         "stop": 4960.0},
    ]  # fmt: skip


OCO = (
    'oco = { account = "LEAD", id = "P1", symbol = "ESZ6", side = "sell", qty = 2, '
    "stop = 4980, target = 5020 }"
)
OCO_LEGS = (
    '{ side = "sell", type = "stop", qty = 2, stop = 4980 }',
    '{ side = "sell", type = "limit", qty = 2, price = 5020 }',
)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_s8_10_an_oco_pair_protects_a_position_and_its_stop_fill_cancels_the_target(
    runtime: str,
) -> None:
    result = run(
        scenario_text(
            "oco",
            'trade = { account = "LEAD", symbol = "ESZ6", side = "buy", qty = 2 }',
            OCO,
            working(*OCO_LEGS),
            'modify = { account = "LEAD", order = "P1.stop", stop = 4985 }',
            price(4986),
            working('{ side = "sell", type = "stop", qty = 2, stop = 4985 }', OCO_LEGS[1]),
            price(4985),  # a sell stop triggers at last <= stop and fills at last
            working(),
            expect("LEAD", "flat = true, realized_daily = -1500"),
            expect("F1", "flat = true, orders_sent = 2"),
        ),
        runtime,
    )
    assert failures(result) == []


def test_cancelling_an_oco_pair_by_its_id_cancels_both_orders() -> None:
    result = run(
        scenario_text(
            "cancel a pair",
            'trade = { account = "LEAD", symbol = "ESZ6", side = "buy", qty = 2 }',
            OCO,
            'cancel = { account = "LEAD", order = "P1" }',
            working(),
            price(4900),
            expect("LEAD", 'position = 2, symbol = "ESZ6"'),
        )
    )
    assert failures(result) == []


def test_a_step_on_an_order_no_longer_working_is_a_failure_and_the_run_goes_on() -> None:
    result = run(
        scenario_text(
            "gone",
            BRACKET,
            'cancel = { account = "LEAD", order = "B1" }',
            'modify = { account = "LEAD", order = "B1", price = 4991 }',
            'cancel = { account = "LEAD", order = "B1.stop" }',
            working(),
        )
    )
    assert [(f.step, f.check, f.expected) for f in result.failures] == [
        (4, "modify", "accepted by the broker"),
        (5, "cancel", "accepted by the broker"),
    ]
    assert all(isinstance(f.actual, str) and f.actual for f in result.failures)
    assert "Traceback" not in repr(result.failures)


def test_a_working_expectation_that_does_not_hold_is_reported_with_what_works() -> None:
    result = run(
        scenario_text(
            "wrong",
            BRACKET,
            working('{ side = "buy", type = "limit", qty = 2, price = 4995 }'),
            working(),
            working(ENTRY, account="F1"),
        )
    )
    actual = [{"side": "buy", "type": "limit", "qty": 2, "price": 4990.0}]
    assert failures(result) == [
        (3, "LEAD.working[ESZ6]", [{"side": "buy", "type": "limit", "qty": 2, "price": 4995.0}],
         actual),
        (4, "LEAD.working[ESZ6]", [], actual),
        (5, "F1.working[ESZ6]", actual, []),
    ]  # fmt: skip


def test_owner_orders_on_a_tradovate_sim_account_go_to_the_local_tradovate_server() -> None:
    """The same steps on a ``tradovate-sim`` connection place, work and list the owner's
    bracket at the local Tradovate server (through its owner calls), as at the paper broker."""
    text = scenario_text(
        "sim",
        BRACKET,
        working(ENTRY),
        price(4990),
        expect("LEAD", 'symbol = "ESZ6", position = 2'),
        working(
            '{ side = "sell", type = "stop", qty = 2, stop = 4980 }',
            '{ side = "sell", type = "limit", qty = 2, price = 5010 }',
        ),
        'cancel = { account = "LEAD", order = "B1.stop" }',
        working(),
    ).replace('id = "lead"\n', 'id = "lead"\nbroker = "tradovate-sim"\n', 1)
    result = run(text)
    assert failures(result) == []


def test_the_report_through_the_command_shows_failed_steps_and_working_orders(
    tmp_path: Path,
) -> None:
    path = tmp_path / "owner.toml"
    path.write_text(
        scenario_text(
            "through the command",
            BRACKET,
            'cancel = { account = "LEAD", order = "B1" }',
            'cancel = { account = "LEAD", order = "B1" }',
            OCO.replace("qty = 2", "qty = 1"),
        )
    )
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "engine", "replay", str(path), "--json", str(report)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "FAIL through the command"
    assert lines[1].startswith("  step 4: cancel: expected 'accepted by the broker', got ")
    assert lines[-1] == "0 passed, 1 failed"
    (entry,) = json.loads(report.read_text())
    assert [(f["step"], f["check"]) for f in entry["failures"]] == [(4, "cancel")]
    assert entry["final"]["accounts"]["LEAD"]["working"] == [
        {"symbol": "ESZ6", "side": "sell", "type": "limit", "qty": 1, "price": 5020.0},
        {"symbol": "ESZ6", "side": "sell", "type": "stop", "qty": 1, "stop": 4980.0},
    ]
    assert "working" not in entry["final"]["accounts"]["F1"]
