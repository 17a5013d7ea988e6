"""A scenario's risk keys and blackouts (SCENARIOS.md): every key of SEMANTICS S5.2 and S9 in an
``[[account]]``'s ``risk`` and in ``set_risk``, ``[[blackout]]`` entries and the ``blackout``
step (S9.5), and the S9 expectations ``threshold``, ``commissions`` and ``lock_reason`` — read,
and every bad one reported with its place and what it takes, the whole file at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from engine.domain.risk_profile import RISK_KEYS
from engine.domain.sessions import Blackout
from engine.replay.scenario import (
    Expectation,
    Scenario,
    ScenarioError,
    SetRiskStep,
    parse_scenario,
)

FILE = "risk.toml"
CT = timezone(timedelta(hours=-6))

SETUP = """\
name = "prop-firm keys"

[[connection]]
id = "c"

[[account]]
id = "A"
connection = "c"
"""

# Inline tables are one line in TOML: the keys, joined by ", ".
KEYS = (
    "daily_loss_limit = 1000",
    "daily_profit_target = 3000.5",
    "trailing_drawdown = 0",
    "weekly_loss_limit = 3000",
    "weekly_profit_target = 6000",
    "commission = 2.10",
    "commissions = { ES = 2.5, MES = 0.6 }",
    "max_contracts = 2.5",
    "contract_weights = { MES = 0.2 }",
    "max_loss = 2000",
    'max_loss_mode = "eod_trailing"',
    "max_loss_stop = 0",
    "start_balance = 50000",
    'flatten_at = "15:10"',
    'blackout = "flatten"',
    "consistency_pct = 30",
)
EVERY_KEY = f"risk = {{ {', '.join(KEYS)} }}\n"

EVERY_VALUE = {
    "daily_loss_limit": Decimal(1000),
    "daily_profit_target": Decimal("3000.5"),
    "trailing_drawdown": Decimal(0),
    "weekly_loss_limit": Decimal(3000),
    "weekly_profit_target": Decimal(6000),
    "commission": Decimal("2.10"),
    "commissions": {"ES": Decimal("2.5"), "MES": Decimal("0.6")},
    "max_contracts": Decimal("2.5"),
    "contract_weights": {"MES": Decimal("0.2")},
    "max_loss": Decimal(2000),
    "max_loss_mode": "eod_trailing",
    "max_loss_stop": Decimal(0),
    "start_balance": Decimal(50000),
    "flatten_at": "15:10",
    "blackout": "flatten",
    "consistency_pct": Decimal(30),
}


def parse(text: str) -> Scenario:
    return parse_scenario(text, FILE)


def errors(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse(text)
    assert all(str(e).startswith(f"{FILE}: ") for e in info.value.errors)
    return [f"{e.place}: {e.problem}" for e in info.value.errors]


def step(*lines: str) -> str:
    return SETUP + "".join(f"\n[[step]]\n{line}\n" for line in lines)


# --- the risk table of an account ---------------------------------------------------------------


def test_every_key_the_semantics_names_is_taken_in_an_account() -> None:
    """S5.2 and S9.1-S9.6: all sixteen keys, each value as the engine keeps it."""
    assert set(EVERY_VALUE) == set(RISK_KEYS)
    scenario = parse(SETUP + EVERY_KEY)
    assert scenario.accounts[0].risk == EVERY_VALUE


def test_off_words_and_integers() -> None:
    """S9.3: "off" removes max_loss_stop (0 is a value); S9.4's flatten_at may be "off" too."""
    text = SETUP + 'risk = { max_loss_stop = "off", flatten_at = "off", max_contracts = 2 }\n'
    assert parse(text).accounts[0].risk == {
        "max_loss_stop": "off",
        "flatten_at": "off",
        "max_contracts": Decimal(2),
    }


