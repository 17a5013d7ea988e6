"""An account owner's working orders in a scenario file (SCENARIOS.md: the ``order``, ``oco``,
``modify`` and ``cancel`` steps and the ``working`` expectation): their model and validation.

An ``order`` or ``oco`` step declares an order id; a later ``modify`` or ``cancel`` of the same
account names it as ``ID`` (the order, or the pair), ``ID.stop`` or ``ID.target`` (a leg the
file gave it). Each reference is checked against what the earlier steps declared, so a file
that runs at all names only orders and legs it placed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from brokers.base import LegRole, OrderType, check_terms
from brokers.instruments import ContractTable
from engine.replay.scenario_fields import (
    Invalid,
    Problems,
    Where,
    as_choice,
    as_id,
    as_positive,
    as_positive_int,
    as_ref,
    as_symbol,
    check_keys,
    show,
    table,
)

SIDES = ("buy", "sell")
ORDER_TYPES = ("limit", "stop", "stop_limit")
# What may work at the broker: the owner's orders, and an engine's market order a ``hold`` keeps.
WORKING_TYPES = ("market", *ORDER_TYPES)
ORDER_ACTIONS = ("order", "oco")


@dataclass(frozen=True)
class OrderStep:
    """The owner places a limit, stop or stop-limit order, with a bracket if either leg is given:
    its stop-loss is a stop at ``bracket_stop``, its take-profit a limit at ``bracket_target``."""

    account: str
    id: str
    symbol: str
    side: str
    qty: int
    order_type: OrderType
    price: Decimal | None = None
    stop: Decimal | None = None
    bracket_stop: Decimal | None = None
    bracket_target: Decimal | None = None

    @property
    def signed_qty(self) -> int:
        return self.qty if self.side == "buy" else -self.qty


@dataclass(frozen=True)
class OcoStep:
    """The owner places a standalone OCO pair: a stop at ``stop`` and a limit at ``target``,
    both on ``side`` for ``qty``."""

    account: str
    id: str
    symbol: str
    side: str
    qty: int
    stop: Decimal
    target: Decimal

    @property
    def signed_qty(self) -> int:
        return self.qty if self.side == "buy" else -self.qty


@dataclass(frozen=True)
class OrderRef:
    """``ID`` (``leg`` None: the order, or both orders of an OCO pair), ``ID.stop`` or
    ``ID.target``."""

    id: str
    leg: LegRole | None = None

    def __str__(self) -> str:
        return self.id if self.leg is None else f"{self.id}.{self.leg.value}"


@dataclass(frozen=True)
class ModifyStep:
    account: str
    order: OrderRef
    qty: int | None = None  # the new total quantity, unsigned
    price: Decimal | None = None
    stop: Decimal | None = None


@dataclass(frozen=True)
class CancelStep:
    account: str
    order: OrderRef


@dataclass(frozen=True)
class WorkingSpec:
    """One order a ``working`` expectation lists: ``qty`` is the unsigned quantity left."""

    side: str
    order_type: str
    qty: int
    price: Decimal | None = None
    stop: Decimal | None = None

    def key(self) -> tuple[str, str, int, Decimal, Decimal]:
        """For sorting (the expected list and the actual one are compared in any order)."""
        none = Decimal(0)
        return self.side, self.order_type, self.qty, self.price or none, self.stop or none

    def shown(self) -> dict[str, Any]:
        """As a report shows it: the file's keys, prices as numbers."""
        shown: dict[str, Any] = {"side": self.side, "type": self.order_type, "qty": self.qty}
        if self.price is not None:
            shown["price"] = float(self.price)
        if self.stop is not None:
            shown["stop"] = float(self.stop)
        return shown


@dataclass(frozen=True)
class _Placed:
    """An order id as its step declared it: whose it is and the type of each part it has."""

    account: str
    oco: bool
    parts: Mapping[LegRole | None, OrderType]  # None: the order itself (not for an OCO pair)


