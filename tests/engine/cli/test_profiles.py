"""``python -m engine limits | profiles | profile | blackouts`` against a real engine process:
every risk key (S5.2, S9), the named profiles an account uses and overrides (S9.7), the
blackouts (S9.5); mistakes are one line on stderr, never a traceback."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from engine.__main__ import build_parser
from engine.cli import commands, profiles
from tests.engine.engine_process import EngineProcess, start_engine, stop_engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    process = start_engine(tmp_path_factory.mktemp("cli-profiles") / "data")
    accounts = ("--account", "P-A", "--account", "P-B", "--account", "P-C")
    assert run_cli(process, "connections", "add", "prof-conn", *accounts)[0] == 0
    yield process
    assert stop_engine(process) == 0


def run_cli(engine: EngineProcess, *argv: str) -> tuple[int, str]:
    """A command (``python -m engine ARGV``) in this process: its exit status and output."""
    args = build_parser().parse_args([*argv, "--data-dir", str(engine.data_dir)])
    out = io.StringIO()
    main = profiles.main if args.command in profiles.COMMANDS else commands.main
    return main(args, out=out), out.getvalue()


def run_json(engine: EngineProcess, *argv: str) -> Any:
    code, text = run_cli(engine, *argv, "--json")
    assert code == 0, text
    return json.loads(text)


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_limits_take_every_key_and_unset_one(engine: EngineProcess) -> None:
    """S9: tables as ROOT:VALUE pairs, KEY=off in each key's form; --unset removes the own key."""
    keys = ("max_loss=2500", "max_loss_mode=eod_trailing", "commissions=ES:2.10,MES:0.60",
            "flatten_at=15:10", "max_contracts=2.5")  # fmt: skip
    code, text = run_cli(engine, "limits", "P-A", *keys)
    assert code == 0, text
    assert text.splitlines()[0] == "P-A: profile none"
    assert ["commissions", "ES", "2.10,", "MES", "0.60", "own"] in rows(text)
    assert ["max_loss_mode", "eod_trailing", "own"] in rows(text)
    code, text = run_cli(engine, "limits", "P-A", "max_contracts=off", "flatten_at=off")
    assert code == 0
    assert ["max_contracts", "0", "own"] in rows(text)
    assert ["flatten_at", "off", "own"] in rows(text)
    code, text = run_cli(engine, "limits", "P-A", "--unset", "flatten_at", "--unset", "max_loss")
    assert code == 0
    shown = run_json(engine, "limits", "P-A")
    assert "flatten_at" not in shown["limits"] and "max_loss" not in shown["limits"]
    assert shown["limits"]["commissions"] == {"ES": "2.10", "MES": "0.60"}
    code, text = run_cli(engine, "accounts", "show", "P-A")
    lines = {line.split(None, 1)[0]: line.split(None, 1)[1:] for line in text.splitlines()}
    assert lines["effective"] == [
        "commissions=ES 2.10, MES 0.60; max_contracts=0; max_loss_mode=eod_trailing"
    ]
    assert lines["contracts_in_use"] == ["0"]


