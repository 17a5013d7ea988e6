"""``python -m engine status | connections | accounts | groups | limits | flatten | lock | unlock |
activity`` against a real engine process: readable tables, ``--json`` for scripts, questions
before deleting or flattening everything (decision 0008), clear failures."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.__main__ import build_parser
from engine.cli.commands import main as cli_main
from tests.engine.engine_process import ROOT, EngineProcess, run_cli, start_engine, stop_engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    process = start_engine(tmp_path_factory.mktemp("cli") / "data", "--demo-interval", "1")
    yield process
    assert stop_engine(process) == 0


def run_json(engine: EngineProcess, *argv: str) -> Any:
    code, text = run_cli(engine, *argv, "--json")
    assert code == 0, text
    return json.loads(text)


def test_status_is_a_table(engine: EngineProcess) -> None:
    code, text = run_cli(engine, "status")
    assert code == 0
    assert "running at http://127.0.0.1:" in text
    lines = text.splitlines()
    assert any(line.split()[:3] == ["CONNECTION", "BROKER", "STATE"] for line in lines)
    assert any(line.startswith("demo-prop") and "connected" in line for line in lines)
    account = next(line for line in lines if line.startswith("DEMO-F2"))
    assert "demo-prop" in account
    data = run_json(engine, "status")
    assert {a["id"] for a in data["accounts"]} >= {"DEMO-LEAD", "DEMO-F1", "DEMO-F2", "DEMO-F3"}


def test_connections(engine: EngineProcess) -> None:
    code, text = run_cli(engine, "connections")
    assert code == 0
    assert "demo-lead" in text
    code, text = run_cli(engine, "connections", "add", "cli-conn", "--account", "CLI-A=10000")
    assert (code, text.strip()) == (0, "connection cli-conn added")
    listed = run_json(engine, "connections")
    assert {"id": "cli-conn", "broker": "paper", "state": "connected", "offline": False,
            "accounts": ["CLI-A"]} in listed  # fmt: skip
    assert run_cli(engine, "connections", "offline", "cli-conn")[0] == 0
    code, text = run_cli(engine, "connections", "reauthorize", "cli-conn")
    assert code == 0
    assert "/oauth/callback?" in text
    assert run_cli(engine, "connections", "reconnect", "cli-conn")[0] == 0


def test_delete_asks_first(engine: EngineProcess, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(engine, "connections", "add", "doomed", "--account", "DOOMED-1")
    code, text = run_cli(engine, "connections", "delete", "doomed", "--dry-run")
    assert code == 0
    assert "accounts deleted: DOOMED-1" in text
    assert "No order is sent" in text
    code, _ = run_cli(engine, "connections", "delete", "doomed")  # stdin is not a terminal here
    assert code == 2
    assert "pass --yes" in capsys.readouterr().err
    assert any(c["id"] == "doomed" for c in run_json(engine, "connections"))
    code, text = run_cli(engine, "connections", "delete", "doomed", "--yes")
    assert code == 0
    assert "connection doomed deleted" in text
    assert not any(c["id"] == "doomed" for c in run_json(engine, "connections"))


def test_groups_and_followers(engine: EngineProcess) -> None:
    run_cli(engine, "connections", "add", "gconn", "--account", "G-LEAD", "--account", "G-F1")
    code, text = run_cli(engine, "groups", "create", "cli-group", "--leader", "G-LEAD")
    assert (code, text.strip()) == (0, "group cli-group created")
    code, _ = run_cli(engine, "groups", "add-follower", "cli-group", "G-F1", "--ratio", "2",
                  "--max-qty", "3", "--map", "ES=MES")  # fmt: skip
    assert code == 0
    code, text = run_cli(engine, "groups")
    assert code == 0
    row = next(line for line in text.splitlines() if " G-F1 " in f" {line} ")
    assert row.split()[:5] == ["cli-group", "G-F1", "follower", "2", "3"]
    assert "ES→MES" in row
    assert run_cli(engine, "groups", "set-follower", "cli-group", "G-F1", "--ratio", "1")[0] == 0
    group = next(g for g in run_json(engine, "groups") if g["id"] == "cli-group")
    assert group["followers"][0]["ratio"] == "1"
    assert group["followers"][0]["max_qty"] == 3  # not given: unchanged
    assert run_cli(engine, "groups", "remove-follower", "cli-group", "G-F1")[0] == 0
    assert run_cli(engine, "groups", "delete", "cli-group", "--yes")[0] == 0


def test_s10_2_a_groups_on_drift(engine: EngineProcess) -> None:
    run_cli(engine, "connections", "add", "dconn", "--account", "D-LEAD", "--account", "D-F1")
    code, _ = run_cli(engine, "groups", "create", "drift-group", "--leader", "D-LEAD",
                      "--follower", "D-F1", "--on-drift", "reduce")  # fmt: skip
    assert code == 0
    code, text = run_cli(engine, "groups")
    leader = next(line for line in text.splitlines() if line.startswith("drift-group  D-LEAD"))
    assert leader.split()[-1] == "reduce"
    assert "ON DRIFT" in text
    code, text = run_cli(engine, "groups", "set", "drift-group", "--on-drift", "alert")
    assert (code, text.strip()) == (0, "group drift-group: on_drift alert")
    group = next(g for g in run_json(engine, "groups") if g["id"] == "drift-group")
    assert group["on_drift"] == "alert"
    assert run_cli(engine, "groups", "set", "drift-group")[0] == 2  # nothing to set
    code, text = run_cli(engine, "accounts", "show", "D-F1")
    assert "drift              none" in text
    assert run_cli(engine, "groups", "delete", "drift-group", "--yes")[0] == 0


def test_a_follower_copying_orders(
    engine: EngineProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """S8.1: --copy sets the follower's copy mode, the listing shows it, a change of other terms
    keeps it and a mode switched alone keeps the other terms; S8.2: a map between roots of
    different tick sizes is refused in one line."""
    run_cli(engine, "connections", "add", "oconn", "--account", "O-LEAD", "--account", "O-F1")
    assert run_cli(engine, "groups", "create", "orders-group", "--leader", "O-LEAD")[0] == 0
    code, text = run_cli(engine, "groups", "add-follower", "orders-group", "O-F1", "--copy",
                         "orders", "--map", "ES=MES")  # fmt: skip
    assert code == 0, text
    code, text = run_cli(engine, "groups")
    header = next(line for line in text.splitlines() if line.startswith("GROUP"))
    row = next(line for line in text.splitlines() if " O-F1 " in f" {line} ")
    assert row[header.index("COPY") :].split()[0] == "orders"
    capsys.readouterr()
    code, _ = run_cli(engine, "groups", "set-follower", "orders-group", "O-F1", "--map", "ES=CL")
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "symbol_map ES → CL" in err[0] and "ES ticks 0.25, CL ticks 0.01" in err[0]
    code, _ = run_cli(engine, "groups", "set-follower", "orders-group", "O-F1", "--ratio", "2",
                      "--map", "ES=MES")  # fmt: skip
    assert code == 0
    group = next(g for g in run_json(engine, "groups") if g["id"] == "orders-group")
    assert (group["followers"][0]["ratio"], group["followers"][0]["copy"]) == ("2", "orders")
    assert (
        run_cli(engine, "groups", "set-follower", "orders-group", "O-F1", "--copy", "fills")[0] == 0
    )
    (follower,) = next(g for g in run_json(engine, "groups") if g["id"] == "orders-group")[
        "followers"
    ]
    assert (follower["copy"], follower["ratio"], follower["symbol_map"]) == (
        "fills",
        "2",
        {"ES": "MES"},
    )  # a mode switched alone keeps the other terms
    assert (
        run_cli(engine, "groups", "set-follower", "orders-group", "O-F1", "--map", "ES=CL")[0] == 0
    )
    capsys.readouterr()
    code, _ = run_cli(engine, "groups", "set-follower", "orders-group", "O-F1", "--copy", "orders")
    assert code != 0
    assert "ES ticks 0.25, CL ticks 0.01" in capsys.readouterr().err
    assert run_cli(engine, "groups", "delete", "orders-group", "--yes")[0] == 0


def test_limits_lock_unlock_flatten(
    engine: EngineProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = run_cli(
        engine, "limits", "DEMO-F1", "daily_loss_limit=5000", "weekly_loss_limit=9000"
    )
    assert code == 0
    assert ["daily_loss_limit", "5000", "own"] in [line.split() for line in text.splitlines()]
    code, _ = run_cli(engine, "limits", "DEMO-F1", "daily_loss_limit=-5")
    assert code == 1  # the engine refuses it, naming the key
    assert "422: daily_loss_limit: negative" in capsys.readouterr().err
    assert run_cli(engine, "lock", "DEMO-F3")[0] == 0
    account = run_json(engine, "accounts", "show", "DEMO-F3")
    assert account["lock_reason"] == "manual"
    assert run_cli(engine, "unlock", "DEMO-F3")[0] == 0
    assert run_cli(engine, "flatten", "account", "DEMO-F1")[0] == 0
    assert run_cli(engine, "flatten", "group", "demo")[0] == 0
    assert run_cli(engine, "flatten", "all")[0] == 2  # no one to answer the question
    assert run_cli(engine, "flatten", "all", "--yes")[0] == 0


def test_activity(engine: EngineProcess) -> None:
    code, text = run_cli(engine, "activity", "--limit", "5")
    assert code == 0
    assert text.splitlines()[0].split()[:3] == ["TIME", "(UTC)", "LEVEL"]
    page = run_json(engine, "activity", "--kind", "lock")
    assert all(i["kind"] == "lock" for i in page["items"])


def _copied_leader_fill(engine: EngineProcess) -> str:
    """A demo leader fill DEMO-F1 has copied, waiting for the demo leader's next trade."""
    for _ in range(600):
        page = run_json(engine, "activity", "--account", "DEMO-F1", "--kind", "copy")
        keys = [i["fill"] for i in page["items"] if i["fill"]]
        if keys:
            return str(keys[0])
        time.sleep(0.1)
    raise AssertionError("the demo leader's fills were not copied to DEMO-F1")


