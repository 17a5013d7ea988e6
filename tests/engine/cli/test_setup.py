"""``python -m engine setup diff | apply FILE`` and the start's warnings, against real engine
processes (decision 0017): the file seeds an empty store; afterwards a start warns of each key
where the file differs, ``diff`` lists them, ``apply`` makes them so through the API, showing
each deletion and asking first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.engine.engine_process import ROOT, EngineProcess, start_engine, stop_engine

SETUP = """
[[connections]]
id = "lead"

[[connections]]
id = "prop"

[[accounts]]
id = "LEAD"
connection = "lead"

[[accounts]]
id = "F1"
connection = "prop"
limits = { daily_loss_limit = "1000" }

[[accounts]]
id = "F2"
connection = "prop"

[[groups]]
id = "main"
leader = "LEAD"
followers = [{ account = "F1" }, { account = "F2", ratio = "2", max_qty = 4 }]
"""
DIFFERS = "the configuration differs from the store: the store's value is in use"


def setup_cli(data: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "setup", *argv, "--data-dir", str(data)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,  # not a terminal: a question needs --yes
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def start(data: Path, config: Path) -> EngineProcess:
    return start_engine(data, "--config", str(config))


def log_lines(data: Path) -> list[dict[str, Any]]:
    path = data / "engine.log"
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines()]


def warnings_of_a_start(data: Path, config: Path) -> tuple[EngineProcess, list[dict[str, Any]]]:
    """A start on ``config``, and the warnings its start logged."""
    before = len(log_lines(data))
    engine = start(data, config)
    return engine, [line for line in log_lines(data)[before:] if line["level"] == "warning"]


def account(engine: EngineProcess, ident: str) -> Any:
    answer = httpx.get(
        f"{engine.url}/api/accounts/{ident}", headers={"Authorization": f"Bearer {engine.token}"}
    )
    return answer.json() if answer.status_code == 200 else None


def seeded(tmp_path: Path) -> tuple[Path, Path]:
    """A store seeded from the file by a first start, and the file."""
    data, config = tmp_path / "data", tmp_path / "engine.toml"
    config.write_text(SETUP)
    assert stop_engine(start(data, config)) == 0
    return data, config


def test_a_limit_edited_in_the_file_is_warned_listed_and_applied(tmp_path: Path) -> None:
    data, config = seeded(tmp_path)
    config.write_text(SETUP.replace('daily_loss_limit = "1000"', 'daily_loss_limit = "800"'))

    stopped = setup_cli(data, "diff", str(config))  # no engine: the store file, read only
    assert stopped.returncode == 1, stopped.stderr
    assert f"against the store {data / 'engine.sqlite'} (no engine running): 1 difference" in (
        stopped.stdout
    )
    row = ["accounts[F1].limits.daily_loss_limit", "800", "1000"]
    assert row in [line.split() for line in stopped.stdout.splitlines()]

    engine, warnings = warnings_of_a_start(data, config)
    try:
        assert [(w["key"], w["file"], w["store"]) for w in warnings if w["event"] == DIFFERS] == [
            ("accounts[F1].limits.daily_loss_limit", "800", "1000")
        ]
        hint = f"python -m engine setup apply {config} --data-dir {data}"
        assert any(hint in w["event"] for w in warnings)
        assert account(engine, "F1")["limits"]["daily_loss_limit"] == "1000"  # the store's

        running = setup_cli(data, "diff", str(config))
        assert running.returncode == 1
        assert f"against the engine running at {engine.url}: 1 difference" in running.stdout
        assert row in [line.split() for line in running.stdout.splitlines()]

        applied = setup_cli(data, "apply", str(config), "--yes")
        assert applied.returncode == 0, applied.stderr
        assert "done: limits of F1: daily_loss_limit=800 (at once)" in applied.stdout
        f1 = account(engine, "F1")
        assert f1["limits"]["daily_loss_limit"] == "800"
        assert [d["value"] for d in f1["limit_distances"]] == ["800"]

        same = setup_cli(data, "diff", str(config))
        assert (same.returncode, same.stdout.splitlines()[0]) == (
            0,
            f"{config} and the engine running at {engine.url} have the same setup",
        )
    finally:
        assert stop_engine(engine) == 0

    engine, warnings = warnings_of_a_start(data, config)  # the file and the store agree
    assert stop_engine(engine) == 0
    assert warnings == []


def test_a_follower_copy_mode_edited_in_the_file_is_listed_and_applied(tmp_path: Path) -> None:
    """S8.1: the copy mode is a follower's term like the ratio: diffed against the store file
    and the running engine, and applied through the API."""
    data, config = seeded(tmp_path)
    config.write_text(SETUP.replace('{ account = "F1" }', '{ account = "F1", copy = "orders" }'))
    row = ["groups[main].followers[F1].copy", "orders", "fills"]
    stopped = setup_cli(data, "diff", str(config))
    assert stopped.returncode == 1, stopped.stderr
    assert row in [line.split() for line in stopped.stdout.splitlines()]
    engine = start(data, config)
    try:
        applied = setup_cli(data, "apply", str(config), "--yes")
        assert applied.returncode == 0, applied.stderr
        assert "symbol_map none, copy orders" in applied.stdout
        assert account(engine, "F1")["membership"]["copy"] == "orders"
        assert setup_cli(data, "diff", str(config)).returncode == 0
    finally:
        assert stop_engine(engine) == 0


def test_s10_2_a_groups_on_drift_edited_in_the_file_is_listed_and_applied(tmp_path: Path) -> None:
    """on_drift is the group's: diffed against the store file and applied through the API."""
    data, config = seeded(tmp_path)
    config.write_text(SETUP + 'on_drift = "reduce"\n')
    row = ["groups[main].on_drift", "reduce", "alert"]
    stopped = setup_cli(data, "diff", str(config))
    assert stopped.returncode == 1, stopped.stderr
    assert row in [line.split() for line in stopped.stdout.splitlines()]
    engine = start(data, config)
    try:
        applied = setup_cli(data, "apply", str(config), "--yes")
        assert applied.returncode == 0, applied.stderr
        assert "group main: on_drift reduce" in applied.stdout
        groups = httpx.get(
            f"{engine.url}/api/groups", headers={"Authorization": f"Bearer {engine.token}"}
        ).json()
        assert [g["on_drift"] for g in groups] == ["reduce"]
        assert setup_cli(data, "diff", str(config)).returncode == 0
    finally:
        assert stop_engine(engine) == 0


