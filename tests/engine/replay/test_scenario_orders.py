"""The owner's working orders in a scenario file (SCENARIOS.md: steps ``order``, ``oco``,
``modify``, ``cancel`` and the ``working`` expectation, SEMANTICS S8.10): what a file may say,
and every way it is invalid, each error with its place."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.base import LegRole, OrderType
from engine.replay.scenario import (
    CancelStep,
    ModifyStep,
    OcoStep,
    OrderRef,
    OrderStep,
    Scenario,
    ScenarioError,
    WorkingSpec,
    parse_scenario,
)

FILE = "orders.toml"

SETUP = """\
name = "owner orders"

[[connection]]
id = "lead"

[[account]]
id = "LEAD"
connection = "lead"

[[account]]
id = "OTHER"
connection = "lead"
"""

BRACKET = (
    'order = { account = "LEAD", id = "B1", symbol = "ESZ6", side = "buy", qty = 2, '
    'type = "limit", price = 4990, bracket = { stop = 4980, target = 5010 } }'
)
STOP_ONLY = (
    'order = { account = "LEAD", id = "S1", symbol = "ESZ6", side = "sell", qty = 1, '
    'type = "stop", stop = 4950, bracket = { target = 4900 } }'
)
OCO = (
    'oco = { account = "LEAD", id = "P1", symbol = "ESZ6", side = "sell", qty = 1, '
    "stop = 4980, target = 5020 }"
)


def steps(*lines: str) -> str:
    return SETUP + "".join(f"\n[[step]]\n{line}\n" for line in lines)


def parse(text: str) -> Scenario:
    return parse_scenario(text, FILE)


def errors(text: str) -> list[str]:
    """Every error of the file, as ``place: problem``."""
    with pytest.raises(ScenarioError) as info:
        parse(text)
    return [f"{e.place}: {e.problem}" for e in info.value.errors]


def only_error(text: str) -> str:
    (error,) = errors(text)
    return error


# --- what a file may say ------------------------------------------------------------------------


def test_order_steps_are_read_into_their_values() -> None:
    scenario = parse(
        steps(
            BRACKET,
            STOP_ONLY,
            OCO,
            'order = { account = "LEAD", id = "L1", symbol = "ESZ6", side = "sell", qty = 3, '
            'type = "stop_limit", stop = 4970, price = 4969.75 }',
            'modify = { account = "LEAD", order = "B1", price = 4992.5, qty = 3 }',
            'modify = { account = "LEAD", order = "B1.stop", stop = 4985 }',
            'modify = { account = "LEAD", order = "P1.target", price = 5030 }',
            'modify = { account = "LEAD", order = "L1", stop = 4971, price = 4970 }',
            'cancel = { account = "LEAD", order = "P1" }',
            'cancel = { account = "LEAD", order = "S1.target" }',
        )
    )
    assert [s.value for s in scenario.steps] == [
        OrderStep(
            "LEAD", "B1", "ESZ6", "buy", 2, OrderType.LIMIT, Decimal(4990), None,
            Decimal(4980), Decimal(5010),
        ),
        OrderStep(
            "LEAD", "S1", "ESZ6", "sell", 1, OrderType.STOP, None, Decimal(4950), None,
            Decimal(4900),
        ),
        OcoStep("LEAD", "P1", "ESZ6", "sell", 1, Decimal(4980), Decimal(5020)),
        OrderStep(
            "LEAD", "L1", "ESZ6", "sell", 3, OrderType.STOP_LIMIT, Decimal("4969.75"),
            Decimal(4970),
        ),
        ModifyStep("LEAD", OrderRef("B1"), 3, Decimal("4992.5"), None),
        ModifyStep("LEAD", OrderRef("B1", LegRole.STOP), None, None, Decimal(4985)),
        ModifyStep("LEAD", OrderRef("P1", LegRole.TARGET), None, Decimal(5030), None),
        ModifyStep("LEAD", OrderRef("L1"), None, Decimal(4970), Decimal(4971)),
        CancelStep("LEAD", OrderRef("P1")),
        CancelStep("LEAD", OrderRef("S1", LegRole.TARGET)),
    ]  # fmt: skip
    assert scenario.steps[1].value.signed_qty == -1  # type: ignore[attr-defined]


def test_an_id_with_a_dot_is_the_order_it_names_before_a_leg() -> None:
    scenario = parse(
        steps(
            BRACKET.replace('"B1"', '"B1.stop"'),
            'cancel = { account = "LEAD", order = "B1.stop" }',
        )
    )
    assert scenario.steps[1].value == CancelStep("LEAD", OrderRef("B1.stop"))


def test_working_expectation_is_read_in_any_order() -> None:
    scenario = parse(
        steps(
            'expect = { account = "LEAD", symbol = "ESZ6", working = ['
            '{ side = "sell", type = "limit", qty = 2, price = 5010 }, '
            '{ side = "sell", type = "stop", qty = 2, stop = 4980 }, '
            '{ side = "buy", type = "stop_limit", qty = 1, stop = 5001, price = 5002 }, '
            '{ side = "buy", type = "market", qty = 1 }] }',
            'expect = { account = "LEAD", symbol = "ESZ6", working = [], position = 0 }',
        )
    )
    first, second = (s.value for s in scenario.steps)
    assert first.symbol == "ESZ6"  # type: ignore[attr-defined]
    assert first.checks == (  # type: ignore[attr-defined]
        (
            "working",
            (
                WorkingSpec("buy", "market", 1),
                WorkingSpec("buy", "stop_limit", 1, Decimal(5002), Decimal(5001)),
                WorkingSpec("sell", "limit", 2, Decimal(5010)),
                WorkingSpec("sell", "stop", 2, None, Decimal(4980)),
            ),
        ),
    )
    assert second.checks == (("working", ()), ("position", 0))  # type: ignore[attr-defined]


# --- every way these steps make a file invalid ---------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            BRACKET.replace("qty = 2", "qty = 2, tif = 1"),
            "step 1: order.tif: unknown key 'tif' (expected one of: account, id, symbol, side, "
            "qty, type, price, stop, bracket)",
        ),
        (
            BRACKET.replace('type = "limit", ', ""),
            "step 1: order.type: required key is missing",
        ),
        (
            BRACKET.replace('"limit"', '"market"'),
            'step 1: order.type: must be one of "limit", "stop", "stop_limit", not "market"',
        ),
        (
            BRACKET.replace("price = 4990", "price = 0"),
            "step 1: order.price: must be positive, not 0",
        ),
        (
            BRACKET.replace("price = 4990", 'price = "4990"'),
            'step 1: order.price: must be a number, not "4990"',
        ),
        (
            BRACKET.replace("price = 4990", "stop = 4990"),
            "step 1: order.price: a limit order needs a price",
        ),
        (
            BRACKET.replace("price = 4990", "price = 4990, stop = 4980"),
            "step 1: order.stop: a limit order has no stop",
        ),
        (
            STOP_ONLY.replace("stop = 4950", "price = 4950"),
            "step 1: order.price: a stop order has no price",
        ),
        (
            STOP_ONLY.replace("stop = 4950, ", ""),
            "step 1: order.stop: a stop order needs a stop",
        ),
        (
            STOP_ONLY.replace('"stop", stop = 4950', '"stop_limit", stop = 4950'),
            "step 1: order.price: a stop_limit order needs a price",
        ),
        (
            BRACKET.replace("bracket = { stop = 4980, target = 5010 }", "bracket = {}"),
            "step 1: order.bracket: needs a stop or a target (or both)",
        ),
        (
            BRACKET.replace("target = 5010", "take = 5010"),
            "step 1: order.bracket.take: unknown key 'take' (expected one of: stop, target)",
        ),
        (
            BRACKET.replace("target = 5010", "target = -1"),
            "step 1: order.bracket.target: must be positive, not -1",
        ),
        (
            BRACKET.replace("{ stop = 4980, target = 5010 }", "4980"),
            "step 1: order.bracket: must be a table, not 4980",
        ),
        (
            BRACKET.replace("qty = 2", "qty = 0"),
            "step 1: order.qty: must be a positive integer, not 0",
        ),
        (
            BRACKET.replace('"buy"', '"long"'),
            'step 1: order.side: must be one of "buy", "sell", not "long"',
        ),
        (
            BRACKET.replace('"ESZ6"', '"ZZZ6"'),
            "step 1: order.symbol: 'ZZZ6': root 'ZZ' is not in the contract table",
        ),
        (
            BRACKET.replace('"LEAD"', '"NOPE"'),
            'step 1: order.account: "NOPE" is not a declared account',
        ),
        (BRACKET.replace('id = "B1"', 'id = ""'), "step 1: order.id: must not be empty"),
        (OCO.replace(", target = 5020", ""), "step 1: oco.target: required key is missing"),
        (OCO.replace("stop = 4980", "stop = 0"), "step 1: oco.stop: must be positive, not 0"),
        (
            OCO.replace("qty = 1", 'qty = 1, type = "stop"'),
            "step 1: oco.type: unknown key 'type' (expected one of: account, id, symbol, side, "
            "qty, stop, target)",
        ),
        ('order = "B1"', 'step 1: order: must be a table, not "B1"'),
    ],
)
def test_invalid_order_and_oco_steps(line: str, expected: str) -> None:
    assert only_error(steps(line)) == expected


def test_every_problem_of_one_order_step_is_reported() -> None:
    line = (
        'order = { account = "NOPE", id = "X", symbol = "ESZ6", side = "up", qty = 1.5, '
        'type = "limit", price = 0 }'
    )
    assert errors(steps(line)) == [
        'step 1: order.account: "NOPE" is not a declared account',
        'step 1: order.side: must be one of "buy", "sell", not "up"',
        "step 1: order.qty: must be a positive integer, not 1.5",
        "step 1: order.price: must be positive, not 0",
    ]


def test_an_order_id_declared_twice() -> None:
    assert only_error(steps(BRACKET, OCO.replace('"P1"', '"B1"'))) == (
        'step 2: oco.id: order "B1" is declared twice'
    )


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ('cancel = { account = "LEAD", order = "B1" }', BRACKET),
            'step 1: cancel.order: "B1" is not an order an earlier order or oco step declared '
            "(ID, or ID.stop / ID.target for a leg)",
        ),
        (
            (BRACKET, 'modify = { account = "LEAD", order = "B2", price = 1 }'),
            'step 2: modify.order: "B2" is not an order an earlier order or oco step declared '
            "(ID, or ID.stop / ID.target for a leg)",
        ),
        (
            (BRACKET, 'cancel = { account = "LEAD", order = "B1.entry" }'),
            'step 2: cancel.order: "B1.entry" is not an order an earlier order or oco step '
            "declared (ID, or ID.stop / ID.target for a leg)",
        ),
        (
            (STOP_ONLY, 'cancel = { account = "LEAD", order = "S1.stop" }'),
            'step 2: cancel.order: order "S1" has no stop leg',
        ),
        (
            (
                BRACKET.replace(", bracket = { stop = 4980, target = 5010 }", ""),
                'modify = { account = "LEAD", order = "B1.target", price = 5000 }',
            ),
            'step 2: modify.order: order "B1" has no bracket',
        ),
        (
            (BRACKET, 'cancel = { account = "OTHER", order = "B1" }'),
            "step 2: cancel.order: order \"B1\" is LEAD's, not OTHER's",
        ),
        (
            (OCO, 'modify = { account = "LEAD", order = "P1", price = 5000 }'),
            'step 2: modify.order: "P1" is an OCO pair: modify one of its orders, "P1.stop" or '
            '"P1.target"',
        ),
        (
            (BRACKET, 'modify = { account = "LEAD", order = "B1.stop", price = 4981 }'),
            'step 2: modify.price: "B1.stop" is a stop order: it has no price',
        ),
        (
            (BRACKET, 'modify = { account = "LEAD", order = "B1", stop = 4981 }'),
            'step 2: modify.stop: "B1" is a limit order: it has no stop',
        ),
        (
            (OCO, 'modify = { account = "LEAD", order = "P1.target", stop = 5001 }'),
            'step 2: modify.stop: "P1.target" is a limit order: it has no stop',
        ),
        (
            (BRACKET, 'modify = { account = "LEAD", order = "B1" }'),
            "step 2: modify: changes nothing (give price, stop or qty)",
        ),
        (
            (BRACKET, 'modify = { account = "LEAD", order = "B1", qty = 0 }'),
            "step 2: modify.qty: must be a positive integer, not 0",
        ),
        (
            (BRACKET, 'modify = { account = "LEAD", order = "B1", price = -2 }'),
            "step 2: modify.price: must be positive, not -2",
        ),
        (
            (BRACKET, 'modify = { account = "LEAD", order = "B1", side = "sell" }'),
            "step 2: modify.side: unknown key 'side' (expected one of: account, order, price, "
            "stop, qty)",
        ),
        (
            (BRACKET, 'cancel = { account = "LEAD" }'),
            "step 2: cancel.order: required key is missing",
        ),
        (
            (BRACKET, 'cancel = { account = "LEAD", order = 1 }'),
            "step 2: cancel.order: must be a string, not 1",
        ),
    ],
)
def test_invalid_modify_and_cancel_steps(lines: tuple[str, ...], expected: str) -> None:
    assert only_error(steps(*lines)) == expected


def test_an_order_step_with_a_problem_still_declares_its_id() -> None:
    """Only the step's own problem is reported, not each later step naming its order."""
    bad = BRACKET.replace("price = 4990", "price = 0")
    later = (
        'modify = { account = "LEAD", order = "B1.stop", stop = 4981 }',
        'cancel = { account = "LEAD", order = "B1" }',
    )
    assert errors(steps(bad, *later)) == ["step 1: order.price: must be positive, not 0"]


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (
            'working = [{ side = "buy", type = "limit", qty = 1 }]',
            "step 1: expect.working[1].price: a limit order needs a price",
        ),
        (
            'working = [{ side = "buy", type = "limit", qty = 1, price = 1, stop = 2 }]',
            "step 1: expect.working[1].stop: a limit order has no stop",
        ),
        (
            'working = [{ side = "buy", type = "market", qty = 1, price = 1 }]',
            "step 1: expect.working[1].price: a market order has no price",
        ),
        (
            'working = [{ side = "buy", type = "stop", qty = 1, stop = 5 }, '
            '{ side = "buy", type = "stop", qty = -1, stop = 5 }]',
            "step 1: expect.working[2].qty: must be a positive integer, not -1",
        ),
        (
            'working = [{ side = "buy", type = "bracket", qty = 1 }]',
            'step 1: expect.working[1].type: must be one of "market", "limit", "stop", '
            '"stop_limit", not "bracket"',
        ),
        (
            'working = [{ side = "buy", type = "stop", qty = 1, stop = 5, tif = "day" }]',
            "step 1: expect.working[1].tif: unknown key 'tif' (expected one of: side, type, "
            "qty, price, stop)",
        ),
        (
            'working = [{ side = "buy", qty = 1 }]',
            "step 1: expect.working[1].type: required key is missing",
        ),
        (
            'working = [{ side = "buy", type = "stop", qty = 1, stop = 0 }]',
            "step 1: expect.working[1].stop: must be positive, not 0",
        ),
        (
            "working = [1]",
            "step 1: expect.working[1]: must be a table, not 1",
        ),
        (
            'working = "none"',
            "step 1: expect.working: must be an array of orders ({ side, type, qty, price?, "
            'stop? }), not "none"',
        ),
    ],
)
def test_invalid_working_expectations(check: str, expected: str) -> None:
    line = f'expect = {{ account = "LEAD", symbol = "ESZ6", {check} }}'
    assert only_error(steps(line)) == expected


def test_working_needs_its_symbol_and_symbol_its_check() -> None:
    assert only_error(steps('expect = { account = "LEAD", working = [] }')) == (
        "step 1: expect.working: needs symbol with it"
    )
    assert only_error(steps('expect = { account = "LEAD", symbol = "ESZ6", flat = true }')) == (
        "step 1: expect.symbol: needs position, working or drift with it"
    )
    found = errors(steps('expect = { connection = "lead", symbol = "ESZ6", working = [] }'))
    assert [e.split(" (it has")[0] for e in found] == [
        "step 1: expect.symbol: 'symbol' is not a key a connection expectation has",
        "step 1: expect.working: 'working' is not a key a connection expectation has",
    ]