def test_activity_of_one_leader_fill(engine: EngineProcess) -> None:
    """S7.1: a leader fill is an entry of the leader's; --fill lists it with what it caused."""
    key = _copied_leader_fill(engine)
    assert key.startswith("DEMO-LEAD:")
    page = run_json(engine, "activity", "--fill", key)
    assert {i["fill"] for i in page["items"]} == {key}
    who = {(i["account"], i["kind"]) for i in page["items"]}
    assert {("DEMO-LEAD", "copy"), ("DEMO-F1", "copy")} <= who
    code, text = run_cli(engine, "activity", "--fill", key)
    assert code == 0
    rows = text.splitlines()[2:]
    assert len(rows) == len(page["items"])
    assert all(row.endswith(f"[fill {key}]") for row in rows)


def test_failures_are_one_line(
    engine: EngineProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(engine, "lock", "NOPE")[0] == 1
    assert "404: unknown account 'NOPE'" in capsys.readouterr().err
    args = build_parser().parse_args(["status", "--data-dir", str(tmp_path)])
    assert cli_main(args, out=io.StringIO()) == 2
    assert "no API token" in capsys.readouterr().err
    (tmp_path / "api.token").write_text("x" * 40)
    args = build_parser().parse_args(
        ["status", "--data-dir", str(tmp_path), "--url", "http://127.0.0.1:9"]
    )
    assert cli_main(args, out=io.StringIO()) == 2
    assert "cannot reach the engine at http://127.0.0.1:9" in capsys.readouterr().err


# --- through the entry point, as a shell runs it ---------------------------------------------


def cli(
    engine: EngineProcess, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *argv, "--data-dir", str(engine.data_dir)],
        check=False,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_decimal_limits_are_shown_as_entered(engine: EngineProcess) -> None:
    done = cli(
        engine, "limits", "DEMO-F1", "weekly_profit_target=1e5", "daily_profit_target=2500.50"
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert ["weekly_profit_target", "100000", "own"] in rows
    assert ["daily_profit_target", "2500.50", "own"] in rows
    shown = json.loads(cli(engine, "limits", "DEMO-F1", "--json").stdout)
    assert shown["limits"]["weekly_profit_target"] == "100000"
    account = json.loads(cli(engine, "accounts", "show", "DEMO-F1", "--json").stdout)
    assert account["limits"]["weekly_profit_target"] == "100000"
    assert (
        cli(engine, "groups", "set-follower", "demo", "DEMO-F1", "--ratio", "1e0").returncode == 0
    )
    groups = json.loads(cli(engine, "groups", "--json").stdout)
    terms = next(f for g in groups if g["id"] == "demo" for f in g["followers"]
                 if f["account"] == "DEMO-F1")  # fmt: skip
    assert terms["ratio"] == "1"


def test_a_closed_pipe_ends_the_command_quietly(engine: EngineProcess) -> None:
    """``accounts show X | head -1``: the reader is gone before the output is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "engine", "accounts", "show", "DEMO-F1",
             "--data-dir", str(engine.data_dir)],
            check=False,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 128 + signal.SIGPIPE  # what a shell shows for `... | head -1`


def test_a_wrong_token_is_named_with_where_it_was_read(
    engine: EngineProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "old.token"
    token_file.write_text("not-the-engine-s-token-0123456789\n")
    done = cli(engine, "status", "--token-file", str(token_file))
    assert done.returncode == 1
    assert "token not accepted" in done.stderr
    assert f"read from {token_file}" in done.stderr
    done = cli(engine, "status", env={"MIMIK_TOKEN": "not-the-engine-s-token-0123456789"})
    assert done.returncode == 1
    assert "token not accepted" in done.stderr
    assert "MIMIK_TOKEN" in done.stderr
    missing = cli(engine, "status", "--token-file", str(tmp_path / "none.token"))
    assert missing.returncode == 2
    assert "token not accepted" not in missing.stderr
    assert "no API token" in missing.stderr


def test_follow_keeps_to_the_filters_and_the_columns(engine: EngineProcess) -> None:
    """The demo leader trades every second: its copies are activity of every follower, and
    only DEMO-F1's may come out, under the header's columns."""
    command = [sys.executable, "-m", "engine", "activity", "--account", "DEMO-F1", "--kind",
               "copy", "--limit", "1", "--follow", "--data-dir", str(engine.data_dir)]  # fmt: skip
    with subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    ) as follow:
        assert follow.stdout is not None
        try:
            header = follow.stdout.readline()
            lines = [follow.stdout.readline() for _ in range(2)]  # the rule and the history row
            live = [follow.stdout.readline() for _ in range(4)]
        finally:
            follow.send_signal(signal.SIGINT)
            follow.wait(timeout=30)
    assert lines[0].startswith("----")
    columns = {name: header.index(name) for name in ("LEVEL", "KIND", "WHO", "MESSAGE")}
    for line in live:
        assert line[columns["LEVEL"] - 2 : columns["LEVEL"]] == "  ", line
        assert line[columns["LEVEL"] :].split()[0] in ("info", "warning", "error"), line
        assert line[columns["KIND"] :].split()[0] == "copy", line
        assert line[columns["WHO"] :].split()[0] == "DEMO-F1", line
        assert line[columns["MESSAGE"] - 2 : columns["MESSAGE"]] == "  ", line
