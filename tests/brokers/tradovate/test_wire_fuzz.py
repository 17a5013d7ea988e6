"""Fuzzing what Tradovate sends: any text on the socket is a frame or a FrameError, and any JSON
value where an entity is expected is that entity or an EntityError — never another exception,
which would end the socket's task instead of being reported (TRADOVATE.md, "WebSocket")."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from brokers.tradovate import entities
from brokers.tradovate.wire import FrameError, parse_client_frame, parse_server_frame
from tests.properties.profiles import property_settings, scaled

KEYS = st.sampled_from(
    [
        "id", "accountId", "contractId", "orderId", "action", "qty", "price", "ordStatus",
        "timestamp", "netPos", "netPrice", "entityType", "eventType", "entity", "name",
        "valuePerPoint", "tickSize", "quotes", "entries", "Trade", "accounts", "positions",
        "orders", "fills", "commands", "orderVersions", "contracts", "s", "i", "d", "e",
        "clOrdId", "commandStatus", "orderType", "productName", "active", "x",
    ]
)  # fmt: skip
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: Decimal(repr(f))),
    st.sampled_from(["Buy", "Sell", "Working", "Filled", "2026-01-06T15:00:00.000Z", "", "ES"]),
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=6)),
    max_leaves=20,
)

PARSERS: dict[str, Callable[[Any], object]] = {
    "account": entities.account,
    "contract": entities.contract,
    "product": entities.product,
    "order": entities.order,
    "order_version": entities.order_version,
    "command": entities.command,
    "fill": entities.fill,
    "position": entities.position,
    "props": entities.props,
    "sync_data": entities.sync_data,
    "sync_parts": lambda data: entities.sync_data(
        entities.merge_sync_parts(data if isinstance(data, list) and data else [data])
    ),
    "quotes": entities.quotes,
}


def _encode(value: Any) -> str:
    return json.dumps(value, default=str)


@given(
    text=st.one_of(
        st.text(max_size=80),
        st.builds(lambda k, v: k + _encode(v), st.sampled_from("oahcx"), JSON_VALUES),
    )
)
@example(text='a[{"s":200,"i":1e400}]')
@example(text='c["x"]')
@property_settings(max_examples=scaled(300))
def test_any_server_frame_parses_or_is_a_frame_error(text: str) -> None:
    try:
        parse_server_frame(text)
    except FrameError as error:
        assert str(error)


@given(text=st.text(max_size=60))
@example(text="a\n\n\n")
@example(text="x\n99999999999999999999999\n\n")
@property_settings(max_examples=scaled(200))
def test_any_client_frame_parses_or_is_a_frame_error(text: str) -> None:
    """The local server's side of the same socket."""
    try:
        parse_client_frame(text)
    except FrameError as error:
        assert str(error)


@given(name=st.sampled_from(sorted(PARSERS)), data=JSON_VALUES)
@example(name="fill", data={"id": 1, "orderId": 2, "contractId": 3, "action": "Buy", "qty": 1e3})
@example(name="quotes", data={"quotes": [{"contractId": 1, "entries": {"Trade": {"price": []}}}]})
@property_settings(max_examples=scaled(500))
def test_any_entity_parses_or_is_an_entity_error(name: str, data: Any) -> None:
    try:
        PARSERS[name](data)
    except entities.EntityError as error:
        assert str(error)
