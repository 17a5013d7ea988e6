"""Write a scenario (setup and steps) back out as a scenario file, in the SCENARIOS.md format.

The property tests drive the engine through the replay harness with the very step values a
scenario file parses into; when they find a failure, the shrunk sequence is written out with
this module so that ``python -m engine replay FILE`` reproduces it. ``parse_scenario`` of the
text gives back the same setup and steps (a test checks the round trip).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from engine.domain.copying import CopyMode
from engine.domain.sessions import Blackout
from engine.replay.scenario import (
    DEFAULT_BALANCE,
    AddFollowerStep,
    CancelStep,
    CrashStep,
    Expectation,
    FailSnapshotStep,
    FollowerSpec,
    ModifyStep,
    OcoStep,
    OrderStep,
    PriceStep,
    RejectNextStep,
    RemoveFollowerStep,
    Scenario,
    SetRiskStep,
    Step,
    TradeStep,
    WorkingSpec,
)

REGRESSIONS_ENV = "ENGINE_REGRESSIONS_DIR"
REGRESSIONS_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "regressions"


def regressions_dir() -> Path:
    """Where failing sequences are written (``$ENGINE_REGRESSIONS_DIR`` overrides)."""
    override = os.environ.get(REGRESSIONS_ENV)
    return Path(override) if override else REGRESSIONS_DIR


# --- values -------------------------------------------------------------------------------------


def _string(text: str) -> str:
    # A JSON string is a TOML basic string: same quotes, same escapes (\uXXXX included).
    return json.dumps(text, ensure_ascii=False)


def _number(value: Decimal | int) -> str:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        return str(value)
    return format(value.normalize(), "f")


def _value(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int | Decimal):
        return _number(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return _inline(value.items())
    if isinstance(value, WorkingSpec):
        return _inline(value.shown().items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _inline(items: Iterable[tuple[str, object]]) -> str:
    body = ", ".join(f"{key} = {_value(value)}" for key, value in items)
    return "{ " + body + " }" if body else "{}"


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds <= 0 or timedelta(seconds=seconds) != delta:
        raise ValueError(f"advance {delta!r} is not a positive whole number of seconds")
    return f"{seconds}s"


def _follower(spec: FollowerSpec, group: str | None = None) -> dict[str, object]:
    out: dict[str, object] = {}
    if group is not None:
        out["group"] = group
    out["account"] = spec.account
    if spec.ratio != 1:
        out["ratio"] = spec.ratio
    if spec.max_qty is not None:
        out["max_qty"] = spec.max_qty
    if spec.symbol_map:
        out["symbol_map"] = dict(spec.symbol_map)
    if spec.copy is not CopyMode.FILLS:
        out["copy"] = spec.copy.value
    return out


def _priced(items: list[tuple[str, object]], **prices: Decimal | None) -> list[tuple[str, object]]:
    return items + [(name, value) for name, value in prices.items() if value is not None]


def _expectation(expect: Expectation) -> dict[str, object]:
    out: dict[str, object] = {expect.subject: expect.id}
    if expect.symbol is not None:
        out["symbol"] = expect.symbol
    if expect.level is not None:
        out["level"] = expect.level
    if expect.count is not None:
        out["count"] = expect.count
    for key, value in expect.checks:
        out[key] = list(value) if isinstance(value, tuple | frozenset) else value
    return out


def step_value(step: Step) -> str:
    """The TOML value of one step's action."""
    value = step.value
    match value:
        case PriceStep(symbol=symbol, last=last):
            return _inline([("symbol", symbol), ("last", last)])
        case TradeStep():
            items: list[tuple[str, object]] = [
                ("account", value.account),
                ("symbol", value.symbol),
                ("side", value.side),
                ("qty", value.qty),
            ]
            if value.fills != (value.qty,):
                items.append(("fills", list(value.fills)))
            return _inline(items)
        case timedelta():
            return _string(_duration(value))
        case SetRiskStep(account=account, limits=limits):
            return _inline([("account", account), *limits])
        case AddFollowerStep(group=group, follower=follower):
            return _inline(_follower(follower, group).items())
        case RemoveFollowerStep(group=group, account=account):
            return _inline([("group", group), ("account", account)])
        case RejectNextStep(connection=connection, count=count):
            return _inline([("connection", connection), ("count", count)])
        case FailSnapshotStep(connection=connection, count=count):
            return _inline([("connection", connection), ("count", count)])
        case CrashStep(actor=actor, id=ident):
            return _inline([("actor", actor), ("id", ident)])
        case OrderStep():
            items = [
                ("account", value.account),
                ("id", value.id),
                ("symbol", value.symbol),
                ("side", value.side),
                ("qty", value.qty),
                ("type", value.order_type.value),
            ]
            items = _priced(items, price=value.price, stop=value.stop)
            legs = _priced([], stop=value.bracket_stop, target=value.bracket_target)
            if legs:
                items.append(("bracket", dict(legs)))
            return _inline(items)
        case OcoStep():
            return _inline(
                [
                    ("account", value.account),
                    ("id", value.id),
                    ("symbol", value.symbol),
                    ("side", value.side),
                    ("qty", value.qty),
                    ("stop", value.stop),
                    ("target", value.target),
                ]
            )
        case ModifyStep():
            items = [("account", value.account), ("order", str(value.order))]
            if value.qty is not None:
                items.append(("qty", value.qty))
            return _inline(_priced(items, price=value.price, stop=value.stop))
        case CancelStep(account=account, order=order):
            return _inline([("account", account), ("order", str(order))])
        case Blackout(start=start, end=end, label=label):
            return _inline([("start", start), ("end", end), ("label", label)])
        case Expectation():
            return _inline(_expectation(value).items())
        case _:
            return _value(value)