@pytest.mark.parametrize(
    ("risk", "expected"),
    [
        (
            "daily_loss = 5",
            "[[account]] 1 (A): risk.daily_loss: unknown key 'daily_loss' (expected one of: "
            + ", ".join(RISK_KEYS)
            + ")",
        ),
        (
            "max_loss = -1",
            "[[account]] 1 (A): risk.max_loss: must be an amount >= 0 (0 turns it off), not -1",
        ),
        (
            'max_loss_mode = "trailing"',
            "[[account]] 1 (A): risk.max_loss_mode: must be one of: static, intraday_trailing, "
            'eod_trailing, not "trailing"',
        ),
        (
            'max_loss_stop = "none"',
            "[[account]] 1 (A): risk.max_loss_stop: must be an amount >= 0 (0 is a value: "
            'trailing stops at the start balance) or "off", not "none"',
        ),
        (
            "start_balance = 0",
            "[[account]] 1 (A): risk.start_balance: must be an amount > 0, not 0",
        ),
        (
            'flatten_at = "17:30"',
            '[[account]] 1 (A): risk.flatten_at: must be a time of day "HH:MM" before 17:00 '
            '(America/Chicago), or "off", not "17:30"',
        ),
        (
            "flatten_at = 15:10:00",
            '[[account]] 1 (A): risk.flatten_at: must be a time of day "HH:MM" before 17:00 '
            '(America/Chicago), or "off", not 15:10:00',
        ),
        (
            'blackout = "on"',
            '[[account]] 1 (A): risk.blackout: must be one of: off, block, flatten, not "on"',
        ),
        (
            "consistency_pct = 101",
            "[[account]] 1 (A): risk.consistency_pct: must be a percentage between 0 and 100 "
            "(0 turns it off), not 101",
        ),
        (
            "commission = true",
            "[[account]] 1 (A): risk.commission: must be an amount >= 0 (0 turns it off), not true",
        ),
        (
            "commissions = 2",
            "[[account]] 1 (A): risk.commissions: must be a table, not 2",
        ),
        (
            "commissions = { ES = -1 }",
            "[[account]] 1 (A): risk.commissions.ES: must be an amount >= 0, not -1",
        ),
        (
            "commissions = { es = 1 }",
            '[[account]] 1 (A): risk.commissions.es: "es" is not an instrument root '
            "(upper-case letters and digits, such as ES or MES)",
        ),
        (
            "contract_weights = { MES = 0 }",
            "[[account]] 1 (A): risk.contract_weights.MES: must be a weight > 0, not 0",
        ),
        (
            "max_contracts = nan",
            "[[account]] 1 (A): risk.max_contracts: must be a number of contracts >= 0 "
            "(0 turns it off; 2.5 allowed), not NaN",
        ),
    ],
)
def test_a_bad_key_or_value_is_reported_at_its_place(risk: str, expected: str) -> None:
    assert errors(f"{SETUP}risk = {{ {risk} }}\n") == [expected]


def test_every_bad_value_of_a_table_is_reported_at_once() -> None:
    text = (
        SETUP
        + "risk = { max_loss = -1, commissions = { ES = -1, MES = true }, consistency_pct = 0 }\n"
    )
    assert errors(text) == [
        "[[account]] 1 (A): risk.max_loss: must be an amount >= 0 (0 turns it off), not -1",
        "[[account]] 1 (A): risk.commissions.ES: must be an amount >= 0, not -1",
        "[[account]] 1 (A): risk.commissions.MES: must be an amount >= 0, not true",
    ]


# --- set_risk -------------------------------------------------------------------------------


def test_set_risk_takes_every_key_sorted_by_name() -> None:
    scenario = parse(step(f'set_risk = {{ account = "A", {", ".join(KEYS)} }}'))
    assert scenario.steps[0].value == SetRiskStep("A", tuple(sorted(EVERY_VALUE.items())))


def test_set_risk_zero_turns_a_limit_off_and_off_removes_the_stop() -> None:
    """S5.2 / S9.3: the values are passed as given; 0 and "off" mean what the engine says."""
    scenario = parse(step('set_risk = { account = "A", max_loss = 0, max_loss_stop = "off" }'))
    assert scenario.steps[0].value == SetRiskStep(
        "A", (("max_loss", Decimal(0)), ("max_loss_stop", "off"))
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'set_risk = { account = "A" }',
            ["step 1: set_risk: names no limit (any of: " + ", ".join(RISK_KEYS) + ")"],
        ),
        (
            'set_risk = { account = "A", max_loss_mode = "static", colour = 1 }',
            [
                "step 1: set_risk.colour: unknown key 'colour' (expected one of: account, "
                + ", ".join(RISK_KEYS)
                + ")"
            ],
        ),
        (
            'set_risk = { account = "B", flatten_at = "25:00", max_contracts = -2 }',
            [
                'step 1: set_risk.account: "B" is not a declared account',
                'step 1: set_risk.flatten_at: must be a time of day "HH:MM" before 17:00 '
                '(America/Chicago), or "off", not "25:00"',
                "step 1: set_risk.max_contracts: must be a number of contracts >= 0 "
                "(0 turns it off; 2.5 allowed), not -2",
            ],
        ),
        (
            'set_risk = { account = "A", contract_weights = { MES = -0.1, M2K = 0.5 } }',
            ["step 1: set_risk.contract_weights.MES: must be a weight > 0, not -0.1"],
        ),
    ],
)
def test_set_risk_errors(line: str, expected: list[str]) -> None:
    assert errors(step(line)) == expected


# --- blackouts ------------------------------------------------------------------------------

BLACKOUTS = """
[[blackout]]
start = 2026-01-05T07:29:00-06:00
end = 2026-01-05T07:45:00-06:00
label = "CPI"

[[blackout]]
start = 2026-01-05T13:00:00Z
end = 2026-01-05T13:30:00Z
label = "CPI"
"""


