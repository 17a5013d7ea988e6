"""Scenario files: every way SCENARIOS.md says a file is invalid, the defaults, and a fuzz test."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brokers.tradovate.sim.replay import SimBridge
from engine.replay import cli as replay_cli
from engine.replay.harness import check_supported
from engine.replay.scenario import (
    AccountSpec,
    AddFollowerStep,
    ConnectionSpec,
    CrashStep,
    Expectation,
    FailSnapshotStep,
    FollowerSpec,
    GroupSpec,
    InstrumentSpec,
    PriceStep,
    RejectNextStep,
    RemoveFollowerStep,
    Scenario,
    ScenarioError,
    SetRiskStep,
    TradeStep,
    collect_paths,
    load_scenario,
    parse_scenario,
)

FILE = "s.toml"

# A small valid setup; tests append steps or swap pieces out.
SETUP = """\
name = "base"

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

[[group]]
id = "g1"
leader = "LEAD"
followers = [{ account = "F1" }]
"""


def parse(text: str) -> Scenario:
    return parse_scenario(text, FILE)


def invalid(text: str, place: str, problem: str) -> ScenarioError:
    """Parse ``text``, expecting an error at ``place`` whose problem contains ``problem``."""
    with pytest.raises(ScenarioError) as info:
        parse(text)
    error = info.value
    assert error.file == FILE
    assert error.place == place, str(error)
    assert problem in error.problem, str(error)
    assert str(error) == f"{FILE}: {place}: {error.problem}"
    return error


def step(line: str) -> str:
    """The setup plus one ``[[step]]`` holding ``line``."""
    return f"{SETUP}\n[[step]]\n{line}\n"


# --- every case of "a file is invalid when" -------------------------------------------------


def test_not_toml() -> None:
    text = 'name = "x"\nprice = = 3\n'
    error = invalid(text, "line 2, column 9", "not valid TOML: Invalid value")
    assert "Traceback" not in str(error)


def test_unknown_key_at_top_level() -> None:
    invalid('colour = "red"\n' + SETUP, "colour", "unknown key")


@pytest.mark.parametrize(
    ("text", "place"),
    [
        (
            SETUP + '[[instrument]]\nroot = "ZN"\npoint_value = 1000\ntick_size = 0.5\nfoo = 1\n',
            "[[instrument]] 1 (ZN): foo",
        ),
        (SETUP + '[[connection]]\nid = "c3"\nkind = "x"\n', "[[connection]] 3 (c3): kind"),
        (SETUP + '[[account]]\nid = "A"\nconnection = "f"\nbal = 1\n', "[[account]] 4 (A): bal"),
        (
            SETUP + '[[account]]\nid = "A"\nconnection = "f"\nrisk = { daily_loss = 5 }\n',
            "[[account]] 4 (A): risk.daily_loss",
        ),
        (SETUP.replace('leader = "LEAD"', 'leader = "LEAD"\nname = "x"'), "[[group]] 1 (g1): name"),
        (
            SETUP.replace('{ account = "F1" }', '{ account = "F1", ration = 2 }'),
            "[[group]] 1 (g1): followers[1].ration",
        ),
        (step("pric = 5"), "step 1: pric"),
        (step('price = { symbol = "ESZ6", last = 5, size = 1 }'), "step 1: price.size"),
        (step('expect = { account = "F1", flat = true, colour = 1 }'), "step 1: expect.colour"),
    ],
)
def test_unknown_key_anywhere(text: str, place: str) -> None:
    invalid(text, place, "unknown key")


@pytest.mark.parametrize(
    ("text", "place"),
    [
        (SETUP.replace('name = "base"', ""), "name"),
        (
            SETUP + '[[instrument]]\nroot = "ZN"\npoint_value = 5\n',
            "[[instrument]] 1 (ZN): tick_size",
        ),
        (SETUP + '[[connection]]\nbroker = "paper"\n', "[[connection]] 3: id"),
        (SETUP + '[[account]]\nid = "A"\n', "[[account]] 4 (A): connection"),
        (SETUP + '[[group]]\nid = "g2"\n', "[[group]] 2 (g2): leader"),
        (
            SETUP.replace('{ account = "F1" }', "{ ratio = 2 }"),
            "[[group]] 1 (g1): followers[1].account",
        ),
        (step('trade = { account = "F1", symbol = "ESZ6", side = "buy" }'), "step 1: trade.qty"),
        (step('crash = { actor = "risk" }'), "step 1: crash.id"),
    ],
)
def test_required_key_missing(text: str, place: str) -> None:
    invalid(text, place, "required key is missing")


@pytest.mark.parametrize(
    ("text", "place", "problem"),
    [
        (SETUP + '[[connection]]\nid = "f"\n', "[[connection]] 3 (f): id", 'connection "f"'),
        (SETUP + '[[account]]\nid = "F1"\nconnection = "f"\n', "[[account]] 4 (F1): id", "F1"),
        (SETUP + '[[group]]\nid = "g1"\nleader = "F2"\n', "[[group]] 2 (g1): id", 'group "g1"'),
        (
            SETUP + '[[instrument]]\nroot = "ZN"\npoint_value = 1\ntick_size = 1\n' * 2,
            "[[instrument]] 2 (ZN): root",
            'instrument "ZN"',
        ),
    ],
)
def test_id_declared_twice(text: str, place: str, problem: str) -> None:
    invalid(text, place, problem)
    invalid(text, place, "declared twice")


@pytest.mark.parametrize(
    ("text", "place", "kind"),
    [
        (
            SETUP + '[[account]]\nid = "A"\nconnection = "nope"\n',
            "[[account]] 4 (A): connection",
            "connection",
        ),
        (SETUP.replace('leader = "LEAD"', 'leader = "X"'), "[[group]] 1 (g1): leader", "account"),
        (
            SETUP.replace('{ account = "F1" }', '{ account = "F9" }'),
            "[[group]] 1 (g1): followers[1].account",
            "account",
        ),
        (step('disconnect = "nope"'), "step 1: disconnect", "connection"),
        (step('hold = "lead2"'), "step 1: hold", "connection"),
        (step('flatten_account = "g1"'), "step 1: flatten_account", "account"),
        (step('flatten_group = "LEAD"'), "step 1: flatten_group", "group"),
        (step('lock = "X"'), "step 1: lock", "account"),
        (
            step('trade = { account = "X", symbol = "ESZ6", side = "buy", qty = 1 }'),
            "step 1: trade.account",
            "account",
        ),
        (
            step('set_risk = { account = "X", daily_loss_limit = 1 }'),
            "step 1: set_risk.account",
            "account",
        ),
        (
            step('add_follower = { group = "g9", account = "F2" }'),
            "step 1: add_follower.group",
            "group",
        ),
        (
            step('add_follower = { group = "g1", account = "F9" }'),
            "step 1: add_follower.account",
            "account",
        ),
        (
            step('remove_follower = { group = "g1", account = "F9" }'),
            "step 1: remove_follower.account",
            "account",
        ),
        (
            step('reject_next = { connection = "x" }'),
            "step 1: reject_next.connection",
            "connection",
        ),
        (
            step('fail_snapshot = { connection = "x" }'),
            "step 1: fail_snapshot.connection",
            "connection",
        ),
        (step('crash = { actor = "group", id = "F1" }'), "step 1: crash.id", "group"),
        (step('crash = { actor = "risk", id = "g1" }'), "step 1: crash.id", "account"),
        (
            step('expect = { connection = "F1", state = "connected" }'),
            "step 1: expect.connection",
            "connection",
        ),
        (
            step('expect = { group = "g1", followers = ["F1", "Z"] }'),
            "step 1: expect.followers[2]",
            "account",
        ),
    ],
)
def test_id_referenced_without_being_declared(text: str, place: str, kind: str) -> None:
    invalid(text, place, f"is not a declared {kind}")


def test_account_in_two_groups() -> None:
    text = SETUP + '[[group]]\nid = "g2"\nleader = "F2"\nfollowers = [{ account = "F1" }]\n'
    invalid(text, "[[group]] 2 (g2): followers[1].account", 'already in group "g1"')
    text = SETUP + '[[group]]\nid = "g2"\nleader = "F1"\n'
    invalid(text, "[[group]] 2 (g2): leader", 'already in group "g1"')
    text = SETUP.replace('{ account = "F1" }', '{ account = "F1" }, { account = "F1" }')
    invalid(text, "[[group]] 1 (g1): followers[2].account", "at most one group")


def test_account_follows_its_own_group() -> None:
    text = SETUP.replace('{ account = "F1" }', '{ account = "LEAD" }')
    invalid(text, "[[group]] 1 (g1): followers[1].account", "leads this group and cannot follow it")


@pytest.mark.parametrize("qty", ["0", "-1", "1.5", "2.0", '"2"', "true"])
def test_quantity_not_a_positive_integer(qty: str) -> None:
    text = step(f'trade = {{ account = "F1", symbol = "ESZ6", side = "buy", qty = {qty} }}')
    invalid(text, "step 1: trade.qty", "must be a positive integer")


@pytest.mark.parametrize(
    ("fills", "place", "problem"),
    [
        ("[1, 1]", "step 1: trade.fills", "must sum to qty 3, not to 2"),
        ("[1, 3]", "step 1: trade.fills", "must sum to qty 3, not to 4"),
        ("[]", "step 1: trade.fills", "must sum to qty 3, not to 0"),
        ("[3, 0]", "step 1: trade.fills[2]", "must be a positive integer"),
        ("[1.5, 1.5]", "step 1: trade.fills[1]", "must be a positive integer"),
        ("3", "step 1: trade.fills", "must be an array"),
    ],
)
def test_fills_not_positive_integers_summing_to_qty(fills: str, place: str, problem: str) -> None:
    line = f'trade = {{ account = "F1", symbol = "ESZ6", side = "buy", qty = 3, fills = {fills} }}'
    invalid(step(line), place, problem)


@pytest.mark.parametrize("ratio", ["0", "-1.5", "0.0", '"2"', "false", "nan", "inf"])
def test_ratio_not_positive(ratio: str) -> None:
    text = SETUP.replace('{ account = "F1" }', f'{{ account = "F1", ratio = {ratio} }}')
    error = invalid(text, "[[group]] 1 (g1): followers[1].ratio", "")
    assert any(word in error.problem for word in ("positive", "number"))
    text = step(f'add_follower = {{ group = "g1", account = "F2", ratio = {ratio} }}')
    invalid(text, "step 1: add_follower.ratio", error.problem)


@pytest.mark.parametrize("last", ["0", "-5000", "0.0", '"5000"', "true", "nan", "-inf"])
def test_price_not_positive(last: str) -> None:
    invalid(step(f'price = {{ symbol = "ESZ6", last = {last} }}'), "step 1: price.last", "")


@pytest.mark.parametrize("max_qty", ["0", "-2", "2.5", "3.0", '"3"'])
def test_max_qty_not_a_positive_integer(max_qty: str) -> None:
    text = SETUP.replace('{ account = "F1" }', f'{{ account = "F1", max_qty = {max_qty} }}')
    invalid(text, "[[group]] 1 (g1): followers[1].max_qty", "must be a positive integer")


@pytest.mark.parametrize(
    ("line", "place"),
    [
        ('price = { symbol = "ES", last = 1 }', "step 1: price.symbol"),
        ('price = { symbol = "ESZ", last = 1 }', "step 1: price.symbol"),
        ('price = { symbol = "esz6", last = 1 }', "step 1: price.symbol"),
        ('price = { symbol = "ESA6", last = 1 }', "step 1: price.symbol"),
        (
            'trade = { account = "F1", symbol = "ES Z6", side = "buy", qty = 1 }',
            "step 1: trade.symbol",
        ),
        ('expect = { account = "F1", position = 0, symbol = "6EZ6" }', "step 1: expect.symbol"),
    ],
)
def test_symbol_does_not_parse(line: str, place: str) -> None:
    invalid(step(line), place, "is not a futures symbol")


def test_symbol_root_not_in_contract_table() -> None:
    invalid(
        step('price = { symbol = "ZNZ6", last = 110 }'),
        "step 1: price.symbol",
        "not in the contract table",
    )
    text = SETUP.replace('{ account = "F1" }', '{ account = "F1", symbol_map = { ES = "XES" } }')
    invalid(
        text,
        "[[group]] 1 (g1): followers[1].symbol_map.ES",
        'root "XES" is not in the contract table',
    )
    text = SETUP.replace('{ account = "F1" }', '{ account = "F1", symbol_map = { ZB = "MES" } }')
    invalid(
        text, "[[group]] 1 (g1): followers[1].symbol_map", 'root "ZB" is not in the contract table'
    )
    # ... and an [[instrument]] entry adds the root.
    extra = '[[instrument]]\nroot = "ZN"\npoint_value = 1000\ntick_size = 0.015625\n'
    scenario = parse(step('price = { symbol = "ZNZ6", last = 110 }') + extra)
    assert scenario.steps[0].value == PriceStep("ZNZ6", Decimal(110))


def test_step_has_no_action_key() -> None:
    invalid(SETUP + "[[step]]\n", "step 1", "has no action key")


def test_step_has_more_than_one_action_key() -> None:
    text = step('advance = "1s"\nlock = "F1"')
    invalid(text, "step 1", "has more than one action key (advance, lock)")


def test_expect_names_no_subject() -> None:
    invalid(step("expect = { flat = true }"), "step 1: expect", "names no subject")


def test_expect_names_more_than_one_subject() -> None:
    line = 'expect = { account = "F1", group = "g1", exists = true }'
    invalid(step(line), "step 1: expect", "names more than one subject (account, group)")


@pytest.mark.parametrize(
    ("line", "place"),
    [
        ('expect = { connection = "f", status = "OK" }', "step 1: expect.status"),
        ('expect = { group = "g1", position = 1 }', "step 1: expect.position"),
        ('expect = { account = "F1", state = "connected" }', "step 1: expect.state"),
        ('expect = { account = "F1", followers = [] }', "step 1: expect.followers"),
    ],
)
def test_expect_key_its_subject_lacks(line: str, place: str) -> None:
    invalid(step(line), place, "expectation has")


# --- further checks on values ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "place", "problem"),
    [
        ('advance = "0s"', "step 1: advance", "positive whole number"),
        ('advance = "90"', "step 1: advance", "positive whole number"),
        ('advance = "1.5h"', "step 1: advance", "positive whole number"),
        ('advance = "2w"', "step 1: advance", "positive whole number"),
        ("advance = 90", "step 1: advance", "positive whole number"),
        ('advance = "99999999999d"', "step 1: advance", "too long"),
        ("advance_to = 2026-01-05T09:00:00", "step 1: advance_to", "offset datetime"),
        ("advance_to = 2026-01-05", "step 1: advance_to", "offset datetime"),
        (
            "advance_to = 2026-01-05T08:59:59-06:00",
            "step 1: advance_to",
            "before the scenario start",
        ),
        ("flatten_all = false", "step 1: flatten_all", "must be true"),
        ('restart = "yes"', "step 1: restart", "must be true"),
        ("lock = 1", "step 1: lock", "must be a string"),
        (
            'trade = { account = "F1", symbol = "ESZ6", side = "long", qty = 1 }',
            "step 1: trade.side",
            "one of",
        ),
        ("price = 5", "step 1: price", "must be a table"),
        ('set_risk = { account = "F1" }', "step 1: set_risk", "names no limit"),
        (
            'set_risk = { account = "F1", daily_loss_limit = -1 }',
            "step 1: set_risk.daily_loss_limit",
            "must be an amount >= 0 (0 turns it off), not -1",
        ),
        (
            'set_risk = { account = "F1", daily_loss_limit = true }',
            "step 1: set_risk.daily_loss_limit",
            "not true",
        ),
        (
            'reject_next = { connection = "f", count = 0 }',
            "step 1: reject_next.count",
            "positive integer",
        ),
        (
            'fail_snapshot = { connection = "f", count = 0 }',
            "step 1: fail_snapshot.count",
            "positive integer",
        ),
        (
            'fail_snapshot = { connection = "f", count = -2 }',
            "step 1: fail_snapshot.count",
            "positive integer",
        ),
        (
            'fail_snapshot = { connection = "f", count = 1.5 }',
            "step 1: fail_snapshot.count",
            "positive integer",
        ),
        (
            'fail_snapshot = { connection = "f", count = "2" }',
            "step 1: fail_snapshot.count",
            "positive integer",
        ),
        ("fail_snapshot = { count = 2 }", "step 1: fail_snapshot.connection", "missing"),
        (
            'fail_snapshot = { connection = "f", times = 2 }',
            "step 1: fail_snapshot.times",
            "unknown key",
        ),
        ('fail_snapshot = "f"', "step 1: fail_snapshot", "must be a table"),
        (
            'expect = { account = "F1", flat = true, count = 1 }',
            "step 1: expect.count",
            "needs activity",
        ),
        (
            'expect = { account = "F1", activity = "skip", count = -1 }',
            "step 1: expect.count",
            "non-negative integer",
        ),
        (
            'expect = { connection = "f", state = "connected", count = 1 }',
            "step 1: expect.count",
            "not a key",
        ),
        ('crash = { actor = "broker", id = "f" }', "step 1: crash.actor", "one of"),
        ('expect = { account = "F1", position = 1 }', "step 1: expect.position", "needs symbol"),
        (
            'expect = { account = "F1", symbol = "ESZ6", flat = true }',
            "step 1: expect.symbol",
            "needs position",
        ),
        (
            'expect = { account = "F1", position = 1.0, symbol = "ESZ6" }',
            "step 1: expect.position",
            "integer",
        ),
        (
            'expect = { account = "F1", flat = true, level = "info" }',
            "step 1: expect.level",
            "needs activity",
        ),
        (
            'expect = { account = "F1", activity = "x", level = "debug" }',
            "step 1: expect.level",
            "one of",
        ),
        ('expect = { account = "F1" }', "step 1: expect", "checks nothing"),
        ('expect = { account = "F1", flat = "yes" }', "step 1: expect.flat", "true or false"),
        ('expect = { account = "F1", status = "ok" }', "step 1: expect.status", "one of"),
        (
            'expect = { account = "F1", lock_reason = "breach" }',
            "step 1: expect.lock_reason",
            "one of",
        ),
        ('expect = { account = "F1", copying = "on" }', "step 1: expect.copying", "one of"),
        ('expect = { account = "F1", daily_pnl = "-250" }', "step 1: expect.daily_pnl", "number"),
        (
            'expect = { account = "F1", orders_sent = -1 }',
            "step 1: expect.orders_sent",
            "non-negative",
        ),
        (
            'expect = { account = "F1", reconciliations = 1.0 }',
            "step 1: expect.reconciliations",
            "non-negative",
        ),
        ('expect = { connection = "f", state = "up" }', "step 1: expect.state", "one of"),
        ('expect = { group = "g1", followers = "F1" }', "step 1: expect.followers", "array"),
    ],
)
def test_invalid_step_values(line: str, place: str, problem: str) -> None:
    invalid(step(line), place, problem)


def test_advance_to_cannot_go_back_in_virtual_time() -> None:
    text = step('advance = "1d"') + "[[step]]\nadvance_to = 2026-01-05T12:00:00-06:00\n"
    invalid(text, "step 2: advance_to", "before the virtual time at this step")


@pytest.mark.parametrize(
    ("text", "place", "problem"),
    [
        (SETUP.replace('name = "base"', "name = 3"), "name", "must be a string"),
        (SETUP.replace('name = "base"', 'name = ""'), "name", "must not be empty"),
        ("description = 1\n" + SETUP, "description", "must be a string"),
        ("start = 2026-01-05T09:00:00\n" + SETUP, "start", "offset datetime"),
        ("step = 3\n" + SETUP, "step", "array of tables ([[step]])"),
        (SETUP + "[step]\nprice = 1\n", "step", "array of tables"),
        (
            SETUP + '[[connection]]\nid = "c"\nbroker = "ib"\n',
            "[[connection]] 3 (c): broker",
            "one of",
        ),
        (
            SETUP + '[[connection]]\nid = "c"\nstate = "up"\n',
            "[[connection]] 3 (c): state",
            "one of",
        ),
        (SETUP + '[[connection]]\nid = ""\n', "[[connection]] 3: id", "must not be empty"),
        (
            SETUP + '[[account]]\nid = "A"\nconnection = "f"\nbalance = -1\n',
            "[[account]] 4 (A): balance",
            "negative",
        ),
        (
            SETUP + '[[account]]\nid = "A"\nconnection = "f"\nrisk = { daily_loss_limit = -5 }\n',
            "[[account]] 4 (A): risk.daily_loss_limit",
            "must be an amount >= 0",
        ),
        (
            SETUP + '[[account]]\nid = "A"\nconnection = "f"\nrisk = 5\n',
            "[[account]] 4 (A): risk",
            "table",
        ),
        (
            SETUP.replace("followers = [", 'followers = ["F2", '),
            "[[group]] 1 (g1): followers",
            "array of tables",
        ),
        (
            SETUP.replace('{ account = "F1" }', '{ account = "F1", symbol_map = { ES = 1 } }'),
            "[[group]] 1 (g1): followers[1].symbol_map.ES",
            "must be a string",
        ),
        (
            SETUP + '[[instrument]]\nroot = "zn"\npoint_value = 1\ntick_size = 1\n',
            "[[instrument]] 1 (zn): root",
            "not an instrument root",
        ),
        (
            SETUP + '[[instrument]]\nroot = "ZN"\npoint_value = 0\ntick_size = 1\n',
            "[[instrument]] 1 (ZN): point_value",
            "positive",
        ),
        (
            SETUP + '[[instrument]]\nroot = "ZN"\npoint_value = 1\ntick_size = -1\n',
            "[[instrument]] 1 (ZN): tick_size",
            "positive",
        ),
    ],
)
def test_invalid_setup_values(text: str, place: str, problem: str) -> None:
    invalid(text, place, problem)


# --- defaults and a full file ---------------------------------------------------------------


def test_defaults() -> None:
    scenario = parse(step('reject_next = { connection = "f" }'))
    assert scenario.name == "base"
    assert scenario.description == ""
    assert scenario.file == FILE
    assert scenario.start == datetime(2026, 1, 5, 9, 0, tzinfo=timezone(timedelta(hours=-6)))
    assert scenario.start.weekday() == 0
    assert scenario.instruments == ()
    assert scenario.connections[0] == ConnectionSpec("lead", "paper", "connected")
    assert scenario.accounts[0] == AccountSpec("LEAD", "lead", Decimal(50000), {})
    assert scenario.accounts[0].risk == {}
    assert scenario.blackouts == ()
    assert scenario.groups == (
        GroupSpec("g1", "LEAD", (FollowerSpec("F1", Decimal(1), None, ()),)),
    )
    assert scenario.steps[0].value == RejectNextStep("f", 1)
    trade = parse(step('trade = { account = "F1", symbol = "ESZ6", side = "sell", qty = 4 }'))
    assert trade.steps[0].value == TradeStep("F1", "ESZ6", "sell", 4, (4,))
    no_followers = parse(SETUP.replace('followers = [{ account = "F1" }]', ""))
    assert no_followers.groups[0].followers == ()
    assert parse('name = "bare"').steps == ()


FULL = """\
name = "full"
description = "every kind of entry"
start = 2026-11-23T09:00:00-06:00