# --- the file -----------------------------------------------------------------------------------


def scenario_toml(
    scenario: Scenario,
    steps: Sequence[Step],
    *,
    name: str | None = None,
    description: str | None = None,
) -> str:
    """The scenario file for ``scenario``'s setup followed by ``steps``."""
    lines = [f"name = {_string(name or scenario.name)}"]
    text = scenario.description if description is None else description
    if text:
        lines.append(f"description = {_string(text)}")
    lines.append(f"start = {scenario.start.isoformat()}")
    for instrument in scenario.instruments:
        lines += [
            "",
            "[[instrument]]",
            f"root = {_string(instrument.root)}",
            f"point_value = {_number(instrument.point_value)}",
            f"tick_size = {_number(instrument.tick_size)}",
        ]
    for connection in scenario.connections:
        lines += ["", "[[connection]]", f"id = {_string(connection.id)}"]
        if connection.broker != "paper":
            lines.append(f"broker = {_string(connection.broker)}")
        if connection.state != "connected":
            lines.append(f"state = {_string(connection.state)}")
    for account in scenario.accounts:
        lines += [
            "",
            "[[account]]",
            f"id = {_string(account.id)}",
            f"connection = {_string(account.connection)}",
        ]
        if account.balance != DEFAULT_BALANCE:
            lines.append(f"balance = {_number(account.balance)}")
        limits = dict(account.risk)
        if limits:
            lines.append(f"risk = {_inline(limits.items())}")
    for group in scenario.groups:
        lines += [
            "",
            "[[group]]",
            f"id = {_string(group.id)}",
            f"leader = {_string(group.leader)}",
        ]
        if group.followers:
            lines.append("followers = [")
            lines += [f"  {_inline(_follower(f).items())}," for f in group.followers]
            lines.append("]")
    for blackout in scenario.blackouts:
        lines += [
            "",
            "[[blackout]]",
            f"start = {_value(blackout.start)}",
            f"end = {_value(blackout.end)}",
            f"label = {_string(blackout.label)}",
        ]
    for step in steps:
        lines += ["", "[[step]]", f"{step.action} = {step_value(step)}"]
    return "\n".join(lines) + "\n"


def write_regression(text: str, stem: str, folder: Path | None = None) -> Path:
    """Write ``text`` to ``<folder>/<stem>.toml`` (the regressions folder by default); a file
    with that name and other content gets a numbered sibling instead of being overwritten."""
    folder = folder or regressions_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.toml"
    number = 1
    while path.exists() and path.read_text(encoding="utf-8") != text:
        number += 1
        path = folder / f"{stem}_{number}.toml"
    path.write_text(text, encoding="utf-8")
    return path
