"""Working orders at Tradovate: the engine's requests as ``placeorder``/``placeoso``/
``placeoco``/``modifyorder`` bodies, and the orders a request places (:class:`Placement`).

- A plain order (market, limit, stop, stop-limit) is ``order/placeorder`` with ``orderType``,
  ``price``, ``stopPrice`` and ``timeInForce``.
- A bracket is ``order/placeoso``: ``bracket1`` is the stop-loss leg (or the only leg),
  ``bracket2`` the take-profit; each leg is the entry's opposite side, its quantity follows the
  entry. The answer is ``{orderId, oso1Id, oso2Id}``.
- An OCO pair is ``order/placeoco`` with ``other`` (same side and quantity); the answer is
  ``{orderId, ocoId}``.

Every order of a request carries its own ``clOrdId`` (the legs' inside their objects), so each
one is known as the engine's from its ``command`` push, and an answer lost on the way is looked
up by client order id (S2.6, S8.9).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from brokers.base import LegRequest, LegRole, OrderRequest, OrderType, TimeInForce

TV_TYPE = {
    OrderType.MARKET: "Market",
    OrderType.LIMIT: "Limit",
    OrderType.STOP: "Stop",
    OrderType.STOP_LIMIT: "StopLimit",
}
BASE_TYPE = {name: kind for kind, name in TV_TYPE.items()}
TV_TIF = {TimeInForce.DAY: "Day", TimeInForce.GTC: "GTC"}
BASE_TIF = {name: tif for tif, name in TV_TIF.items()}


def order_type_of(name: str, default: OrderType = OrderType.MARKET) -> OrderType:
    """Tradovate's ``orderType`` as the engine's (``default`` for one the engine has not)."""
    return BASE_TYPE.get(name, default)


def tif_of(name: str) -> TimeInForce:
    return BASE_TIF.get(name, TimeInForce.DAY)


def role_of(order_type: OrderType) -> LegRole:
    """A linked order's role when nobody said: a limit takes profit, a stop stops a loss."""
    return LegRole.TARGET if order_type is OrderType.LIMIT else LegRole.STOP


@dataclass(frozen=True, slots=True)
class Placement:
    """One order a request places: the request's own (``leg`` ``None``) or one of its legs."""

    request: OrderRequest
    leg: LegRequest | None = None

    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id if self.leg is None else self.leg.client_order_id

    @property
    def side(self) -> int:
        own = 1 if self.request.qty >= 0 else -1
        return -own if self.leg is not None and self.request.bracket else own

    @property
    def qty(self) -> int:
        """Signed; 0 for a liquidation (its size is known when it fills)."""
        if self.request.order_type is OrderType.LIQUIDATE:
            return 0
        return self.side * abs(self.request.qty)

    @property
    def order_type(self) -> OrderType:
        return self.request.order_type if self.leg is None else self.leg.order_type

    @property
    def price(self) -> Decimal | None:
        return self.request.price if self.leg is None else self.leg.price

    @property
    def stop(self) -> Decimal | None:
        return self.request.stop if self.leg is None else self.leg.stop

    @property
    def role(self) -> LegRole | None:
        return self.request.role if self.leg is None else self.leg.role

    @property
    def is_leg(self) -> bool:
        """A bracket leg (suspended until its entry fills)."""
        return self.leg is not None and bool(self.request.bracket)


def bracket_legs(request: OrderRequest) -> tuple[LegRequest, ...]:
    """The bracket's legs in Tradovate's order: the stop-loss first (``bracket1``)."""
    return tuple(sorted(request.bracket, key=lambda leg: leg.role is not LegRole.STOP))


def placements(request: OrderRequest) -> tuple[Placement, ...]:
    """Every order ``request`` places, its own first, then as the answer names them."""
    legs = bracket_legs(request) if request.bracket else ()
    if request.oco is not None:
        legs = (*legs, request.oco)
    return (Placement(request), *(Placement(request, leg) for leg in legs))


def _terms(
    body: dict[str, Any], order_type: OrderType, price: Decimal | None, stop: Decimal | None
) -> dict[str, Any]:
    body["orderType"] = TV_TYPE[order_type]
    if price is not None:
        body["price"] = price
    if stop is not None:
        body["stopPrice"] = stop
    return body


def _action(side: int) -> str:
    return "Buy" if side > 0 else "Sell"


def place_body(request: OrderRequest, account_id: int) -> tuple[str, dict[str, Any]]:
    """The endpoint and body placing ``request`` (not a liquidation)."""
    main, *legs = placements(request)
    body: dict[str, Any] = {
        "accountSpec": request.account,
        "accountId": account_id,
        "clOrdId": request.client_order_id,
        "action": _action(main.side),
        "symbol": request.symbol,
        "orderQty": abs(request.qty),
    }
    _terms(body, request.order_type, request.price, request.stop)
    tif = TV_TIF[request.tif]
    body["timeInForce"] = tif
    body["isAutomated"] = True
    names = ("bracket1", "bracket2") if request.bracket else ("other",)
    for name, leg in zip(names, legs, strict=False):
        assert leg.leg is not None
        body[name] = _terms(
            {"action": _action(leg.side), "clOrdId": leg.client_order_id},
            leg.order_type,
            leg.price,
            leg.stop,
        ) | {"timeInForce": tif}
    if request.bracket:
        return "order/placeoso", body
    if request.oco is not None:
        return "order/placeoco", body
    return "order/placeorder", body


class AnswerError(ValueError):
    """A placement's answer without the order ids it must carry."""


def answer_ids(request: OrderRequest, answer: Mapping[str, Any]) -> dict[str, int]:
    """Client order id -> order id, from a ``placeorder``/``placeoso``/``placeoco`` answer."""
    keys = ["orderId"]
    if request.bracket:
        keys += [f"oso{n}Id" for n in range(1, len(request.bracket) + 1)]
    elif request.oco is not None:
        keys.append("ocoId")
    ids: dict[str, int] = {}
    for key, placement in zip(keys, placements(request), strict=True):
        value = answer.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise AnswerError(f"the answer has no {key}")
        ids[placement.client_order_id] = value
    return ids


def modify_body(
    order_id: int,
    qty: int,
    order_type: OrderType,
    price: Decimal | None,
    stop: Decimal | None,
    tif: TimeInForce,
) -> dict[str, Any]:
    """``order/modifyorder``: the order's whole new terms (``qty`` the new total)."""
    body: dict[str, Any] = {"orderId": order_id, "orderQty": qty}
    _terms(body, order_type, price, stop)
    body["timeInForce"] = TV_TIF[tif]
    body["isAutomated"] = True
    return body
