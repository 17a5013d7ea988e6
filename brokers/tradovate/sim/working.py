"""The local server's working orders: ``placeorder``, ``placeoso`` (an entry with its bracket),
``placeoco`` (two orders, one cancelling the other), ``modifyorder``, and how linked orders
move together (SEMANTICS S8.10).

- A bracket's legs (``bracket1``, ``bracket2``: the opposite side of the entry, quantity
  following it) are ``Suspended`` until the entry fills; each fill of the entry makes them
  ``Working`` for the entry's filled quantity (a new ``orderVersion`` each time). The legs are
  linked to the entry by ``parentId`` and to each other by ``ocoId``.
- An OCO pair's orders (the main one and ``other``, same side and quantity) work at once and
  carry each other's id as ``ocoId``.
- A fill of an order with an ``ocoId`` cancels that sibling; cancelling an order cancels its
  sibling and its legs still suspended (legs already working protect what the entry filled).
- ``modifyorder`` makes a new ``orderVersion`` (quantity, type, prices, time in force) and
  works the order against the last price again; an entry's suspended legs follow its quantity.

The owner of an account does the same by hand through :func:`place_owner` & co. (what the
trader does in the Tradovate app): not automated, never held.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from brokers.base import LegRole, OrderType, PlacedOrder, TimeInForce, WorkingOrder
from brokers.tradovate.sim.book import SimError

if TYPE_CHECKING:
    from brokers.tradovate.sim.book import SimOrder
    from brokers.tradovate.sim.exchange import SimExchange

ORDER_TYPES = ("Market", "Limit", "Stop", "StopLimit")
TIFS = ("Day", "GTC")
TV_TYPE = {
    OrderType.MARKET: "Market",
    OrderType.LIMIT: "Limit",
    OrderType.STOP: "Stop",
    OrderType.STOP_LIMIT: "StopLimit",
}
TV_TIF = {TimeInForce.DAY: "Day", TimeInForce.GTC: "GTC"}
BASE_TYPE = {name: kind for kind, name in TV_TYPE.items()}
BASE_TIF = {name: tif for tif, name in TV_TIF.items()}


@dataclass(frozen=True, slots=True)
class Terms:
    """An order's side and terms, as a request body gives them."""

    side: int
    order_type: str
    price: Decimal | None
    stop: Decimal | None
    tif: str


def _violation(description: str) -> dict[str, Any]:
    return {"violations": [{"constraint": "invalid", "description": description}]}


