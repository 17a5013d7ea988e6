"""Tradovate's WebSocket framing (TRADOVATE.md, "WebSocket"): o/h/a/c frames, replies, pushes,
client requests, exact decimals; anything else is a FrameError that never repeats the frame."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.tradovate import entities
from brokers.tradovate.wire import (
    CloseFrame,
    FrameError,
    HeartbeatFrame,
    MessagesFrame,
    OpenFrame,
    Push,
    Reply,
    Request,
    dumps,
    encode_request,
    parse_client_frame,
    parse_server_frame,
)


def test_server_frames_by_their_first_letter() -> None:
    assert parse_server_frame("o") == OpenFrame()
    assert parse_server_frame("h") == HeartbeatFrame()
    assert parse_server_frame('c[1000,"bye"]') == CloseFrame(1000, "bye")
    frame = parse_server_frame(
        'a[{"s":200,"i":3,"d":{"x":1}},{"e":"props","d":{"entityType":"fill"}}]'
    )
    assert frame == MessagesFrame((Reply(3, 200, {"x": 1}), Push("props", {"entityType": "fill"})))


def test_prices_stay_exact() -> None:
    frame = parse_server_frame('a[{"e":"md","d":{"p":5000.25,"q":2000.1}}]')
    assert isinstance(frame, MessagesFrame)
    push = frame.messages[0]
    assert isinstance(push, Push)
    assert push.data == {"p": Decimal("5000.25"), "q": Decimal("2000.1")}
    assert dumps({"p": Decimal("5000.25"), "n": Decimal(3)}) == '{"p":5000.25,"n":3}'


@pytest.mark.parametrize(
    "text",
    ["", "x", "a{not json", 'a{"s":200}', 'a[{"s":"200","i":1}]', 'a[{"i":true,"s":200}]', "a[3]"],
)
def test_malformed_frames_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(FrameError) as refused:
        parse_server_frame(text)
    assert "not json" not in str(refused.value)


def test_client_requests_keep_blank_lines() -> None:
    assert encode_request("authorize", 0, "", "TOKEN") == "authorize\n0\n\nTOKEN"
    assert encode_request("user/syncrequest", 4, "", {"users": [7]}) == (
        'user/syncrequest\n4\n\n{"users":[7]}'
    )
    assert parse_client_frame("[]") is None
    assert parse_client_frame("order/list\n9\n\n") == Request("order/list", 9, "", "")
    assert parse_client_frame("/md/subscribeQuote\n2\n\n{}") == Request(
        "md/subscribeQuote", 2, "", "{}"
    )
    with pytest.raises(FrameError):
        parse_client_frame("authorize\nnot-a-number\n\nx")


def test_entities_name_what_is_wrong() -> None:
    fill = entities.fill(
        {"id": 1, "orderId": 2, "contractId": 3, "action": "Sell", "qty": 2, "price": 5000}
    )
    assert (fill.qty, fill.price, fill.timestamp) == (-2, Decimal(5000), None)
    with pytest.raises(entities.EntityError, match="fill: qty"):
        entities.fill({"id": 1, "orderId": 2, "contractId": 3, "action": "Buy", "price": 1})
    with pytest.raises(entities.EntityError, match="order: action"):
        entities.order({"id": 1, "accountId": 2, "action": "Hold", "ordStatus": "Working"})
    quotes = entities.quotes(
        {"quotes": [{"contractId": 5, "entries": {"Bid": {"price": 1}}}, {"contractId": 6}]}
    )
    assert [(q.contract_id, q.trade) for q in quotes] == [(5, None), (6, None)]
