"""``python -m engine status`` shows each limit set and the money left before it (S5.2), near
(within 20 %) in amber and at the limit or halted in red on a terminal."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from engine.cli.limit_table import AMBER, RED, RESET, limits_table
from tests.engine.engine_process import EngineProcess, run_cli, start_engine, stop_engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    process = start_engine(tmp_path_factory.mktemp("cli-limits") / "data")
    yield process
    assert stop_engine(process) == 0


def limit_rows(text: str) -> list[list[str]]:
    """The rows of the limits table: account, limit, set, left, standing."""
    lines = text.splitlines()
    start = lines.index("Limits: the money left before each is hit")
    assert lines[start + 1].split() == ["ACCOUNT", "LIMIT", "SET", "LEFT", "STANDING"]
    rows = []
    for line in lines[start + 3 :]:
        if line == "(none)":
            break
        account, rest = line.split(None, 1)
        name, rest = rest.split("  ", 1)
        value, left, standing = rest.split(None, 2)
        rows.append([account, name, value, left, standing])
    return rows


def test_status_shows_each_limit_and_the_money_left(engine: EngineProcess) -> None:
    assert run_cli(engine, "connections", "add", "lim-conn", "--account", "LIM-A=25000")[0] == 0
    code, text = run_cli(engine, "status")
    assert code == 0
    assert not [r for r in limit_rows(text) if r[0] == "LIM-A"]  # no limit set, none shown
    limits = ("daily_loss_limit=1000", "trailing_drawdown=1500.50", "weekly_profit_target=1000")
    assert run_cli(engine, "limits", "LIM-A", *limits)[0] == 0
    code, text = run_cli(engine, "status")
    assert code == 0
    assert [r for r in limit_rows(text) if r[0] == "LIM-A"] == [
        ["LIM-A", "daily loss limit", "1000", "1000.00", "ok"],
        ["LIM-A", "trailing drawdown", "1500.50", "1500.50", "ok"],
        ["LIM-A", "weekly profit target", "1000", "1000.00", "ok"],
    ]
    assert run_cli(engine, "lock", "LIM-A")[0] == 0  # flat: LOCKED at once (S5.7)
    code, text = run_cli(engine, "status")
    assert [r[4] for r in limit_rows(text) if r[0] == "LIM-A"] == ["HALTED: LOCKED"] * 3


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def account(distances: list[tuple[str, str, str, str]]) -> dict[str, Any]:
    return {
        "id": "F1",
        "risk_status": "OK",
        "limits": {name: value for name, value, _, _ in distances},
        "limit_distances": [
            {"limit": n, "value": v, "distance": d, "standing": s} for n, v, d, s in distances
        ],
    }


def test_near_is_amber_and_breached_red_on_a_terminal() -> None:
    rows = [
        ("daily_loss_limit", "1000", "200.00", "near"),
        ("daily_profit_target", "500", "0.00", "breached"),
        ("weekly_loss_limit", "3000", "2800.00", "ok"),
    ]
    plain = io.StringIO()
    limits_table([account(rows)], plain)
    assert [r[1:] for r in limit_rows(plain.getvalue())] == [
        ["daily loss limit", "1000", "200.00", "NEAR: within 20 %"],
        ["daily profit target", "500", "0.00", "BREACHED"],
        ["weekly loss limit", "3000", "2800.00", "ok"],
    ]
    assert "\033[" not in plain.getvalue()
    terminal = Terminal()
    limits_table([account(rows)], terminal)
    lines = terminal.getvalue().splitlines()
    assert lines[3].startswith(AMBER) and lines[3].endswith(RESET)
    assert lines[4].startswith(RED) and lines[4].endswith(RESET)
    assert "\033[" not in lines[5]
    # the colours leave the columns where they were
    assert [line.removeprefix(AMBER).removeprefix(RED).removesuffix(RESET) for line in lines] == (
        plain.getvalue().splitlines()
    )
