"""Expectations of a scenario (SCENARIOS.md, "Expectations"): what each key reads and compares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from brokers.base import OrderType, WorkingOrder
from engine.core.engine import Engine
from engine.domain.activity import Kind
from engine.replay.scenario import Expectation, WorkingSpec

# An account's working orders at its broker, as the broker itself reports them.
WorkingOrders = Callable[[str], list[WorkingOrder]]

TOLERANCE = Decimal("0.005")
FIGURES = (
    "daily_pnl",
    "weekly_pnl",
    "realized_daily",
    "unrealized",
    "balance",
    "equity",
    "high_water",
    "threshold",  # S9.3: none without max_loss, and then no number matches it
    "commissions",  # S9.1: all an account was charged, and it starts with none
)
# Figures the risk actor keeps; the rest are the account's book.
RISK_FIGURES = ("high_water", "threshold")


@dataclass(frozen=True)
class Failure:
    step: int
    check: str
    expected: Any
    actual: Any


def evaluate(
    engine: Engine, step: int, expect: Expectation, working: WorkingOrders | None = None
) -> list[Failure]:
    """The failed checks of ``expect``; ``working`` reads what works at the broker."""
    engine.wait_idle()
    failures: list[Failure] = []
    for key, expected in expect.checks:
        if expect.subject == "account":
            name, actual, ok = _account(engine, expect, key, expected, working)
        elif expect.subject == "connection":
            name, actual, ok = _connection(engine, expect, key, expected)
        else:
            name, actual, ok = _group(engine, expect, key, expected)
        if not ok:
            failures.append(Failure(step, f"{expect.id}.{name}", _plain(expected), _plain(actual)))
    return failures


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, tuple) and all(isinstance(item, WorkingSpec) for item in value):
        return [item.shown() for item in value]  # a ``working`` list, sorted when read
    if isinstance(value, tuple | frozenset | set):
        return sorted(value)
    return value


def _equal_number(expected: Any, actual: Any) -> bool:
    return isinstance(actual, Decimal) and abs(Decimal(expected) - actual) <= TOLERANCE


def _account(
    engine: Engine, expect: Expectation, key: str, expected: Any, working: WorkingOrders | None
) -> tuple[str, Any, bool]:
    account = expect.id
    exists = account in engine.topology_snapshot().accounts
    if key == "exists":
        return key, exists, exists == expected
    view = engine.account_view(account) if exists else None
    risk = engine.risk_view(account) if exists else None
    if view is None or risk is None:
        return key, "account does not exist", False
    if key == "position":
        symbol = expect.symbol or ""
        actual = view.positions.get(symbol, 0)
        return f"position[{symbol}]", actual, actual == expected
    if key == "drift":  # S10.1: the open episode's drift, 0 inside the grace or when none
        symbol = expect.symbol or ""
        drifting = view.drift.get(symbol, 0)
        return f"drift[{symbol}]", drifting, drifting == expected
    if key == "flat":
        flat = not view.positions
        return key, flat, flat == expected
    if key == "status":
        return key, risk.status.value, risk.status.value == expected
    if key == "lock_reason":
        return key, risk.lock_reason.value, risk.lock_reason.value == expected
    if key in ("copying", "disable_reason"):
        copying, reason = _copying(engine, account, view.connection_state)
        if key == "copying":
            return key, copying, copying == expected
        return key, reason, str(expected) in reason
    if key in FIGURES:
        actual_figure = _figure(view, risk, key)
        return key, actual_figure, _equal_number(expected, actual_figure)
    if key == "orders_sent":
        sent = engine.queries.orders_sent(account)
        return key, sent, sent == expected
    if key == "reconciliations":
        count = engine.queries.reconciliation_count(account)
        return key, count, count == expected
    if key == "last_rejection":
        message = engine.queries.last_message(account, Kind.REJECTION.value)
        last = message or ""
        return key, last, message is not None and str(expected) in last
    if key == "activity":
        return _activity(engine, expect, str(expected))
    if key == "working" and working is not None:
        symbol = expect.symbol or ""
        actual_orders = working_specs(working(account), symbol)
        wanted = sorted(expected, key=WorkingSpec.key)
        same = [o.key() for o in actual_orders] == [o.key() for o in wanted]
        return f"working[{symbol}]", [o.shown() for o in actual_orders], same
    return key, "unknown key", False


def working_specs(orders: list[WorkingOrder], symbol: str) -> list[WorkingSpec]:
    """The orders working in ``symbol`` as a ``working`` expectation lists them, sorted: a
    bracket's legs only once their entry has filled; ``price`` for a limit or a stop-limit,
    ``stop`` for a stop or a stop-limit; the quantity left, unsigned."""
    specs = [
        WorkingSpec(
            "buy" if order.qty > 0 else "sell",
            order.order_type.value,
            abs(order.qty),
            order.price if order.order_type in _PRICED else None,
            order.stop if order.order_type in _STOPPED else None,
        )
        for order in orders
        if order.symbol == symbol and order.active
    ]
    return sorted(specs, key=WorkingSpec.key)


_PRICED = (OrderType.LIMIT, OrderType.STOP_LIMIT)
_STOPPED = (OrderType.STOP, OrderType.STOP_LIMIT)


def _activity(engine: Engine, expect: Expectation, wanted: str) -> tuple[str, Any, bool]:
    rows = engine.queries.activity_of(expect.id, expect.level or None)
    needle = wanted.lower()
    matching = sum(1 for row in rows if row.kind == wanted or needle in row.message.lower())
    name = f"activity[{expect.level}]" if expect.level else "activity"
    if expect.count is not None:
        return f"{name}.count", matching, matching == expect.count
    ok = matching > 0
    actual = "found" if ok else f"no such entry among {len(rows)}"
    return name, actual if not ok else wanted, ok


def _copying(engine: Engine, account: str, connection_state: str) -> tuple[str, str]:
    found = engine.topology_snapshot().membership(account)
    if found is None:
        return "none", ""
    group, _ = found
    view = engine.group_view(group)
    reason = ""
    if view is not None:
        reason = next((m.disable_reason for m in view.members if m.account == account), "")
    if reason:
        return "disabled", reason
    if connection_state != "connected":
        return "paused", reason
    return "active", reason


def _figure(view: Any, risk: Any, key: str) -> Decimal | None:
    value = getattr(risk if key in RISK_FIGURES else view, key, None)
    return value if isinstance(value, Decimal) else None


def _connection(
    engine: Engine, expect: Expectation, key: str, expected: Any
) -> tuple[str, Any, bool]:
    exists = expect.id in engine.topology_snapshot().connections
    if key == "exists":
        return key, exists, exists == expected
    state = engine.connection_state(expect.id) if exists else None
    return key, state or "connection does not exist", state == expected


def _group(engine: Engine, expect: Expectation, key: str, expected: Any) -> tuple[str, Any, bool]:
    config = engine.topology_snapshot().groups.get(expect.id)
    if key == "exists":
        return key, config is not None, (config is not None) == expected
    if config is None:
        return key, "group does not exist", False
    followers = tuple(sorted(m.account for m in config.members))
    return key, followers, followers == tuple(sorted(expected))
