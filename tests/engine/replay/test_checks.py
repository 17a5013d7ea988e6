"""The S9 expectations compared against the real engine (SCENARIOS.md): ``threshold`` (SEMANTICS
S9.3) and ``commissions`` (S9.1) within 0.005, a number expected of an account without
``max_loss`` a failed check, the S9 lock reasons; the report's ``final`` carrying both figures
where an account has them; and the file's risk keys and blackouts reaching the engine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.sessions import Blackout
from engine.replay.harness import Harness, ScenarioResult, run_scenario
from engine.replay.scenario import parse_scenario

CT = timezone(timedelta(hours=-6))
SETUP = """\
name = "S9 checks"

[[connection]]
id = "c"

[[account]]
id = "A"
connection = "c"
risk = { max_loss = 2000, commission = 2.5 }

[[account]]
id = "B"
connection = "c"

[[step]]
price = { symbol = "ESZ6", last = 5000 }

[[step]]
trade = { account = "A", symbol = "ESZ6", side = "buy", qty = 2 }
"""


def run(*steps: str, runtime: str = "deterministic") -> ScenarioResult:
    text = SETUP + "".join(f"\n[[step]]\n{step}\n" for step in steps)
    return run_scenario(parse_scenario(text, "checks.toml"), runtime)


def failures(result: ScenarioResult) -> list[tuple[int, str, object, object]]:
    return [(f.step, f.check, f.expected, f.actual) for f in result.failures]


@pytest.mark.parametrize("runtime", ["deterministic", "threads"])
def test_threshold_and_commissions_pass_within_half_a_cent(runtime: str) -> None:
    """S9.3 static: start_balance 50000 - max_loss 2000; S9.1: 2 contracts x 2.50."""
    result = run(
        'expect = { account = "A", threshold = 48000, commissions = 5 }',
        'expect = { account = "A", threshold = 48000.005, commissions = 4.995 }',
        runtime=runtime,
    )
    assert failures(result) == []


def test_threshold_and_commissions_fail_beyond_half_a_cent() -> None:
    result = run(
        'expect = { account = "A", threshold = 48000.006, commissions = 5.006 }',
        'expect = { account = "A", commissions = 4.994 }',
    )
    assert failures(result) == [
        (3, "A.threshold", 48000.006, 48000.0),
        (3, "A.commissions", 5.006, 5.0),
        (4, "A.commissions", 4.994, 5.0),
    ]


def test_an_account_without_max_loss_has_no_threshold_to_match() -> None:
    """S9.3: an account without max_loss has none: any number expected there fails."""
    result = run(
        'expect = { account = "B", threshold = 0 }',
        'expect = { account = "B", threshold = 50000, commissions = 0 }',
    )
    assert failures(result) == [(3, "B.threshold", 0.0, None), (4, "B.threshold", 50000.0, None)]


def test_the_s9_lock_reasons_are_compared() -> None:
    """S9.3: a threshold set at the account's equity (60000 - 10000) breaches at once with
    risk_breach_account; nothing else matches it."""
    result = run(
        'set_risk = { account = "B", max_loss = 10000, start_balance = 60000 }',
        'expect = { account = "B", status = "LOCKED", lock_reason = "risk_breach_account" }',
        'expect = { account = "B", lock_reason = "session_close" }',
    )
    assert failures(result) == [(5, "B.lock_reason", "session_close", "risk_breach_account")]


def test_the_final_report_has_the_threshold_and_commissions_where_an_account_has_them() -> None:
    final = run().final["accounts"]
    assert final["A"]["threshold"] == 48000.0
    assert final["A"]["commissions"] == 5.0
    assert "threshold" not in final["B"]
    assert "commissions" not in final["B"]


def test_risk_keys_and_blackouts_reach_the_engine_and_survive_a_restart(tmp_path: Path) -> None:
    """The setup's keys and ``[[blackout]]`` entries are the engine's first start; ``set_risk``
    and the ``blackout`` step are commands, kept in the store like every other."""
    text = (
        SETUP
        + """
[[blackout]]
start = 2026-01-05T10:00:00-06:00
end = 2026-01-05T10:30:00-06:00
label = "CPI"

[[step]]
set_risk = { account = "B", commissions = { ES = 2.1 }, flatten_at = "15:10", max_loss_stop = 0 }

[[step]]
blackout = { start = 2026-01-06T09:00:00-06:00, end = 2026-01-06T09:15:00-06:00, label = "FOMC" }

[[step]]
restart = true
"""
    )
    harness = Harness(parse_scenario(text, "keys.toml"), "deterministic", tmp_path)
    try:
        harness.setup()
        harness.run()
        engine = harness.engine
        assert engine.account("A").limits == {
            "max_loss": Decimal(2000),
            "commission": Decimal("2.5"),
        }
        assert engine.account("B").limits == {
            "commissions": {"ES": Decimal("2.1")},
            "flatten_at": "15:10",
            "max_loss_stop": Decimal(0),
        }
        assert engine.blackouts() == [
            Blackout(
                datetime(2026, 1, 5, 10, tzinfo=CT), datetime(2026, 1, 5, 10, 30, tzinfo=CT), "CPI"
            ),
            Blackout(
                datetime(2026, 1, 6, 9, tzinfo=CT), datetime(2026, 1, 6, 9, 15, tzinfo=CT), "FOMC"
            ),
        ]
    finally:
        harness.close()
