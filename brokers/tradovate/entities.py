"""Tradovate's entities (accounts, contracts, orders, fills, positions, quotes) as typed values.

Each parser takes the decoded JSON of one entity and returns a frozen record, or raises
:class:`EntityError` saying which field is missing or wrong. Extra fields are ignored: the
broker may add fields at will, the adapter reads only these.

A ``props`` push carries one entity or an array of them (:func:`props`). The answer to
``user/syncrequest`` must hold every list the adapter reads (:data:`SYNC_KEYS`, asked for by
entity type in :data:`SYNC_ENTITY_TYPES`): an answer without one of them is not an empty
account, it is no answer (:func:`sync_data` raises). A split answer's parts are merged first
(:func:`merge_sync_parts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from brokers.base import OrderStatus


class EntityError(ValueError):
    """An entity that is not shaped as Tradovate's."""


def _obj(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise EntityError(f"{what}: not a JSON object")
    return data


def _int(data: Mapping[str, Any], key: str, what: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EntityError(f"{what}: {key} is not an integer")
    return value


def _opt_int(data: Mapping[str, Any], key: str, what: str) -> int | None:
    return None if data.get(key) is None else _int(data, key, what)


def _str(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise EntityError(f"{what}: {key} is not a string")
    return value


def _decimal(data: Mapping[str, Any], key: str, what: str) -> Decimal:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise EntityError(f"{what}: {key} is not a number")
    result = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not result.is_finite():
        raise EntityError(f"{what}: {key} is not finite")
    return result


def _time(data: Mapping[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _action(data: Mapping[str, Any], what: str) -> int:
    action = data.get("action")
    if action == "Buy":
        return 1
    if action == "Sell":
        return -1
    raise EntityError(f"{what}: action is neither Buy nor Sell")


@dataclass(frozen=True, slots=True)
class TvAccount:
    id: int
    name: str
    user_id: int | None


def account(data: Any) -> TvAccount:
    d = _obj(data, "account")
    return TvAccount(_int(d, "id", "account"), _str(d, "name", "account"), d.get("userId"))


@dataclass(frozen=True, slots=True)
class TvContract:
    id: int
    name: str


def contract(data: Any) -> TvContract:
    d = _obj(data, "contract")
    return TvContract(_int(d, "id", "contract"), _str(d, "name", "contract"))


@dataclass(frozen=True, slots=True)
class TvProduct:
    name: str
    value_per_point: Decimal
    tick_size: Decimal


def product(data: Any) -> TvProduct:
    d = _obj(data, "product")
    return TvProduct(
        _str(d, "name", "product"),
        _decimal(d, "valuePerPoint", "product"),
        _decimal(d, "tickSize", "product"),
    )


TERMINAL = frozenset({"Canceled", "Completed", "Expired", "Filled", "Rejected"})
SUSPENDED = "Suspended"  # a bracket leg waiting for its entry's fill


@dataclass(frozen=True, slots=True)
class TvOrder:
    id: int
    account_id: int
    contract_id: int | None
    side: int  # +1 buy, -1 sell
    status: str
    parent_id: int | None = None  # a bracket leg (placeOSO): its entry
    oco_id: int | None = None  # the order this one cancels when it fills

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def order(data: Any) -> TvOrder:
    d = _obj(data, "order")
    return TvOrder(
        _int(d, "id", "order"),
        _int(d, "accountId", "order"),
        _opt_int(d, "contractId", "order"),
        _action(d, "order"),
        _str(d, "ordStatus", "order"),
        _opt_int(d, "parentId", "order"),
        _opt_int(d, "ocoId", "order"),
    )


def report_status(status: str) -> OrderStatus:
    """Tradovate's ``ordStatus`` as the engine's :class:`OrderStatus`."""
    if status in ("Filled", "Completed"):
        return OrderStatus.FILLED
    if status in ("Canceled", "Expired"):
        return OrderStatus.CANCELLED
    if status == "Rejected":
        return OrderStatus.REJECTED
    return OrderStatus.WORKING


@dataclass(frozen=True, slots=True)
class TvOrderVersion:
    """One version of an order's terms: the first, then one per modification (a higher id)."""

    order_id: int
    qty: int
    order_type: str
    id: int = 0
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = ""


def _opt_decimal(d: Mapping[str, Any], key: str, what: str) -> Decimal | None:
    return None if d.get(key) is None else _decimal(d, key, what)


def order_version(data: Any) -> TvOrderVersion:
    d = _obj(data, "orderVersion")
    return TvOrderVersion(
        _int(d, "orderId", "orderVersion"),
        _int(d, "orderQty", "orderVersion"),
        str(d.get("orderType", "")),
        _opt_int(d, "id", "orderVersion") or 0,
        _opt_decimal(d, "price", "orderVersion"),
        _opt_decimal(d, "stopPrice", "orderVersion"),
        str(d.get("timeInForce") or ""),
    )


@dataclass(frozen=True, slots=True)
class TvExecutionReport:
    """What happened to an order (``execType``) and its status after it. Read only for the
    status: the ``order`` push says the same, a report may come without it."""

    order_id: int
    exec_type: str
    status: str


def execution_report(data: Any) -> TvExecutionReport | None:
    """An ``executionReport``, or ``None`` when it names no order or no status (such reports
    carry nothing the adapter uses)."""
    d = _obj(data, "executionReport")
    order_id, status = d.get("orderId"), d.get("ordStatus")
    if isinstance(order_id, bool) or not isinstance(order_id, int):
        return None
    if not isinstance(status, str) or not status:
        return None
    return TvExecutionReport(order_id, str(d.get("execType") or ""), status)


@dataclass(frozen=True, slots=True)
class TvCommand:
    order_id: int
    cl_ord_id: str | None
    command_type: str


def command(data: Any) -> TvCommand:
    d = _obj(data, "command")
    cl = d.get("clOrdId")
    return TvCommand(
        _int(d, "orderId", "command"),
        cl if isinstance(cl, str) and cl else None,
        str(d.get("commandType", "")),
    )


@dataclass(frozen=True, slots=True)
class TvFill:
    id: int
    order_id: int
    contract_id: int
    qty: int  # signed
    price: Decimal
    timestamp: datetime | None
    active: bool = True  # False: the broker withdrew it (a correction)


def fill(data: Any) -> TvFill:
    d = _obj(data, "fill")
    qty = _int(d, "qty", "fill")
    if qty <= 0:
        raise EntityError("fill: qty must be positive")
    active = d.get("active")
    if active is not None and not isinstance(active, bool):
        raise EntityError("fill: active is not a boolean")
    return TvFill(
        _int(d, "id", "fill"),
        _int(d, "orderId", "fill"),
        _int(d, "contractId", "fill"),
        qty * _action(d, "fill"),
        _decimal(d, "price", "fill"),
        _time(d, "timestamp"),
        active is not False,
    )


@dataclass(frozen=True, slots=True)
class TvPosition:
    account_id: int
    contract_id: int
    net_pos: int
    net_price: Decimal | None


def position(data: Any) -> TvPosition:
    d = _obj(data, "position")
    net_price = None if d.get("netPrice") is None else _decimal(d, "netPrice", "position")
    return TvPosition(
        _int(d, "accountId", "position"),
        _int(d, "contractId", "position"),
        _int(d, "netPos", "position"),
        net_price,
    )


EVENT_TYPES = frozenset({"Created", "Updated", "Deleted"})


@dataclass(frozen=True, slots=True)
class Props:
    """One ``props`` push: entities of one type created, updated or deleted. ``entities`` are
    still raw JSON objects (their parser depends on ``entity_type``)."""

    entity_type: str
    event_type: str
    entities: tuple[Mapping[str, Any], ...]


def props(data: Any) -> Props:
    """A ``props`` event's ``d``; its ``entity`` may be one object or an array of them."""
    d = _obj(data, "props")
    raw = d.get("entity")
    items = raw if isinstance(raw, list) else [raw]
    event = d.get("eventType")
    if event is not None and not isinstance(event, str):
        raise EntityError("props: eventType is not a string")
    return Props(
        _str(d, "entityType", "props"),
        event or "",
        tuple(_obj(item, "props entity") for item in items),
    )


@dataclass(frozen=True, slots=True)
class SyncData:
    """The answer to ``user/syncrequest``: what the user's accounts hold now."""

    accounts: tuple[TvAccount, ...]
    contracts: tuple[TvContract, ...]
    positions: tuple[TvPosition, ...]
    orders: tuple[TvOrder, ...]
    versions: tuple[TvOrderVersion, ...]
    commands: tuple[TvCommand, ...]
    fills: tuple[TvFill, ...]


# What the adapter reads from a sync answer: the entity types it asks for, and their lists.
SYNC_ENTITY_TYPES: dict[str, str] = {
    "account": "accounts",
    "contract": "contracts",
    "position": "positions",
    "order": "orders",
    "orderVersion": "orderVersions",
    "command": "commands",
    "fill": "fills",
}
SYNC_KEYS = frozenset(SYNC_ENTITY_TYPES.values())


def sync_missing(data: Any) -> list[str]:
    """The lists the adapter reads that ``data`` (a sync answer, or its parts so far) lacks."""
    if not isinstance(data, Mapping):
        return sorted(SYNC_KEYS)
    return sorted(key for key in SYNC_KEYS if key not in data)


def merge_sync_parts(parts: list[Any]) -> Any:
    """One answer from the parts of a split one (``splitResponses``): each part an object with
    some of the lists; a list met twice is continued. A single part is returned as it is (so
    a part that is not an object stays what it is and is refused as such)."""
    if len(parts) == 1:
        return parts[0]
    merged: dict[str, Any] = {}
    for part in parts:
        if not isinstance(part, Mapping):
            raise EntityError("user/syncrequest answer: a part is not a JSON object")
        for key, value in part.items():
            if isinstance(value, list) and isinstance(merged.get(key), list):
                merged[key] = [*merged[key], *value]
            else:
                merged[key] = value
    return merged


def sync_data(data: Any) -> SyncData:
    """A sync answer; every list of :data:`SYNC_KEYS` must be there (``null`` is empty)."""
    d = _obj(data, "user/syncrequest answer")
    missing = sync_missing(d)
    if missing:
        raise EntityError(f"user/syncrequest answer: no {', '.join(missing)}")

    def many(key: str) -> list[Any]:
        value = d.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise EntityError(f"user/syncrequest answer: {key} is not a list")
        return value

    return SyncData(
        tuple(account(a) for a in many("accounts")),
        tuple(contract(c) for c in many("contracts")),
        tuple(position(p) for p in many("positions")),
        tuple(order(o) for o in many("orders")),
        tuple(order_version(v) for v in many("orderVersions")),
        tuple(command(c) for c in many("commands")),
        tuple(fill(f) for f in many("fills")),
    )


@dataclass(frozen=True, slots=True)
class TvQuote:
    contract_id: int
    trade: Decimal | None
    timestamp: datetime | None


def quotes(data: Any) -> list[TvQuote]:
    d = _obj(data, "md")
    items = d.get("quotes") or []
    if not isinstance(items, list):
        raise EntityError("md: quotes is not a list")
    out: list[TvQuote] = []
    for item in items:
        q = _obj(item, "quote")
        entries = q.get("entries") or {}
        trade = entries.get("Trade") if isinstance(entries, Mapping) else None
        price = (
            _decimal(trade, "price", "quote Trade")
            if isinstance(trade, Mapping) and trade.get("price") is not None
            else None
        )
        out.append(TvQuote(_int(q, "contractId", "quote"), price, _time(q, "timestamp")))
    return out