def test_a_deletion_is_shown_and_asked_before_it_is_applied(tmp_path: Path) -> None:
    data, config = seeded(tmp_path)
    without_f2 = SETUP.replace('[[accounts]]\nid = "F2"\nconnection = "prop"\n', "").replace(
        ', { account = "F2", ratio = "2", max_qty = 4 }', ""
    )
    config.write_text(without_f2)
    engine = start(data, config)
    try:
        asked = setup_cli(data, "apply", str(config))
        assert asked.returncode == 2
        assert "  delete account F2\n" in asked.stdout
        assert "delete account F2 is immediate and removes:" in asked.stdout
        assert "membership removed: F2 from group main" in asked.stdout
        assert "not confirmed: pass --yes" in asked.stderr
        assert account(engine, "F2") is not None  # nothing done

        applied = setup_cli(data, "apply", str(config), "--yes")
        assert applied.returncode == 0, applied.stderr
        assert "done: delete account F2" in applied.stdout
        assert account(engine, "F2") is None
    finally:
        assert stop_engine(engine) == 0


def test_what_no_command_makes_is_listed_with_what_to_do(tmp_path: Path) -> None:
    data, config = seeded(tmp_path)
    config.write_text(
        SETUP.replace('id = "F2"\nconnection = "prop"', 'id = "F2"\nconnection = "lead"')
    )
    engine = start(data, config)
    try:
        answer = setup_cli(data, "apply", str(config), "--yes")
        assert answer.returncode == 1
        assert ["accounts[F2].connection", "lead", "prop"] in [
            line.split() for line in answer.stdout.splitlines()
        ]
        assert "accounts[F2].connection: an account stays on the connection it was added with" in (
            answer.stdout
        )
        assert account(engine, "F2")["connection"] == "prop"
    finally:
        assert stop_engine(engine) == 0


