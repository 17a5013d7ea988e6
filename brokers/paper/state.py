"""The paper broker's state file: what a file-backed :class:`PaperBroker` keeps across processes.

A real broker outlives the engine that talks to it; a paper broker embedded in the engine's
process dies with it. Given a state file, the paper broker loads its book from it at
construction and writes it after every change, before the events of that change reach any sink,
so whatever an engine saw the file already has. Writes replace the file atomically (a temporary
file in the same directory, then ``os.replace``), so a ``kill -9`` leaves the previous or the
next state, never a torn one. No ``fsync``: the process may die, the machine is not expected to.

The format is one JSON object (``version`` 1). Decimals are strings; quantities are ints. Keys
added since version 1 began (a working order's prices, time in force, links and fills, an order
report's filled quantity, ``fail_snapshot``, ``orders``) may be absent from an older file and
read as their defaults.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from brokers.base import LegRole, OrderReport, OrderStatus, OrderType, TimeInForce
from brokers.paper.book import PaperBrokerError, PaperOrder, Position

VERSION = 1


@dataclass(frozen=True, slots=True)
class DuplicateRejection:
    """An order the broker refused because its client order id was accepted before."""

    client_order_id: str
    account: str
    connection: str
    time: str  # ISO 8601, from the broker's clock


@dataclass(slots=True)
class PaperState:
    """Everything the file holds; the broker copies it in at load and out at every save."""

    order_seq: int = 0
    fill_seq: int = 0
    token_seq: int = 0
    accounts: dict[str, str] = field(default_factory=dict)  # account -> connection
    prices: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, dict[str, Position]] = field(default_factory=dict)
    working: list[PaperOrder] = field(default_factory=list)  # in the order accepted
    held: list[str] = field(default_factory=list)  # connections whose engine orders rest
    held_queue: dict[str, list[str]] = field(default_factory=dict)  # connection -> order ids
    reject_next: dict[str, int] = field(default_factory=dict)
    fail_snapshot: dict[str, int] = field(default_factory=dict)  # connection -> failures left
    links_down: list[str] = field(default_factory=list)
    tokens_invalid: list[str] = field(default_factory=list)
    client_order_ids: list[str] = field(default_factory=list)  # accepted (two days), in order
    duplicate_rejections: list[DuplicateRejection] = field(default_factory=list)
    # Every engine order the broker has seen, by account: what a snapshot reports (S2.6).
    orders: list[tuple[str, OrderReport]] = field(default_factory=list)


def encode(state: PaperState) -> dict[str, Any]:
    return {
        "version": VERSION,
        "order_seq": state.order_seq,
        "fill_seq": state.fill_seq,
        "token_seq": state.token_seq,
        "accounts": dict(sorted(state.accounts.items())),
        "prices": {symbol: str(price) for symbol, price in sorted(state.prices.items())},
        "positions": {
            account: {
                symbol: {"qty": pos.qty, "avg_price": str(pos.avg_price)}
                for symbol, pos in sorted(held.items())
            }
            for account, held in sorted(state.positions.items())
        },
        "working": [
            {
                "broker_order_id": order.broker_order_id,
                "client_order_id": order.client_order_id,
                "connection": order.connection,
                "account": order.account,
                "symbol": order.symbol,
                "qty": order.qty,
                "order_type": order.order_type.value,
                "price": None if order.price is None else str(order.price),
                "stop": None if order.stop is None else str(order.stop),
                "tif": order.tif.value,
                "role": None if order.role is None else order.role.value,
                "parent": order.parent,
                "oco": order.oco,
                "active": order.active,
                "filled": order.filled,
                "triggered": order.triggered,
            }
            for order in state.working
        ],
        "held": sorted(state.held),
        "held_queue": {c: list(ids) for c, ids in sorted(state.held_queue.items()) if ids},
        "reject_next": {c: n for c, n in sorted(state.reject_next.items()) if n > 0},
        "fail_snapshot": {c: n for c, n in sorted(state.fail_snapshot.items()) if n > 0},
        "links_down": sorted(state.links_down),
        "tokens_invalid": sorted(state.tokens_invalid),
        "client_order_ids": list(state.client_order_ids),
        "duplicate_rejections": [
            {
                "client_order_id": d.client_order_id,
                "account": d.account,
                "connection": d.connection,
                "time": d.time,
            }
            for d in state.duplicate_rejections
        ],
        "orders": [
            {
                "account": account,
                "client_order_id": report.client_order_id,
                "broker_order_id": report.broker_order_id,
                "status": report.status.value,
                "filled": report.filled,
            }
            for account, report in state.orders
        ],
    }


def decode(data: Any) -> PaperState:
    """The state in ``data`` (parsed JSON); raises ``KeyError``/``TypeError``/``ValueError``."""
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    if data.get("version") != VERSION:
        raise ValueError(f"unknown version {data.get('version')!r}")
    return PaperState(
        order_seq=_int(data["order_seq"]),
        fill_seq=_int(data["fill_seq"]),
        token_seq=_int(data["token_seq"]),
        accounts={_str(a): _str(c) for a, c in data["accounts"].items()},
        prices={_str(s): _decimal(p) for s, p in data["prices"].items()},
        positions={
            _str(account): {
                _str(symbol): Position(_int(pos["qty"]), _decimal(pos["avg_price"]))
                for symbol, pos in held.items()
            }
            for account, held in data["positions"].items()
        },
        working=[_order(o) for o in data["working"]],
        held=[_str(c) for c in data["held"]],
        held_queue={_str(c): [_str(i) for i in ids] for c, ids in data["held_queue"].items()},
        reject_next={_str(c): _int(n) for c, n in data["reject_next"].items()},
        fail_snapshot={  # absent from files written before snapshots could be made to fail
            _str(c): _int(n) for c, n in data.get("fail_snapshot", {}).items()
        },
        links_down=[_str(c) for c in data["links_down"]],
        tokens_invalid=[_str(c) for c in data["tokens_invalid"]],
        client_order_ids=[_str(c) for c in data["client_order_ids"]],
        duplicate_rejections=[
            DuplicateRejection(
                _str(d["client_order_id"]),
                _str(d["account"]),
                _str(d["connection"]),
                _str(d["time"]),
            )
            for d in data["duplicate_rejections"]
        ],
        orders=[  # absent from files written before orders were reported
            (
                _str(o["account"]),
                OrderReport(
                    _str(o["client_order_id"]),
                    None if o["broker_order_id"] is None else _str(o["broker_order_id"]),
                    OrderStatus(o["status"]),
                    _int(o.get("filled", 0)),
                ),
            )
            for o in data.get("orders", [])
        ],
    )


def _order(o: Any) -> PaperOrder:
    """A resting order; the keys of working orders (S8.10) default for an older file."""
    role = o.get("role")
    return PaperOrder(
        _str(o["broker_order_id"]),
        _optional(o["client_order_id"]),
        _str(o["connection"]),
        _str(o["account"]),
        _str(o["symbol"]),
        _int(o["qty"]),
        OrderType(o["order_type"]),
        price=None if o.get("price") is None else _decimal(o["price"]),
        stop=None if o.get("stop") is None else _decimal(o["stop"]),
        tif=TimeInForce(o.get("tif", TimeInForce.DAY.value)),
        role=None if role is None else LegRole(role),
        parent=_optional(o.get("parent")),
        oco=_optional(o.get("oco")),
        active=_bool(o.get("active", True)),
        filled=_int(o.get("filled", 0)),
        triggered=_bool(o.get("triggered", False)),
    )


def read(path: Path) -> PaperState | None:
    """The state in ``path``; ``None`` when there is no such file (a broker never used)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PaperBrokerError(f"cannot read paper broker state {path}: {error}") from None
    try:
        return decode(json.loads(text))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise PaperBrokerError(
            f"{path} is not a paper broker state file: {type(error).__name__}: {error}"
        ) from None


def write(path: Path, state: PaperState) -> None:
    """Replace ``path`` with ``state`` atomically (temporary file beside it, ``os.replace``)."""
    text = json.dumps(encode(state), separators=(",", ":"))
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{value!r} is not a boolean")
    return value


def _optional(value: Any) -> str | None:
    return None if value is None else _str(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _decimal(value: Any) -> Decimal:
    try:
        result = Decimal(_str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal") from None
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal")
    return result