[[instrument]]
root = "ZN"
point_value = 1000
tick_size = 0.015625

[[instrument]]
root = "ES"
point_value = 50.0
tick_size = 0.25

[[connection]]
id = "lead"
broker = "tradovate-sim"

[[connection]]
id = "f"
state = "reauth_required"

[[account]]
id = "LEAD"
connection = "lead"
balance = 100000
risk = { daily_loss_limit = 1000.0, trailing_drawdown = 2500 }

[[account]]
id = "F1"
connection = "f"
balance = 0

[[account]]
id = "F2"
connection = "f"

[[group]]
id = "g1"
leader = "LEAD"
followers = [
  { account = "F1", ratio = 2.0, max_qty = 3, symbol_map = { NQ = "MNQ", ES = "MES" } },
]

[[group]]
id = "g2"
leader = "F2"

[[step]]
price = { symbol = "ESZ6", last = 5000 }
[[step]]
trade = { account = "LEAD", symbol = "ESZ6", side = "buy", qty = 3, fills = [1, 2] }
[[step]]
advance = "90s"
[[step]]
advance = "3d"
[[step]]
advance_to = 2026-11-26T09:01:30-06:00
[[step]]
disconnect = "f"
[[step]]
flatten_all = true
[[step]]
set_risk = { account = "F1", weekly_loss_limit = 0, daily_loss_limit = 500 }
[[step]]
add_follower = { group = "g1", account = "F2", max_qty = 1 }
[[step]]
remove_follower = { group = "g1", account = "F2" }
[[step]]
reject_next = { connection = "f", count = 2 }
[[step]]
crash = { actor = "risk", id = "F1" }
[[step]]
restart = true
[[step]]
expect = { account = "F1", position = -2, symbol = "MESZ6", daily_pnl = -250, status = "OK" }
[[step]]
expect = { account = "F1", level = "warning", activity = "breach" }
[[step]]
expect = { group = "g1", followers = ["F1", "LEAD", "F1"], exists = true }
[[step]]
expect = { connection = "f", state = "connected" }
[[step]]
fail_snapshot = { connection = "f", count = 2 }
[[step]]
expect = { account = "F1", activity = "reconciliation", level = "warning", count = 0 }
"""


def test_full_file(tmp_path: Path) -> None:
    path = tmp_path / "full.toml"
    path.write_text(FULL, encoding="utf-8")
    scenario = load_scenario(path)
    cst = timezone(timedelta(hours=-6))
    assert scenario.file == str(path)
    assert scenario.start == datetime(2026, 11, 23, 9, 0, tzinfo=cst)
    assert scenario.instruments[0] == InstrumentSpec("ZN", Decimal(1000), Decimal("0.015625"))
    table = scenario.contract_table()
    assert table.contract("ZN").point_value == Decimal(1000)
    assert table.contract("MES").point_value == Decimal(5)
    assert scenario.connections == (
        ConnectionSpec("lead", "tradovate-sim", "connected"),
        ConnectionSpec("f", "paper", "reauth_required"),
    )
    lead = scenario.accounts[0]
    assert lead.balance == Decimal(100000)
    assert lead.risk == {
        "daily_loss_limit": Decimal(1000),
        "trailing_drawdown": Decimal(2500),
    }
    assert scenario.accounts[1].balance == 0
    follower = scenario.groups[0].followers[0]
    assert follower == FollowerSpec("F1", Decimal(2), 3, (("ES", "MES"), ("NQ", "MNQ")))
    assert scenario.groups[1] == GroupSpec("g2", "F2", ())
    actions = [s.action for s in scenario.steps]
    assert actions[:4] == ["price", "trade", "advance", "advance"]
    assert [s.index for s in scenario.steps] == list(range(1, len(actions) + 1))
    values = [s.value for s in scenario.steps]
    assert values[0] == PriceStep("ESZ6", Decimal(5000))
    assert values[1] == TradeStep("LEAD", "ESZ6", "buy", 3, (1, 2))
    assert values[2] == timedelta(seconds=90)
    assert values[3] == timedelta(days=3)
    assert values[4] == datetime(2026, 11, 26, 9, 1, 30, tzinfo=cst)
    assert values[5] == "f"
    assert values[6] is True
    limits = (("daily_loss_limit", Decimal(500)), ("weekly_loss_limit", Decimal(0)))
    assert values[7] == SetRiskStep("F1", limits)
    assert values[8] == AddFollowerStep("g1", FollowerSpec("F2", Decimal(1), 1, ()))
    assert values[9] == RemoveFollowerStep("g1", "F2")
    assert values[10] == RejectNextStep("f", 2)
    assert values[11] == CrashStep("risk", "F1")
    assert values[12] is True
    checks = (("position", -2), ("daily_pnl", Decimal(-250)), ("status", "OK"))
    assert values[13] == Expectation("account", "F1", checks, "MESZ6", None)
    assert values[14] == Expectation("account", "F1", (("activity", "breach"),), None, "warning")
    group_checks = (("followers", ("F1", "LEAD")), ("exists", True))
    assert values[15] == Expectation("group", "g1", group_checks, None, None)
    assert values[16] == Expectation("connection", "f", (("state", "connected"),), None, None)
    assert values[17] == FailSnapshotStep("f", 2)
    warned = (("activity", "reconciliation"),)
    assert values[18] == Expectation("account", "F1", warned, None, "warning", 0)
    assert parse(step('fail_snapshot = { connection = "f" }')).steps[0].value == FailSnapshotStep(
        "f", 1
    )


def test_numbers_are_exact_decimals() -> None:
    scenario = parse(step('price = { symbol = "ESZ6", last = 5000.1 }'))
    value = scenario.steps[0].value
    assert isinstance(value, PriceStep)
    assert value.last == Decimal("5000.1")
    assert isinstance(value.last, Decimal)


def test_step_actions_on_ids() -> None:
    actions = {
        "connection": ["disconnect", "take_offline", "reconnect", "expire_token", "reauthorize"],
        "account": ["flatten_account", "lock", "unlock"],
        "group": ["flatten_group"],
    }
    ids = {"connection": "f", "account": "F1", "group": "g1"}
    actions["connection"] += ["delete_connection", "hold", "release"]
    for kind, names in actions.items():
        for name in names:
            assert parse(step(f'{name} = "{ids[kind]}"')).steps[0].value == ids[kind]
    for actor, ident in [("connection", "f"), ("account", "F1"), ("group", "g1"), ("risk", "LEAD")]:
        line = f'crash = {{ actor = "{actor}", id = "{ident}" }}'
        assert parse(step(line)).steps[0].value == CrashStep(actor, ident)


# --- files and folders ----------------------------------------------------------------------


def test_collect_paths(tmp_path: Path) -> None:
    for name in ("b.toml", "a.toml", "notes.txt"):
        (tmp_path / name).write_text('name = "x"\n', encoding="utf-8")
    single = tmp_path / "a.toml"
    assert collect_paths([str(tmp_path)]) == [tmp_path / "a.toml", tmp_path / "b.toml"]
    assert collect_paths([str(single), str(tmp_path / "b.toml")]) == [single, tmp_path / "b.toml"]
    with pytest.raises(ScenarioError) as info:
        collect_paths([str(tmp_path / "missing.toml")])
    assert info.value.problem == "no such file or folder"
    with pytest.raises(ScenarioError):
        collect_paths([str(tmp_path / "notes.txt")])


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'name = "\xff"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    assert str(info.value).startswith(f"{bad}: file: ")
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "missing.toml")
    assert info.value.place == "file"


def test_pathological_toml() -> None:
    invalid("a = " + "[" * 5000 + "]" * 5000, "file", "not valid TOML")
    invalid("name = 1" + "0" * 5000, "file", "not valid TOML")


# --- fuzz -----------------------------------------------------------------------------------

SNIPPETS = """\
0
-1
1
3
2.5
-0.0
nan
inf
1e400
true
false
""
"F1"
"LEAD"
"f"
"g1"
"ESZ6"
"MESZ6"
"90s"
"0d"
[]
[1, 2]
["F1"]
{}
{ account = "F1" }
{ symbol = "ESZ6", last = 1 }
2026-01-05T09:00:00-06:00
2026-01-05T09:00:00
2026-01-05
09:00:00
{ ES = "MES" }
99999999999999999999
""".splitlines()


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = FULL.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["value", "delete", "duplicate", "insert", "chars"]))
        line = lines[index]
        if kind == "value" and "=" in line:
            lines[index] = line.split("=", 1)[0] + "= " + draw(st.sampled_from(SNIPPETS))
        elif kind == "delete":
            del lines[index]
        elif kind == "duplicate":
            lines.insert(index, line)
        elif kind == "insert":
            key = draw(st.sampled_from(["name", "id", "price", "expect", "foo", "[[step]]"]))
            lines.insert(index, f"{key} = {draw(st.sampled_from(SNIPPETS))}")
        else:
            start = draw(st.integers(0, len(line)))
            lines[index] = line[:start] + draw(st.text(max_size=5)) + line[start + 1 :]
        if not lines:
            break
    return "\n".join(lines)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), mutated()))
def test_fuzz_only_scenario_errors(text: str) -> None:
    try:
        scenario = parse(text)
    except ScenarioError as error:
        assert str(error).startswith(f"{FILE}: ")
        assert error.place
        assert error.problem
    else:
        assert isinstance(scenario, Scenario)


# --- fail_snapshot: the whole file is checked before anything runs --------------------------------


def test_an_invalid_fail_snapshot_step_runs_nothing_of_its_file_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    text = step('trade = { account = "LEAD", symbol = "ESZ6", side = "buy", qty = 1 }')
    path.write_text(text + '\n[[step]]\nfail_snapshot = { connection = "nope" }\n')
    args = argparse.Namespace(paths=[str(path)], journal=None, json=None, runtime="deterministic")
    assert replay_cli.main(args) == 2
    out, _ = capsys.readouterr()
    assert f"{path}: step 2: fail_snapshot.connection" in out
    assert "PASS" not in out
    assert "FAIL" not in out


def test_fail_snapshot_on_a_tradovate_sim_connection_is_refused_until_the_sim_has_it() -> None:
    scenario = parse(
        step('fail_snapshot = { connection = "lead" }').replace(
            'id = "lead"', 'id = "lead"\nbroker = "tradovate-sim"', 1
        )
    )
    if hasattr(SimBridge, "fail_snapshot"):
        check_supported(scenario)
        return
    with pytest.raises(ScenarioError) as info:
        check_supported(scenario)
    assert info.value.place == "step 1: fail_snapshot.connection"
    assert "not supported yet" in info.value.problem