def price_of(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None
    return price if price.is_finite() and price > 0 else None


def terms(
    body: Mapping[str, Any], what: str, *, working_only: bool = False
) -> Terms | dict[str, Any]:
    """The terms of an order (or of a leg: ``what`` names it in the refusal), or a refusal."""
    action = body.get("action")
    if action not in ("Buy", "Sell"):
        return _violation(f"{what}: action must be Buy or Sell")
    order_type = body.get("orderType", "Market")
    allowed = ORDER_TYPES[1:] if working_only else ORDER_TYPES
    if order_type not in allowed:
        return _violation(f"{what}: orderType must be one of {', '.join(allowed)}")
    tif = body.get("timeInForce", "Day")
    if tif not in TIFS:
        return _violation(f"{what}: timeInForce must be one of {', '.join(TIFS)}")
    price = price_of(body.get("price"))
    stop = price_of(body.get("stopPrice"))
    if order_type in ("Limit", "StopLimit") and price is None:
        return _violation(f"{what}: price is required for a {order_type} order")
    if order_type in ("Stop", "StopLimit") and stop is None:
        return _violation(f"{what}: stopPrice is required for a {order_type} order")
    return Terms(
        1 if action == "Buy" else -1,
        order_type,
        price if order_type in ("Limit", "StopLimit") else None,
        stop if order_type in ("Stop", "StopLimit") else None,
        tif,
    )


def _cl(body: Mapping[str, Any]) -> str | None:
    cl = body.get("clOrdId")
    return cl if isinstance(cl, str) and cl else None


def place(
    ex: SimExchange, user_id: int, body: Mapping[str, Any], kind: str = "order"
) -> dict[str, Any]:
    """``order/placeorder`` (``kind`` ``order``), ``order/placeoso`` (``oso``) or
    ``order/placeoco`` (``oco``): the answer, Tradovate's JSON."""
    account = ex._body_account(user_id, body)
    if isinstance(account, dict):
        return account
    qty = body.get("orderQty")
    if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
        return _violation("orderQty must be a positive integer")
    main = terms(body, "order")
    if isinstance(main, dict):
        return main
    symbol = body.get("symbol")
    contract = ex.contract(symbol) if isinstance(symbol, str) else None
    if contract is None:
        return {"failureReason": "UnknownReason", "failureText": f"Unknown contract {symbol!r}"}
    legs: list[tuple[Terms, Mapping[str, Any]]] = []
    names = {"oso": ("bracket1", "bracket2"), "oco": ("other",)}.get(kind, ())
    for name in names:
        leg = body.get(name)
        if leg is None and name == "bracket2":
            continue
        if not isinstance(leg, Mapping):
            return _violation(f"{name} must be an order")
        parsed = terms(leg, name, working_only=True)
        if isinstance(parsed, dict):
            return parsed
        legs.append((parsed, leg))
    forced = ex._forced_refusal(user_id)
    if forced is not None:
        return forced
    if main.order_type == "Market" and contract.id not in ex.prices:
        return {"failureReason": "NoQuote", "failureText": f"No quote for {contract.name}"}
    automated = bool(body.get("isAutomated"))

    def new(order_terms: Terms, source: Mapping[str, Any], status: str) -> SimOrder:
        order = ex._new_order(
            account,
            contract,
            order_terms.side,
            qty,
            order_terms.order_type,
            cl_ord_id=_cl(source),
            automated=automated,
            price=order_terms.price,
            stop_price=order_terms.stop,
            tif=order_terms.tif,
        )
        order.status = status
        return order

    entry = new(main, body, "Working")
    placed = [entry]
    for leg_terms, source in legs:
        placed.append(new(leg_terms, source, "Suspended" if kind == "oso" else "Working"))
    if kind == "oso":
        for leg in placed[1:]:
            leg.parent_id = entry.id
    pair = placed[1:] if kind == "oso" else placed
    if len(pair) == 2:
        pair[0].oco_id, pair[1].oco_id = pair[1].id, pair[0].id
    ex._announce(*placed)
    for order in placed:
        if order.working:
            ex._start(order)
    answer = ex._accepted(user_id, entry)
    if kind == "oso":
        for index, leg in enumerate(placed[1:], start=1):
            answer[f"oso{index}Id"] = leg.id
    elif kind == "oco":
        answer["ocoId"] = placed[1].id
    return answer


def modify(ex: SimExchange, user_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """``order/modifyorder``: a new version of a working (or suspended) order."""
    order_id = body.get("orderId")
    order = ex.orders.get(order_id) if isinstance(order_id, int) else None
    if order is None or ex.accounts[order.account_id].user_id != user_id:
        return {"failureReason": "UnknownReason", "failureText": f"Unknown order {order_id!r}"}
    if not order.live:
        return {
            "failureReason": "UnknownReason",
            "failureText": f"Order {order.id} is {order.status}, not working",
        }
    qty = body.get("orderQty", order.qty)
    if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
        return _violation("orderQty must be a positive integer")
    if qty <= order.filled:
        return _violation(f"orderQty {qty} is not above the {order.filled} filled")
    current = {
        "action": "Buy" if order.side > 0 else "Sell",
        "orderType": order.order_type,
        "price": order.price,
        "stopPrice": order.stop_price,
        "timeInForce": order.tif,
    }
    wanted = terms({**current, **{k: v for k, v in body.items() if k in current}}, "modifyorder")
    if isinstance(wanted, dict):
        return wanted
    if order.liquidation or (order.order_type == "Market") != (wanted.order_type == "Market"):
        return _violation(f"order {order.id} cannot become a {wanted.order_type} order")
    order.qty, order.order_type, order.tif = qty, wanted.order_type, wanted.tif
    order.price, order.stop_price = wanted.price, wanted.stop
    order.version_id = ex._next("version")
    ex._push(order, "orderVersion", "Created", order.version_entity())
    ex._report(order, "Replaced")
    for leg in _legs(ex, order):
        if leg.status == "Suspended":  # an entry's legs follow its quantity until it fills
            _resize(ex, leg, order.qty)
    if order.working and order.id not in ex.held_queue:
        last = ex.prices.get(order.contract_id)
        if last is not None:
            ex._maybe_trigger(order, last)
    return {"commandId": ex._next("command")}


def _legs(ex: SimExchange, entry: SimOrder) -> list[SimOrder]:
    return [o for o in ex.orders.values() if o.parent_id == entry.id and o.live]


def _resize(ex: SimExchange, leg: SimOrder, qty: int) -> None:
    if leg.qty == qty:
        return
    leg.qty = qty
    leg.version_id = ex._next("version")
    ex._push(leg, "orderVersion", "Created", leg.version_entity())


def after_fill(ex: SimExchange, order: SimOrder) -> None:
    """An execution of ``order``: its legs work for what it has filled; its OCO sibling ends."""
    for leg in _legs(ex, order):
        _resize(ex, leg, order.filled)
        if leg.status == "Suspended":
            ex._set_status(leg, "Working")
            last = ex.prices.get(leg.contract_id)
            if last is not None and leg.live:
                ex._maybe_trigger(leg, last)
    _end_sibling(ex, order)


def after_cancel(ex: SimExchange, order: SimOrder) -> None:
    """``order`` was cancelled: its legs still suspended and its OCO sibling go with it."""
    for leg in _legs(ex, order):
        if leg.status == "Suspended":
            ex._cancel(leg)
    _end_sibling(ex, order)


def _end_sibling(ex: SimExchange, order: SimOrder) -> None:
    sibling = ex.orders.get(order.oco_id) if order.oco_id is not None else None
    if sibling is not None and sibling.live:
        ex._cancel(sibling)


# -- the account's owner, by hand ------------------------------------------------------------------


def _owner_body(
    ex: SimExchange, account: str, symbol: str, qty: int, order_type: OrderType, tif: TimeInForce
) -> dict[str, Any]:
    ex.account(account)  # a clear error for an unknown account
    if isinstance(qty, bool) or not isinstance(qty, int) or qty == 0:
        raise SimError(f"order {account} {symbol}: quantity must be a non-zero int")
    if order_type not in TV_TYPE:
        raise SimError(f"order {account} {symbol}: {order_type} is not an order type here")
    return {
        "accountSpec": account,
        "action": "Buy" if qty > 0 else "Sell",
        "symbol": symbol,
        "orderQty": abs(qty),
        "orderType": TV_TYPE[order_type],
        "timeInForce": TV_TIF[tif],
        "isAutomated": False,
    }


def _prices(body: dict[str, Any], price: Decimal | None, stop: Decimal | None) -> dict[str, Any]:
    if price is not None:
        body["price"] = price
    if stop is not None:
        body["stopPrice"] = stop
    return body


def _answer(answer: Mapping[str, Any], what: str) -> int:
    order_id = answer.get("orderId")
    if not isinstance(order_id, int):
        text = answer.get("failureText") or answer.get("errorText") or answer.get("violations")
        raise SimError(f"{what}: refused ({text})")
    return order_id


def place_owner(
    ex: SimExchange,
    account: str,
    symbol: str,
    qty: int,
    order_type: OrderType,
    *,
    price: Decimal | None = None,
    stop: Decimal | None = None,
    tif: TimeInForce = TimeInForce.DAY,
    bracket_stop: Decimal | None = None,
    bracket_target: Decimal | None = None,
) -> PlacedOrder:
    """The owner places an order (with a bracket when a leg's price is given)."""
    body = _prices(_owner_body(ex, account, symbol, qty, order_type, tif), price, stop)
    exit_action = "Sell" if qty > 0 else "Buy"
    legs = []
    if bracket_stop is not None:
        legs.append({"action": exit_action, "orderType": "Stop", "stopPrice": bracket_stop})
    if bracket_target is not None:
        legs.append({"action": exit_action, "orderType": "Limit", "price": bracket_target})
    for index, leg in enumerate(legs, start=1):
        body[f"bracket{index}"] = {**leg, "timeInForce": TV_TIF[tif]}
    user = ex.account(account).user_id
    answer = place(ex, user, body, "oso" if legs else "order")
    entry = _answer(answer, f"order {account} {symbol}")
    ids = [answer.get(f"oso{i}Id") for i in range(1, len(legs) + 1)]
    stop_id = ids[0] if bracket_stop is not None else None
    target_id = ids[-1] if bracket_target is not None else None
    return PlacedOrder(
        str(entry),
        None if stop_id is None else str(stop_id),
        None if target_id is None else str(target_id),
    )


def place_owner_oco(
    ex: SimExchange,
    account: str,
    symbol: str,
    qty: int,
    *,
    stop: Decimal,
    target: Decimal,
    tif: TimeInForce = TimeInForce.DAY,
) -> PlacedOrder:
    """The owner places an OCO pair: a stop at ``stop`` and a limit at ``target``, same side."""
    body = _prices(_owner_body(ex, account, symbol, qty, OrderType.STOP, tif), None, stop)
    body["other"] = {
        "action": body["action"],
        "orderType": "Limit",
        "price": target,
        "timeInForce": TV_TIF[tif],
    }
    user = ex.account(account).user_id
    answer = place(ex, user, body, "oco")
    stop_id = _answer(answer, f"oco {account} {symbol}")
    return PlacedOrder(None, str(stop_id), str(answer["ocoId"]))


def _owned(ex: SimExchange, account: str, order_id: str) -> SimOrder:
    owner = ex.account(account)
    order = ex.orders.get(int(order_id)) if order_id.isdigit() else None
    if order is None or order.account_id != owner.id:
        raise SimError(f"no order {order_id} of {account} at the local server")
    return order


def modify_owner(
    ex: SimExchange,
    account: str,
    order_id: str,
    *,
    qty: int | None = None,
    price: Decimal | None = None,
    stop: Decimal | None = None,
) -> None:
    """The owner changes a working order (``None`` keeps a value)."""
    order = _owned(ex, account, order_id)
    body = _prices({"orderId": order.id, "isAutomated": False}, price, stop)
    if qty is not None:
        body["orderQty"] = qty
    answer = modify(ex, ex.accounts[order.account_id].user_id, body)
    if "commandId" not in answer:
        text = answer.get("failureText") or answer.get("violations")
        raise SimError(f"modify {order_id}: refused ({text})")


def cancel_owner(ex: SimExchange, account: str, order_id: str) -> None:
    """The owner cancels an order (and with it what is linked to it)."""
    order = _owned(ex, account, order_id)
    if not order.live:
        raise SimError(f"cancel {order_id}: the order is {order.status}, not working")
    ex._cancel(order)


def working_orders(ex: SimExchange, account: str) -> list[WorkingOrder]:
    """An account's orders not ended (suspended bracket legs with ``active`` off), as the
    engine's model has them."""
    account_id = ex.account(account).id
    out = []
    for order in ex.orders.values():
        if order.account_id != account_id or not order.live:
            continue
        linked = order.parent_id is not None or order.oco_id is not None
        role = None
        if linked:
            role = LegRole.TARGET if order.order_type == "Limit" else LegRole.STOP
        out.append(
            WorkingOrder(
                str(order.id),
                order.cl_ord_id,
                ex.contracts[order.contract_id].name,
                order.side * order.remaining,
                OrderType.LIQUIDATE if order.liquidation else BASE_TYPE[order.order_type],
                order.price,
                order.stop_price,
                BASE_TIF[order.tif],
                role,
                None if order.parent_id is None else str(order.parent_id),
                None if order.oco_id is None else str(order.oco_id),
                order.working,
                order.filled,
            )
        )
    return out