def test_blackout_entries_and_the_blackout_step() -> None:
    """S9.5: offset datetimes, a label that may repeat; the step adds one more interval."""
    line = (
        "blackout = { start = 2026-01-06T09:00:00-06:00, end = 2026-01-06T09:15:00-06:00, "
        'label = "FOMC" }'
    )
    scenario = parse(step(line) + BLACKOUTS)
    assert scenario.blackouts == (
        Blackout(
            datetime(2026, 1, 5, 7, 29, tzinfo=CT), datetime(2026, 1, 5, 7, 45, tzinfo=CT), "CPI"
        ),
        Blackout(
            datetime(2026, 1, 5, 13, 0, tzinfo=UTC),
            datetime(2026, 1, 5, 13, 30, tzinfo=UTC),
            "CPI",
        ),
    )
    assert scenario.steps[0].value == Blackout(
        datetime(2026, 1, 6, 9, 0, tzinfo=CT), datetime(2026, 1, 6, 9, 15, tzinfo=CT), "FOMC"
    )
    assert parse(SETUP).blackouts == ()


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            'start = 2026-01-05T07:29:00-06:00\nend = 2026-01-05T07:45:00-06:00\nlabel = "CPI"\n'
            "kind = 1",
            ["[[blackout]] 1 (CPI): kind: unknown key 'kind' (expected one of: start, end, label)"],
        ),
        (
            "start = 2026-01-05T07:29:00-06:00\nend = 2026-01-05T07:45:00-06:00",
            ["[[blackout]] 1: label: required key is missing"],
        ),
        (
            'start = 2026-01-05T07:29:00\nend = 2026-01-05\nlabel = ""',
            [
                "[[blackout]] 1: start: must be an offset datetime such as "
                "2026-01-05T09:00:00-06:00, not 2026-01-05T07:29:00",
                "[[blackout]] 1: end: must be an offset datetime such as "
                "2026-01-05T09:00:00-06:00, not 2026-01-05",
                "[[blackout]] 1: label: must not be empty",
            ],
        ),
        (
            'start = 2026-01-05T07:45:00-06:00\nend = 2026-01-05T13:45:00Z\nlabel = "CPI"',
            [
                "[[blackout]] 1 (CPI): end: 2026-01-05T13:45:00+00:00 must be after start "
                "2026-01-05T07:45:00-06:00"
            ],
        ),
    ],
)
def test_a_bad_blackout_entry_is_reported_at_its_place(entry: str, expected: list[str]) -> None:
    assert errors(f"{SETUP}\n[[blackout]]\n{entry}\n") == expected


def test_the_same_interval_twice_is_invalid_whatever_its_offsets() -> None:
    """Two entries of one interval would be one blackout declared twice (the engine refuses
    the second); the same label on another interval is fine."""
    again = BLACKOUTS.split("[[blackout]]")[1].replace("label", "# the same\nlabel")
    assert errors(step() + BLACKOUTS + "\n[[blackout]]" + again) == [
        "[[blackout]] 3 (CPI): is the same interval as [[blackout]] 1"
    ]
    in_utc = BLACKOUTS.replace("13:00:00Z", "07:29:00-06:00").replace("13:30:00Z", "13:45:00Z")
    assert errors(step() + in_utc) == [
        "[[blackout]] 2 (CPI): is the same interval as [[blackout]] 1"
    ]


def test_blackout_errors_in_a_step_and_a_header_that_is_not_a_list() -> None:
    line = "blackout = { start = 2026-01-06T09:00:00-06:00, end = 2026-01-06T09:00:00-06:00 }"
    assert errors(step(line, 'blackout = "CPI"')) == [
        "step 1: blackout.label: required key is missing",
        'step 2: blackout: must be a table, not "CPI"',
    ]
    assert errors('blackout = "CPI"\n' + SETUP) == [
        "blackout: must be an array of tables ([[blackout]])"
    ]


# --- the S9 expectations --------------------------------------------------------------------


def test_threshold_commissions_and_the_s9_lock_reasons_are_checks_of_an_account() -> None:
    """S9.3's threshold, S9.1's commissions, S9.4's and S9.3's lock reasons."""
    scenario = parse(
        step(
            'expect = { account = "A", threshold = 48000, commissions = 4.2 }',
            'expect = { account = "A", lock_reason = "session_close" }',
            'expect = { account = "A", lock_reason = "risk_breach_account" }',
        )
    )
    assert [s.value for s in scenario.steps] == [
        Expectation(
            "account", "A", (("threshold", Decimal(48000)), ("commissions", Decimal("4.2")))
        ),
        Expectation("account", "A", (("lock_reason", "session_close"),)),
        Expectation("account", "A", (("lock_reason", "risk_breach_account"),)),
    ]


def test_bad_s9_expectations() -> None:
    assert errors(
        step(
            'expect = { account = "A", threshold = "none" }',
            'expect = { account = "A", commissions = true }',
            'expect = { account = "A", lock_reason = "risk_breach_session" }',
            'expect = { connection = "c", threshold = 1 }',
        )
    ) == [
        'step 1: expect.threshold: must be a number, not "none"',
        "step 2: expect.commissions: must be a number, not true",
        'step 3: expect.lock_reason: must be one of "session_close", "risk_breach_daily", '
        '"risk_breach_weekly", "risk_breach_account", "manual", "", not "risk_breach_session"',
        "step 4: expect.threshold: 'threshold' is not a key a connection expectation has "
        "(it has: state, exists)",
    ]