@dataclass
class OrderIds:
    """The order ids the steps declared so far, in file order. A step with a problem still
    declares its id (``None``: its parts unknown), so what refers to it is not wrong too."""

    known: dict[str, _Placed | None] = field(default_factory=dict)

    def note(self, action: str, raw: object, parsed: object) -> None:
        """After an ``order`` or ``oco`` step, read (``parsed``) or not (``None``)."""
        if isinstance(parsed, OrderStep):
            parts: dict[LegRole | None, OrderType] = {None: parsed.order_type}
            if parsed.bracket_stop is not None:
                parts[LegRole.STOP] = OrderType.STOP
            if parsed.bracket_target is not None:
                parts[LegRole.TARGET] = OrderType.LIMIT
            self.known[parsed.id] = _Placed(parsed.account, False, parts)
        elif isinstance(parsed, OcoStep):
            oco_parts: dict[LegRole | None, OrderType] = {
                LegRole.STOP: OrderType.STOP,
                LegRole.TARGET: OrderType.LIMIT,
            }
            self.known[parsed.id] = _Placed(parsed.account, True, oco_parts)
        elif action in ORDER_ACTIONS and isinstance(raw, dict):
            ident = raw.get("id")
            if isinstance(ident, str) and ident and ident not in self.known:
                self.known[ident] = None

    def check_new(self, value: object, where: Where) -> str:
        ident = as_id(value, where)
        if ident in self.known:
            raise Invalid(where, f'order "{ident}" is declared twice')
        return ident

    def resolve(
        self, value: object, where: Where, account: str | None
    ) -> tuple[OrderRef, OrderType | None, bool]:
        """The order or leg ``value`` names, the type of that part (``None``: unknown, its step
        had a problem) and whether it is an OCO pair as a whole."""
        text = as_id(value, where)
        ident, leg = text, None
        if text not in self.known:
            base, _, suffix = text.rpartition(".")
            if base and suffix in (LegRole.STOP.value, LegRole.TARGET.value):
                ident, leg = base, LegRole(suffix)
        if ident not in self.known:
            raise Invalid(
                where,
                f"{show(text)} is not an order an earlier order or oco step declared "
                "(ID, or ID.stop / ID.target for a leg)",
            )
        placed = self.known[ident]
        ref = OrderRef(ident, leg)
        if placed is None:
            return ref, None, False
        if placed.oco and leg is None:
            return ref, None, True
        if account is not None and placed.account != account:
            raise Invalid(where, f"order \"{ident}\" is {placed.account}'s, not {account}'s")
        if leg not in placed.parts:
            kind = "OCO pair" if placed.oco else "order"
            has = "no bracket" if len(placed.parts) == 1 else f"no {leg} leg"
            raise Invalid(where, f'{kind} "{ident}" has {has}')
        return ref, placed.parts[leg], False


def _side_qty_symbol(
    tbl: Mapping[str, Any], where: Where, declared: Declared, problems: Problems
) -> tuple[str | None, str | None, int | None, str | None]:
    account = problems.check(
        as_ref, tbl["account"], where.key("account"), declared.accounts, "account"
    )
    symbol = problems.check(as_symbol, tbl["symbol"], where.key("symbol"), declared.contracts)
    side = problems.check(as_choice, tbl["side"], where.key("side"), SIDES)
    qty = problems.check(as_positive_int, tbl["qty"], where.key("qty"))
    return account, symbol, qty, side


def _price(tbl: Mapping[str, Any], name: str, where: Where, problems: Problems) -> Decimal | None:
    if name not in tbl:
        return None
    return problems.check(as_positive, tbl[name], where.key(name))


def _read(tbl: Mapping[str, Any], price: Decimal | None, stop: Decimal | None) -> bool:
    """Whether the prices the table gives were read (a wrong one is reported on its own)."""
    return ("price" in tbl) == (price is not None) and ("stop" in tbl) == (stop is not None)


def _terms(
    order_type: OrderType, price: Decimal | None, stop: Decimal | None, where: Where
) -> None:
    """``check_terms`` (brokers.base), its problem placed at the key it is about."""
    problem = check_terms(order_type, price, stop)
    if problem is not None:
        name = problem.rsplit(" ", 1)[-1]
        raise Invalid(where.key(name) if name in ("price", "stop") else where, problem)


def parse_order(raw: object, where: Where, declared: Declared) -> OrderStep:
    tbl = table(raw, where)
    keys = ("account", "id", "symbol", "side", "qty", "type", "price", "stop", "bracket")
    check_keys(tbl, where, keys, keys[:6])
    problems = Problems()
    ident = problems.check(declared.orders.check_new, tbl["id"], where.key("id"))
    account, symbol, qty, side = _side_qty_symbol(tbl, where, declared, problems)
    kind = problems.check(as_choice, tbl["type"], where.key("type"), ORDER_TYPES)
    price = _price(tbl, "price", where, problems)
    stop = _price(tbl, "stop", where, problems)
    if kind is not None and _read(tbl, price, stop):
        problems.check(_terms, OrderType(kind), price, stop, where)
    legs: dict[str, Decimal | None] = {}
    if "bracket" in tbl:
        bracket_where = where.key("bracket")
        bracket = problems.check(table, tbl["bracket"], bracket_where) or {}
        problems.check(check_keys, bracket, bracket_where, ("stop", "target"))
        if not problems.found and not bracket:
            problems.add(bracket_where, "needs a stop or a target (or both)")
        for name in ("stop", "target"):
            legs[name] = _price(bracket, name, bracket_where, problems)
    problems.raise_any()
    assert ident and account and symbol and side and qty and kind  # each read, or raised above
    return OrderStep(
        account,
        ident,
        symbol,
        side,
        qty,
        OrderType(kind),
        price,
        stop,
        legs.get("stop"),
        legs.get("target"),
    )


