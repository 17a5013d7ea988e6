"""What the paper broker accepts as an order request: prices fit for each order's type, a
bracket's legs and an OCO pair's orders of the right role and type (S8.10).

Pure functions: each answers what is wrong, in words, or ``None``. The broker turns an answer
into an ``OrderRejected`` for an engine request and a :class:`PaperBrokerError` for the owner's.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from brokers.base import LegRequest, LegRole, OrderRequest, OrderType, TimeInForce, check_terms

INVALID = "InvalidOrder"

# The types a leg of each role may have: a stop-loss stops, a take-profit is a limit.
LEG_TYPES: dict[LegRole, tuple[OrderType, ...]] = {
    LegRole.STOP: (OrderType.STOP, OrderType.STOP_LIMIT),
    LegRole.TARGET: (OrderType.LIMIT,),
}


@dataclass(frozen=True, slots=True)
class Spec:
    """One order of a request, before the broker gives it an id: the engine's order or leg
    (with its client order id) or the owner's (without)."""

    client_order_id: str | None
    order_type: OrderType
    price: Decimal | None = None
    stop: Decimal | None = None
    role: LegRole | None = None


def specs(request: OrderRequest) -> tuple[Spec, list[Spec]]:
    """The request's own order, and its bracket's legs or its OCO sibling."""
    main = Spec(request.client_order_id, request.order_type, request.price, request.stop)
    if request.oco is not None:
        main = Spec(main.client_order_id, main.order_type, main.price, main.stop, request.role)
    legs = request.bracket if request.oco is None else (request.oco,)
    return main, [Spec(g.client_order_id, g.order_type, g.price, g.stop, g.role) for g in legs]


def owner_specs(
    order_type: OrderType,
    price: Decimal | None,
    stop: Decimal | None,
    bracket_stop: Decimal | None,
    bracket_target: Decimal | None,
) -> tuple[Spec, list[Spec]]:
    """The owner's order and its bracket's legs: a stop at ``bracket_stop``, a limit at
    ``bracket_target`` (each if given)."""
    legs = []
    if bracket_stop is not None:
        legs.append(Spec(None, OrderType.STOP, None, bracket_stop, LegRole.STOP))
    if bracket_target is not None:
        legs.append(Spec(None, OrderType.LIMIT, bracket_target, None, LegRole.TARGET))
    return Spec(None, order_type, price, stop), legs


def oco_specs(stop: Decimal, target: Decimal) -> tuple[Spec, list[Spec]]:
    """The owner's OCO pair: a stop at ``stop``, a limit at ``target``."""
    loss = Spec(None, OrderType.STOP, None, stop, LegRole.STOP)
    return loss, [Spec(None, OrderType.LIMIT, target, None, LegRole.TARGET)]


def specs_problem(main: Spec, others: list[Spec], tif: object) -> str | None:
    """What is wrong with the owner's orders, or ``None``."""
    if not isinstance(main.order_type, OrderType) or main.order_type is OrderType.LIQUIDATE:
        return f"{main.order_type!r} is not an order type one places"
    if not isinstance(tif, TimeInForce):
        return f"{tif!r} is not a time in force"
    for spec in (main, *others):
        if spec.role is None:
            problem = check_terms(spec.order_type, spec.price, spec.stop)
        else:
            problem = leg_problem(spec.role, spec.order_type, spec.price, spec.stop)
        if problem is not None:
            return problem
    return None


def invalid(problem: str) -> str:
    """The rejection reason of a request with ``problem``."""
    return f"{INVALID}: {problem}"


def leg_problem(
    role: LegRole, order_type: OrderType, price: Decimal | None, stop: Decimal | None
) -> str | None:
    """What is wrong with a leg of ``role``: its type for its role, its prices for its type."""
    if not isinstance(role, LegRole):
        return f"unknown leg role {role!r}"
    if order_type not in LEG_TYPES[role]:
        allowed = " or ".join(t.value for t in LEG_TYPES[role])
        return f"a {role.value} leg must be a {allowed} order, not {order_type.value}"
    return check_terms(order_type, price, stop)


def request_problem(request: OrderRequest) -> str | None:
    """What is wrong with an engine's order request (its symbol aside), or ``None``."""
    if not isinstance(request.order_type, OrderType):
        return f"unknown order type {request.order_type!r}"
    problem = check_terms(request.order_type, request.price, request.stop)
    if problem is not None:
        return problem
    if request.bracket or request.oco is not None:  # one id alone cannot be used twice
        ids = request.client_order_ids()
        if len(set(ids)) != len(ids):
            return "a client order id is used twice in one request"
    if request.bracket and request.oco is not None:
        return "an order is a bracket's entry or one of an OCO pair, not both"
    if request.order_type is OrderType.LIQUIDATE and (request.bracket or request.oco):
        return "a liquidation has no bracket and no OCO sibling"
    if request.bracket:
        return _bracket_problem(request.bracket)
    if request.oco is not None:
        return _oco_problem(request, request.oco)
    return None


def _bracket_problem(legs: tuple[LegRequest, ...]) -> str | None:
    roles = [leg.role for leg in legs]
    if len(legs) > len(LegRole) or len(set(roles)) != len(roles):
        return "a bracket has at most one stop leg and one target leg"
    for leg in legs:
        problem = leg_problem(leg.role, leg.order_type, leg.price, leg.stop)
        if problem is not None:
            return f"bracket leg {leg.client_order_id}: {problem}"
    return None


def _oco_problem(request: OrderRequest, other: LegRequest) -> str | None:
    if request.role is None:
        return "an OCO pair's order needs its role (stop or target)"
    if request.role == other.role:
        return "an OCO pair is one stop and one target"
    problem = leg_problem(request.role, request.order_type, request.price, request.stop)
    if problem is not None:
        return problem
    problem = leg_problem(other.role, other.order_type, other.price, other.stop)
    if problem is not None:
        return f"OCO order {other.client_order_id}: {problem}"
    return None