def test_a_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    missing = setup_cli(tmp_path / "data", "diff", str(tmp_path / "nope.toml"))
    assert (missing.returncode, missing.stderr) == (2, f"{tmp_path / 'nope.toml'}: no such file\n")
    demo = tmp_path / "demo.toml"
    demo.write_text("[api]\nport = 0\n")
    answer = setup_cli(tmp_path / "data", "diff", str(demo))
    assert answer.returncode == 2
    assert "no [[connections]]" in answer.stderr
    no_store = tmp_path / "engine.toml"
    no_store.write_text(SETUP)
    answer = setup_cli(tmp_path / "data", "diff", str(no_store))
    assert answer.returncode == 2
    assert "no store in" in answer.stderr


S9 = (
    SETUP.replace(
        'limits = { daily_loss_limit = "1000" }',
        'profile = "eval"\nlimits = { daily_loss_limit = "1000", max_contracts = 2 }',
    )
    + """
[profiles.eval]
max_loss = 2000
max_loss_mode = "eod_trailing"
commissions = { ES = 2.10 }

[profiles.funded]
max_loss = 1500

[[blackout]]
start = 2031-11-25T07:29:00-06:00
end = 2031-11-25T07:45:00-06:00
label = "CPI"
"""
)


def test_s9_profiles_keys_and_blackouts_edited_in_the_file_are_listed_and_applied(
    tmp_path: Path,
) -> None:
    """S9.7/S9.5: the profiles, the profile an account uses, its own keys and the blackouts
    are seeded from the file, diffed against the store file and the running engine, and
    applied through the API; afterwards the file and the store agree."""
    data, config = tmp_path / "data", tmp_path / "engine.toml"
    config.write_text(S9)
    assert stop_engine(start(data, config)) == 0
    edited = (
        S9.replace('profile = "eval"', 'profile = "funded"')
        .replace(", max_contracts = 2 }", " }")
        .replace("max_loss = 1500", "max_loss = 1500\nflatten_at = \"15:10\"")
        .replace("[profiles.eval]\nmax_loss = 2000\nmax_loss_mode = \"eod_trailing\"\n"
                 "commissions = { ES = 2.10 }\n", "")
        .replace('label = "CPI"', 'label = "NFP"')
    )  # fmt: skip
    config.write_text(edited)
    rows = [
        ["accounts[F1].profile", "funded", "eval"],
        ["accounts[F1].limits.max_contracts", "off", "2"],
        ["profiles[funded].flatten_at", "15:10", "off"],
    ]
    stopped = setup_cli(data, "diff", str(config))
    assert stopped.returncode == 1, stopped.stderr
    lines = [line.split() for line in stopped.stdout.splitlines()]
    for row in rows:
        assert row in lines, stopped.stdout
    assert "profiles[eval]" in stopped.stdout
    assert "blackout[NFP" in stopped.stdout and "blackout[CPI" in stopped.stdout

    engine = start(data, config)
    try:
        applied = setup_cli(data, "apply", str(config), "--yes")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        for done in (
            "done: profile funded: flatten_at=15:10 (at once, for its accounts)",
            "done: profile of F1: funded (at once)",
            "done: limits of F1: max_contracts removed (at once)",
            "done: delete profile eval",
            "done: remove blackout CPI: 2031-11-25T07:29:00-06:00 to 2031-11-25T07:45:00-06:00",
            "done: add blackout NFP: 2031-11-25T07:29:00-06:00 to 2031-11-25T07:45:00-06:00",
        ):
            assert done in applied.stdout, applied.stdout
        f1 = account(engine, "F1")
        assert f1["profile"] == "funded"
        assert f1["limits"] == {"daily_loss_limit": "1000"}
        same = setup_cli(data, "diff", str(config))
        assert same.returncode == 0, same.stdout
    finally:
        assert stop_engine(engine) == 0