def parse_oco(raw: object, where: Where, declared: Declared) -> OcoStep:
    tbl = table(raw, where)
    keys = ("account", "id", "symbol", "side", "qty", "stop", "target")
    check_keys(tbl, where, keys, keys)
    problems = Problems()
    ident = problems.check(declared.orders.check_new, tbl["id"], where.key("id"))
    account, symbol, qty, side = _side_qty_symbol(tbl, where, declared, problems)
    stop = _price(tbl, "stop", where, problems)
    target = _price(tbl, "target", where, problems)
    problems.raise_any()
    assert ident and account and symbol and side and qty and stop and target
    return OcoStep(account, ident, symbol, side, qty, stop, target)


def _owner_ref(
    tbl: Mapping[str, Any], where: Where, declared: Declared, problems: Problems
) -> tuple[str | None, tuple[OrderRef, OrderType | None, bool] | None]:
    account = problems.check(
        as_ref, tbl["account"], where.key("account"), declared.accounts, "account"
    )
    found = problems.check(declared.orders.resolve, tbl["order"], where.key("order"), account)
    return account, found


def parse_modify(raw: object, where: Where, declared: Declared) -> ModifyStep:
    tbl = table(raw, where)
    check_keys(tbl, where, ("account", "order", "price", "stop", "qty"), ("account", "order"))
    problems = Problems()
    account, found = _owner_ref(tbl, where, declared, problems)
    qty = None
    if "qty" in tbl:
        qty = problems.check(as_positive_int, tbl["qty"], where.key("qty"))
    price = _price(tbl, "price", where, problems)
    stop = _price(tbl, "stop", where, problems)
    if not {"qty", "price", "stop"} & tbl.keys():
        problems.add(where, "changes nothing (give price, stop or qty)")
    if found is not None:
        ref, order_type, pair = found
        if pair:
            problems.add(
                where.key("order"),
                f'"{ref.id}" is an OCO pair: modify one of its orders, '
                f'"{ref.id}.stop" or "{ref.id}.target"',
            )
        elif order_type is not None:
            lacks = [
                n for n, has in (("price", _has_price), ("stop", _has_stop)) if not has(order_type)
            ]
            for name in lacks:
                if name in tbl:
                    problems.add(
                        where.key(name), f'"{ref}" is a {order_type.value} order: it has no {name}'
                    )
    problems.raise_any()
    assert account and found
    return ModifyStep(account, found[0], qty, price, stop)


def parse_cancel(raw: object, where: Where, declared: Declared) -> CancelStep:
    tbl = table(raw, where)
    check_keys(tbl, where, ("account", "order"), ("account", "order"))
    problems = Problems()
    account, found = _owner_ref(tbl, where, declared, problems)
    problems.raise_any()
    assert account and found
    return CancelStep(account, found[0])


def _has_price(order_type: OrderType) -> bool:
    return order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)


def _has_stop(order_type: OrderType) -> bool:
    return order_type in (OrderType.STOP, OrderType.STOP_LIMIT)


def parse_working(raw: object, where: Where) -> tuple[WorkingSpec, ...]:
    """A ``working`` expectation: the orders that work in its symbol, in any order; ``[]``: none."""
    if not isinstance(raw, list):
        shape = "{ side, type, qty, price?, stop? }"
        raise Invalid(where, f"must be an array of orders ({shape}), not {show(raw)}")
    problems = Problems()
    found = (problems.check(_working, item, where.item(n)) for n, item in enumerate(raw, start=1))
    specs = tuple(sorted((spec for spec in found if spec is not None), key=WorkingSpec.key))
    problems.raise_any()
    return specs


def _working(raw: object, where: Where) -> WorkingSpec:
    tbl = table(raw, where)
    check_keys(tbl, where, ("side", "type", "qty", "price", "stop"), ("side", "type", "qty"))
    problems = Problems()
    side = problems.check(as_choice, tbl["side"], where.key("side"), SIDES)
    kind = problems.check(as_choice, tbl["type"], where.key("type"), WORKING_TYPES)
    qty = problems.check(as_positive_int, tbl["qty"], where.key("qty"))
    price = _price(tbl, "price", where, problems)
    stop = _price(tbl, "stop", where, problems)
    if kind is not None and _read(tbl, price, stop):
        problems.check(_terms, OrderType(kind), price, stop, where)
    problems.raise_any()
    assert side and kind and qty
    return WorkingSpec(side, kind, qty, price, stop)


ORDER_STEPS = {
    "order": parse_order,
    "oco": parse_oco,
    "modify": parse_modify,
    "cancel": parse_cancel,
}


@dataclass(frozen=True)
class Declared:
    """What the setup declared, for checking the references steps make."""

    contracts: ContractTable
    connections: frozenset[str]
    accounts: frozenset[str]
    groups: frozenset[str]
    start: datetime
    orders: OrderIds = field(default_factory=OrderIds)  # declared by the steps read so far

    def ids(self, kind: str) -> frozenset[str]:
        kinds = {"connection": self.connections, "account": self.accounts, "group": self.groups}
        return kinds[kind]