def test_limit_mistakes_are_one_line(
    engine: EngineProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    cases = [
        (("max_loss_mode=weekly",), 1, "422: max_loss_mode: unknown value 'weekly'"),
        (("flatten_at=18:00",), 1, "422: flatten_at: "),
        (("commissions=ES",), 2, "commissions: 'ES' is not ROOT:VALUE"),
        (("max_los=1",), 2, "max_los: unknown risk key"),
        (("--unset", "nope"), 2, "nope: unknown risk key"),
        (("max_loss",), 2, "expected KEY=VALUE"),
    ]
    for words, status, says in cases:
        code, _ = run_cli(engine, "limits", "P-C", *words)
        err = capsys.readouterr().err
        assert (code, err.count("\n")) == (status, 1), (words, err)
        assert says in err, (words, err)
        assert "Traceback" not in err


def test_profiles_are_set_shown_used_and_deleted(
    engine: EngineProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """S9.7: set creates or changes keys, unset removes them, profile ACCOUNT NAME chooses it
    (none: no profile), the account's own keys override it, delete is refused while used."""
    code, text = run_cli(engine, "profiles", "set", "eval", "max_loss=2000", "commission=2")
    assert code == 0, text
    assert text.splitlines()[0] == "profile eval: used by none"
    assert ["max_loss", "2000"] in rows(text)
    code, text = run_cli(engine, "profile", "P-B", "eval")
    assert code == 0
    assert text.splitlines()[0] == "P-B: profile eval"
    assert ["max_loss", "2000", "profile", "eval"] in rows(text)
    code, text = run_cli(engine, "limits", "P-B", "max_loss=3000")
    assert ["max_loss", "3000", "own"] in rows(text)
    assert ["commission", "2", "profile", "eval"] in rows(text)
    code, text = run_cli(engine, "profiles")
    assert code == 0
    assert ["eval", "P-B", "commission=2;", "max_loss=2000"] in rows(text)
    assert run_cli(engine, "profiles", "unset", "eval", "commission")[0] == 0
    assert run_json(engine, "profiles", "show", "eval")["limits"] == {"max_loss": "2000"}
    capsys.readouterr()
    code, _ = run_cli(engine, "profiles", "delete", "eval")
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("409: ") and "P-B" in err
    assert run_json(engine, "profile", "P-B", "none")["profile"] is None
    code, text = run_cli(engine, "profiles", "delete", "eval")
    assert (code, text) == (0, "profile eval deleted\n")
    assert "eval" not in [p["name"] for p in run_json(engine, "profiles")]


def test_profile_mistakes_are_one_line(
    engine: EngineProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    cases = [
        (("profiles", "show"), 2, "needs the profile's NAME"),
        (("profiles", "show", "nope"), 1, "404: unknown profile 'nope'"),
        (("profiles", "set", "eval"), 2, "profiles set needs KEY=VALUE"),
        (("profiles", "set", "eval", "max_loss=-1"), 1, "422: max_loss: negative"),
        (("profiles", "unset", "eval", "nope"), 2, "nope: unknown risk key"),
        (("profiles", "show", "eval", "max_loss=1"), 2, "takes only the NAME"),
        (("profile", "P-C", "nope"), 1, "422: profile: no profile 'nope'"),
        (("profile", "NOPE", "none"), 1, "404: unknown account 'NOPE'"),
    ]
    for argv, status, says in cases:
        code, _ = run_cli(engine, *argv)
        err = capsys.readouterr().err
        assert (code, err.count("\n")) == (status, 1), (argv, err)
        assert says in err, (argv, err)


def test_blackouts_are_added_listed_and_removed(
    engine: EngineProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """S9.5: add START END LABEL (offset instants), list in Chicago time with the key, remove by
    label or key; mistakes are one line."""
    code, text = run_cli(engine, "blackouts", "add", "2030-03-12T07:25-05:00",
                         "2030-03-12T07:35-05:00", "CPI")  # fmt: skip
    assert code == 0, text
    assert rows(text)[2][:5] == ["CPI", "Tue", "03-12", "07:25", "CT"]
    assert run_cli(engine, "blackouts", "add", "2030-03-13T07:25-05:00",
                   "2030-03-13T07:35-05:00", "CPI")[0] == 0  # fmt: skip
    listed = run_json(engine, "blackouts")
    assert [b["label"] for b in listed] == ["CPI", "CPI"]
    capsys.readouterr()
    code, _ = run_cli(engine, "blackouts", "remove", "CPI")
    assert code == 2
    assert "2 blackouts are labelled 'CPI'" in capsys.readouterr().err
    code, text = run_cli(engine, "blackouts", "remove", listed[0]["key"])
    assert code == 0
    assert "removed" in text
    assert run_cli(engine, "blackouts", "remove", "CPI")[0] == 0  # the one left
    assert run_json(engine, "blackouts") == []
    capsys.readouterr()
    cases = [
        (("add", "2030-03-12T07:25-05:00", "2030-03-12T07:35-05:00"), 2, "needs START END LABEL"),
        (("add", "2030-03-12T07:25", "2030-03-12T07:35-05:00", "X"), 1, "422: start: "),
        (("add", "2030-03-12T07:35-05:00", "2030-03-12T07:25-05:00", "X"), 1, "must be after"),
        (("remove", "NFP"), 1, "no blackout 'NFP'"),
        (("remove",), 2, "needs one LABEL or KEY"),
    ]
    for argv, status, says in cases:
        code, _ = run_cli(engine, "blackouts", *argv)
        err = capsys.readouterr().err
        assert (code, err.count("\n")) == (status, 1), (argv, err)
        assert says in err, (argv, err)


def test_the_keys_table_says_where_each_key_comes_from_and_what_is_off() -> None:
    """S9.7: own or the profile's; S5.7 limits off until their reset, S9.3's max_loss until it
    is set again."""
    out = io.StringIO()
    commands.risk_keys_table(
        {"account": "A", "profile": "eval", "limits": {"max_loss": "3000"},
         "effective": {"daily_loss_limit": "500", "max_loss": "3000"},
         "triggers_off": ["daily_loss_limit", "max_loss"]},
        out,
    )  # fmt: skip
    assert out.getvalue().splitlines() == [
        "A: profile eval",
        "KEY               VALUE  FROM",
        "----------------  -----  ------------",
        "daily_loss_limit  500    profile eval",
        "max_loss          3000   own",
        "off until the next reset: daily_loss_limit",
        "max_loss: off until it is set again (unlocked by hand)",
    ]
