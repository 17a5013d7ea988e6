"""The ``[[step]]`` entries of a scenario file: their model and their validation (SCENARIOS.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.domain.copying import CopyMode
from engine.replay.scenario_fields import (
    Invalid,
    Problems,
    Where,
    as_bool,
    as_choice,
    as_count,
    as_duration,
    as_int,
    as_number,
    as_offset_datetime,
    as_positive,
    as_positive_int,
    as_ref,
    as_root,
    as_str,
    as_symbol,
    as_true,
    check_keys,
    show,
    table,
)
from engine.replay.scenario_orders import ORDER_STEPS, Declared, parse_working
from engine.replay.scenario_risk import parse_blackout_step, parse_set_risk

CONNECTION_STATES = ("connected", "disconnected", "reauth_required")
SIDES = ("buy", "sell")
CRASH_ACTORS = ("connection", "account", "group", "risk")
SUBJECTS = ("account", "connection", "group")
MODIFIERS = ("symbol", "level", "count")
PNL_KEYS = (
    "daily_pnl",
    "weekly_pnl",
    "realized_daily",
    "unrealized",
    "balance",
    "equity",
    "high_water",
    "threshold",  # S9.3
    "commissions",  # S9.1
)
LOCK_REASONS = (
    "session_close",
    "risk_breach_daily",
    "risk_breach_weekly",
    "risk_breach_account",
    "manual",
    "",
)
SUBJECT_KEYS: Mapping[str, tuple[str, ...]] = {
    "account": (
        "position",
        "symbol",
        "flat",
        "status",
        "lock_reason",
        "copying",
        "disable_reason",
        *PNL_KEYS,
        "orders_sent",
        "last_rejection",
        "reconciliations",
        "activity",
        "level",
        "count",
        "exists",
        "working",
        "drift",
    ),
    "connection": ("state", "exists"),
    "group": ("exists", "followers"),
}


@dataclass(frozen=True)
class FollowerSpec:
    account: str
    ratio: Decimal = Decimal(1)
    max_qty: int | None = None
    symbol_map: tuple[tuple[str, str], ...] = ()  # (leader root, follower root), sorted
    copy: CopyMode = CopyMode.FILLS  # S8.1


@dataclass(frozen=True)
class PriceStep:
    symbol: str
    last: Decimal


@dataclass(frozen=True)
class TradeStep:
    account: str
    symbol: str
    side: str
    qty: int
    fills: tuple[int, ...]


@dataclass(frozen=True)
class AddFollowerStep:
    group: str
    follower: FollowerSpec


@dataclass(frozen=True)
class RemoveFollowerStep:
    group: str
    account: str


@dataclass(frozen=True)
class RejectNextStep:
    connection: str
    count: int = 1


@dataclass(frozen=True)
class FailSnapshotStep:
    connection: str
    count: int = 1


@dataclass(frozen=True)
class CrashStep:
    actor: str  # connection | account | group | risk
    id: str  # for "risk", an account id


@dataclass(frozen=True)
class Expectation:
    subject: str  # account | connection | group
    id: str
    checks: tuple[tuple[str, object], ...]  # in file order, without the modifiers
    symbol: str | None = None  # with ``position``, ``working`` or ``drift``
    level: str | None = None  # with ``activity``
    count: int | None = None  # with ``activity``: exactly that many entries match


@dataclass(frozen=True)
class Step:
    index: int  # 1-based position in the file's [[step]] list
    action: str
    value: object


def parse_follower(
    tbl: Mapping[str, Any], where: Where, declared: Declared, extra: tuple[str, ...] = ()
) -> FollowerSpec:
    """A follower membership: a ``followers`` entry of a group, or an ``add_follower`` step."""
    keys = (*extra, "account", "ratio", "max_qty", "symbol_map", "copy")
    check_keys(tbl, where, keys, ("account",))
    account = as_ref(tbl["account"], where.key("account"), declared.accounts, "account")
    ratio = Decimal(1)
    if "ratio" in tbl:
        ratio = as_positive(tbl["ratio"], where.key("ratio"))
    max_qty = None
    if "max_qty" in tbl:
        max_qty = as_positive_int(tbl["max_qty"], where.key("max_qty"))
    pairs: list[tuple[str, str]] = []
    if "symbol_map" in tbl:
        map_where = where.key("symbol_map")
        for source, target in table(tbl["symbol_map"], map_where).items():
            as_root(source, map_where, declared.contracts)
            pairs.append((source, as_root(target, map_where.key(source), declared.contracts)))
    copy = CopyMode.FILLS
    if "copy" in tbl:
        copy = CopyMode(as_choice(tbl["copy"], where.key("copy"), [m.value for m in CopyMode]))
    return FollowerSpec(account, ratio, max_qty, tuple(sorted(pairs)), copy)


def parse_steps(steps: list[dict[str, Any]], declared: Declared) -> tuple[Step, ...]:
    """Every step, each checked on its own: the problems of all of them are raised together
    (an invalid step does not move the virtual time)."""
    parsed: list[Step] = []
    problems = Problems()
    now = declared.start
    for index, tbl in enumerate(steps, start=1):
        step = problems.check(_step, index, tbl, now, declared)
        if step is not None:
            parsed.append(step[0])
            now = step[1]
        if len(tbl) == 1:  # an order id is declared by its step, read or not
            ((action, raw),) = tbl.items()
            declared.orders.note(action, raw, step[0].value if step is not None else None)
    problems.raise_any()
    return tuple(parsed)


def _step(
    index: int, tbl: dict[str, Any], now: datetime, declared: Declared
) -> tuple[Step, datetime]:
    where = Where(f"step {index}")
    problems = Problems()
    for name in tbl:
        if name not in ACTIONS:
            problems.add(where.key(name), f"unknown key '{name}' (not an action)")
    problems.raise_any()
    if not tbl:
        raise Invalid(where, "has no action key")
    if len(tbl) > 1:
        raise Invalid(where, f"has more than one action key ({', '.join(tbl)})")
    ((action, raw),) = tbl.items()
    value = ACTIONS[action](raw, where.key(action), declared)
    return Step(index, action, value), _time_after(action, value, now, where.key(action))


def _time_after(action: str, value: object, now: datetime, where: Where) -> datetime:
    """The virtual time after a step; the clock only moves forward, so going back is invalid."""
    if isinstance(value, timedelta):
        try:
            return now + value
        except OverflowError:
            raise Invalid(where, "moves the virtual time past the year 9999") from None
    if action == "advance_to" and isinstance(value, datetime):
        if value < now:
            raise Invalid(
                where,
                f"{value.isoformat()} is before the virtual time at this step ({now.isoformat()})",
            )
        return value
    return now


def _price(raw: object, where: Where, declared: Declared) -> PriceStep:
    tbl = table(raw, where)
    check_keys(tbl, where, ("symbol", "last"), ("symbol", "last"))
    return PriceStep(
        as_symbol(tbl["symbol"], where.key("symbol"), declared.contracts),
        as_positive(tbl["last"], where.key("last")),
    )


def _trade(raw: object, where: Where, declared: Declared) -> TradeStep:
    tbl = table(raw, where)
    keys = ("account", "symbol", "side", "qty", "fills")
    check_keys(tbl, where, keys, keys[:4])
    qty = as_positive_int(tbl["qty"], where.key("qty"))
    fills: tuple[int, ...] = (qty,)
    if "fills" in tbl:
        fills_where = where.key("fills")
        if not isinstance(tbl["fills"], list):
            raise Invalid(fills_where, f"must be an array of quantities, not {show(tbl['fills'])}")
        fills = tuple(
            as_positive_int(part, fills_where.item(number))
            for number, part in enumerate(tbl["fills"], start=1)
        )
        if sum(fills) != qty:
            raise Invalid(fills_where, f"must sum to qty {qty}, not to {sum(fills)}")
    return TradeStep(
        as_ref(tbl["account"], where.key("account"), declared.accounts, "account"),
        as_symbol(tbl["symbol"], where.key("symbol"), declared.contracts),
        as_choice(tbl["side"], where.key("side"), SIDES),
        qty,
        fills,
    )


def _advance(raw: object, where: Where, declared: Declared) -> timedelta:
    return as_duration(raw, where)


def _advance_to(raw: object, where: Where, declared: Declared) -> datetime:
    instant = as_offset_datetime(raw, where)
    if instant < declared.start:
        raise Invalid(
            where,
            f"{instant.isoformat()} is before the scenario start {declared.start.isoformat()}",
        )
    return instant


def _ref_action(kind: str) -> Callable[[object, Where, Declared], str]:
    def parse(raw: object, where: Where, declared: Declared) -> str:
        return as_ref(raw, where, declared.ids(kind), kind)

    return parse


def _flag(raw: object, where: Where, declared: Declared) -> bool:
    return as_true(raw, where)


def _add_follower(raw: object, where: Where, declared: Declared) -> AddFollowerStep:
    tbl = table(raw, where)
    keys = ("group", "account", "ratio", "max_qty", "symbol_map", "copy")
    check_keys(tbl, where, keys, ("group",))
    group = as_ref(tbl["group"], where.key("group"), declared.groups, "group")
    return AddFollowerStep(group, parse_follower(tbl, where, declared, extra=("group",)))


def _remove_follower(raw: object, where: Where, declared: Declared) -> RemoveFollowerStep:
    tbl = table(raw, where)
    check_keys(tbl, where, ("group", "account"), ("group", "account"))
    return RemoveFollowerStep(
        as_ref(tbl["group"], where.key("group"), declared.groups, "group"),
        as_ref(tbl["account"], where.key("account"), declared.accounts, "account"),
    )


def _reject_next(raw: object, where: Where, declared: Declared) -> RejectNextStep:
    tbl = table(raw, where)
    check_keys(tbl, where, ("connection", "count"), ("connection",))
    connection = as_ref(
        tbl["connection"], where.key("connection"), declared.connections, "connection"
    )
    count = as_positive_int(tbl["count"], where.key("count")) if "count" in tbl else 1
    return RejectNextStep(connection, count)


def _fail_snapshot(raw: object, where: Where, declared: Declared) -> FailSnapshotStep:
    tbl = table(raw, where)
    check_keys(tbl, where, ("connection", "count"), ("connection",))
    connection = as_ref(
        tbl["connection"], where.key("connection"), declared.connections, "connection"
    )
    count = as_positive_int(tbl["count"], where.key("count")) if "count" in tbl else 1
    return FailSnapshotStep(connection, count)


def _crash(raw: object, where: Where, declared: Declared) -> CrashStep:
    tbl = table(raw, where)
    check_keys(tbl, where, ("actor", "id"), ("actor", "id"))
    actor = as_choice(tbl["actor"], where.key("actor"), CRASH_ACTORS)
    kind = "account" if actor == "risk" else actor
    return CrashStep(actor, as_ref(tbl["id"], where.key("id"), declared.ids(kind), kind))


def _followers(raw: object, where: Where, declared: Declared) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise Invalid(where, f"must be an array of account ids, not {show(raw)}")
    ids = (
        as_ref(item, where.item(number), declared.accounts, "account")
        for number, item in enumerate(raw, start=1)
    )
    return tuple(sorted(set(ids)))


def _check(key: str, raw: object, where: Where, declared: Declared) -> object:
    """The expected value of one check key, in the type the harness compares against."""
    if key in PNL_KEYS:
        return as_number(raw, where)
    if key in ("flat", "exists"):
        return as_bool(raw, where)
    if key in ("orders_sent", "reconciliations", "count"):
        return as_count(raw, where)
    if key in ("disable_reason", "last_rejection", "activity"):
        return as_str(raw, where)
    choices = {
        "status": ("OK", "LIQUIDATE_ONLY", "LOCKED"),
        "lock_reason": LOCK_REASONS,
        "copying": ("disabled", "paused", "active", "none"),
        "state": CONNECTION_STATES,
        "level": ("info", "warning", "error"),
    }
    if key in choices:
        return as_choice(raw, where, choices[key])
    if key == "symbol":
        return as_symbol(raw, where, declared.contracts)
    if key == "followers":
        return _followers(raw, where, declared)
    if key == "working":
        return parse_working(raw, where)
    return as_int(raw, where)  # position, drift: net quantity, may be 0 or negative


def _expect(raw: object, where: Where, declared: Declared) -> Expectation:
    tbl = table(raw, where)
    subjects = [name for name in tbl if name in SUBJECTS]
    if not subjects:
        raise Invalid(where, "names no subject (account, connection or group)")
    if len(subjects) > 1:
        raise Invalid(where, f"names more than one subject ({', '.join(subjects)})")
    subject = subjects[0]
    ident = as_ref(tbl[subject], where.key(subject), declared.ids(subject), subject)
    allowed = SUBJECT_KEYS[subject]
    values: dict[str, object] = {}
    problems = Problems()
    for key, value in tbl.items():
        if key == subject:
            continue
        if key not in allowed:
            what = f"{'an' if subject == 'account' else 'a'} {subject} expectation"
            known = any(key in keys for keys in SUBJECT_KEYS.values())
            problem = (
                f"'{key}' is not a key {what} has" if known else f"unknown key '{key}' in {what}"
            )
            problems.add(where.key(key), f"{problem} (it has: {', '.join(allowed)})")
            continue
        checked = problems.check(_check, key, value, where.key(key), declared)
        if checked is not None:
            values[key] = checked
    problems.raise_any()
    by_symbol = [key for key in ("position", "working", "drift") if key in values]
    if "symbol" in values and not by_symbol:
        raise Invalid(where.key("symbol"), "needs position, working or drift with it")
    if by_symbol and "symbol" not in values:
        raise Invalid(where.key(by_symbol[0]), "needs symbol with it")
    for modifier in ("level", "count"):
        if modifier in values and "activity" not in values:
            raise Invalid(where.key(modifier), "needs activity with it")
    checks = tuple((key, value) for key, value in values.items() if key not in MODIFIERS)
    if not checks:
        raise Invalid(where, f"checks nothing (keys: {', '.join(allowed)})")
    symbol, level, count = values.get("symbol"), values.get("level"), values.get("count")
    return Expectation(
        subject,
        ident,
        checks,
        symbol if isinstance(symbol, str) else None,
        level if isinstance(level, str) else None,
        count if isinstance(count, int) else None,
    )


ACTIONS: Mapping[str, Callable[[object, Where, Declared], object]] = {
    "price": _price,
    "trade": _trade,
    "advance": _advance,
    "advance_to": _advance_to,
    **{
        action: _ref_action("connection")
        for action in (
            "disconnect",
            "take_offline",
            "reconnect",
            "expire_token",
            "reauthorize",
            "delete_connection",
            "hold",
            "release",
        )
    },
    "flatten_account": _ref_action("account"),
    "flatten_group": _ref_action("group"),
    "flatten_all": _flag,
    "sync": _ref_action("account"),
    "sync_group": _ref_action("group"),
    "lock": _ref_action("account"),
    "unlock": _ref_action("account"),
    "set_risk": parse_set_risk,
    "blackout": parse_blackout_step,
    "add_follower": _add_follower,
    "remove_follower": _remove_follower,
    "reject_next": _reject_next,
    "fail_snapshot": _fail_snapshot,
    "crash": _crash,
    "restart": _flag,
    **ORDER_STEPS,
    "expect": _expect,
}
