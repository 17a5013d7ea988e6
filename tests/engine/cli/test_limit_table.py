"""``python -m engine status`` shows each limit set and the money left before it (S5.2), near
(within 20 %) in amber and at the limit or halted in red on a terminal; then the prop-firm rules
(S9.2-S9.5): threshold and distance, contracts in use of the cap, session close or blackout."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest

from engine.cli.limit_table import AMBER, RED, RESET, limits_table, rules_table
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
        if line in ("(none)", ""):
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


def rules_rows(text: str) -> dict[str, list[str]]:
    """The prop-firm table's rows by account, split on its columns (two spaces or more)."""
    lines = text.splitlines()
    start = lines.index("Prop-firm rules: the threshold and the equity above it, contracts in use")
    header = lines[start + 1]
    assert header.split() == ["ACCOUNT", "PROFILE", "THRESHOLD", "DISTANCE", "CONTRACTS",
                              "SESSION", "/", "BLACKOUT"]  # fmt: skip
    rows = {}
    for line in lines[start + 3 :]:
        if line in ("(none)", ""):
            break
        cells = [c.strip() for c in re.split(r"\s{2,}", line)]
        rows[cells[0]] = cells
    return rows


def test_the_prop_firm_table_shows_threshold_contracts_and_the_session() -> None:
    """S9.2-S9.5 in status: threshold and distance (off after an unlock, S9.3), contracts in
    use of the cap, the running blackout first (in capitals, until its end in Chicago time),
    then the next session close; an account with none of them is left out."""
    accounts = [
        {"id": "A", "profile": "eval", "threshold": "48000.00", "threshold_distance": "1997.90",
         "contracts_in_use": "1.5", "max_contracts": "2",
         "next_session_close": "2026-01-06T21:10:00+00:00",
         "blackout": {"start": "2026-01-06T14:00:00+00:00", "end": "2026-01-06T16:00:00+00:00",
                      "label": "CPI", "active": True}},
        {"id": "B", "profile": None, "threshold": None, "threshold_distance": None,
         "contracts_in_use": "0", "max_contracts": None, "next_session_close": None,
         "blackout": {"start": "2026-01-07T19:00:00+00:00", "end": "2026-01-07T19:30:00+00:00",
                      "label": "FOMC", "active": False}},
        {"id": "C", "profile": None, "threshold": None, "threshold_distance": None,
         "contracts_in_use": "2", "max_contracts": None, "next_session_close": None,
         "blackout": None},
        {"id": "D", "profile": None, "threshold": "47000.00", "threshold_distance": "-10.00",
         "triggers_off": ["max_loss"], "contracts_in_use": "0", "max_contracts": None,
         "next_session_close": None, "blackout": None},
    ]  # fmt: skip
    out = io.StringIO()
    rules_table(accounts, out)
    rows = rules_rows(out.getvalue())
    assert rows["A"] == ["A", "eval", "48000.00", "1997.90", "1.5 / 2",
                         "BLACKOUT CPI until 10:00 CT; close Tue 01-06 15:10 CT"]  # fmt: skip
    assert rows["B"] == ["B", "—", "—", "—", "0", "blackout FOMC Wed 01-07 13:00 CT to 13:30 CT"]
    assert "C" not in rows
    assert rows["D"][2:4] == ["47000.00 (off)", "-10.00"]  # S9.3: unlocked, off until set again


def test_status_shows_the_prop_firm_rules(engine: EngineProcess) -> None:
    assert run_cli(engine, "connections", "add", "rules-conn", "--account", "RULES-A")[0] == 0
    keys = ("max_loss=2000", "max_contracts=2", "flatten_at=15:10")
    assert run_cli(engine, "limits", "RULES-A", *keys)[0] == 0
    code, text = run_cli(engine, "status")
    assert code == 0
    row = rules_rows(text)["RULES-A"]
    assert row[1:5] == ["—", "48000.00", "2000.00", "0 / 2"]
    assert row[5].startswith("close ") and row[5].endswith(" 15:10 CT")
    code, text = run_cli(engine, "accounts")
    assert rules_rows(text)["RULES-A"] == row
