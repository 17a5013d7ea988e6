"""The local server's REST endpoints (TRADOVATE.md, "REST endpoints used"), by lower-cased path.

:func:`handle` takes the authenticated user, the endpoint, the query string and the decoded
body, and returns ``(HTTP status, JSON value)``; the HTTP route and the trading socket both call
it. Business errors are HTTP 200 with ``failureReason``/``failureText`` or ``violations``, as
Tradovate answers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from brokers.tradovate.sim.exchange import SimExchange, violation


def _query(text: str) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(text).items()}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def handle(
    exchange: SimExchange, user_id: int, endpoint: str, query: str, body: Any
) -> tuple[int, Any]:
    path = endpoint.lower().strip("/")
    params = _query(query)
    data: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    mine = {a.id for a in exchange.accounts_of(user_id)}
    if path in POSTS:
        if not isinstance(body, Mapping):
            return 200, violation("the request body must be a JSON object")
        return 200, POSTS[path](exchange, user_id, data)
    if path == "account/list":
        return 200, [a.entity() for a in exchange.accounts_of(user_id)]
    if path == "position/list":
        return 200, [p.entity() for p in exchange.positions_of(user_id)]
    if path == "order/list":
        return 200, [o.entity() for o in exchange.orders_of(user_id)]
    if path == "orderversion/list":
        return 200, [o.version_entity() for o in exchange.orders_of(user_id)]
    if path == "orderversion/deps":
        order = exchange.orders.get(_int(params.get("masterid")) or -1)
        if order is None or order.account_id not in mine:
            return 200, []
        return 200, [order.version_entity()]
    if path == "command/list":
        return 200, [o.command_entity() for o in exchange.orders_of(user_id)]
    if path == "fill/list":
        return 200, [f.entity() for f in exchange.fills_of(user_id)]
    if path == "cashbalance/list":
        return 200, [a.cash_entity(exchange.open_pnl(a.id)) for a in exchange.accounts_of(user_id)]
    if path == "order/item":
        order = exchange.orders.get(_int(params.get("id")) or -1)
        if order is None or order.account_id not in mine:
            return 404, None
        return 200, order.entity()
    if path == "fill/deps":
        master = _int(params.get("masterid"))
        return 200, [f.entity() for f in exchange.fills_of(user_id) if f.order_id == master]
    if path == "contract/item":
        contract = exchange.contracts.get(_int(params.get("id")) or -1)
        return (404, None) if contract is None else (200, contract.entity())
    if path == "contract/find":
        found = exchange.contract(params.get("name", ""))
        return (404, None) if found is None else (200, found.entity())
    if path == "product/find":
        product = exchange.product(params.get("name", ""))
        return (404, None) if product is None else (200, product)
    return 404, None


def _snapshot(exchange: SimExchange, user_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
    account = exchange.accounts.get(body.get("accountId", -1))
    if account is None or account.user_id != user_id:
        return {"errorText": "Access is denied to this account"}
    return account.cash_entity(exchange.open_pnl(account.id))


POSTS = {
    "order/placeorder": SimExchange.place_order,
    "order/placeoso": SimExchange.place_oso_order,
    "order/placeoco": SimExchange.place_oco_order,
    "order/modifyorder": SimExchange.modify_order,
    "order/liquidateposition": SimExchange.liquidate_position,
    "order/cancelorder": SimExchange.cancel_order,
    "cashbalance/getcashbalancesnapshot": _snapshot,
}
