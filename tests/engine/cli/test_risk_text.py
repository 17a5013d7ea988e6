"""Risk keys on the command line (S5.2, S9): ``KEY=VALUE`` words into the API's body, tables
as ``ROOT:VALUE`` pairs, ``KEY=off`` in each key's own form; values, session closes and
blackouts back into words in Chicago time."""

from __future__ import annotations

import pytest

from engine.cli.risk_text import (
    RiskArgumentError,
    blackout_text,
    check_names,
    contracts_text,
    keys_text,
    parse_assignments,
    session_text,
)


def test_words_become_the_apis_body() -> None:
    words = ["max_loss=2500", "commissions=ES:2.10,mes=0.60", "flatten_at=15:10",
             "max_loss_mode=eod_trailing", "contract_weights=MNQ:0.2"]  # fmt: skip
    assert parse_assignments(words) == {
        "max_loss": "2500",
        "commissions": {"ES": "2.10", "MES": "0.60"},
        "flatten_at": "15:10",
        "max_loss_mode": "eod_trailing",
        "contract_weights": {"MNQ": "0.2"},
    }


def test_off_is_each_keys_own_off() -> None:
    """S9: 0 turns a number off, an empty table a table; off is a value of max_loss_stop,
    flatten_at and blackout."""
    words = ["max_loss=off", "commissions=off", "max_loss_stop=off", "flatten_at=OFF",
             "blackout=off", "consistency_pct=off"]  # fmt: skip
    assert parse_assignments(words) == {
        "max_loss": "0",
        "commissions": {},
        "max_loss_stop": "off",
        "flatten_at": "OFF",  # the engine checks it: only off is off
        "blackout": "off",
        "consistency_pct": "0",
    }


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (["max_loss"], "'max_loss': expected KEY=VALUE, e.g. max_loss=2500"),
        (["=5"], "expected KEY=VALUE"),
        (["max_los=5"], "max_los: unknown risk key; expected one of: daily_loss_limit"),
        (["commissions=ES"], "commissions: 'ES' is not ROOT:VALUE"),
        (["commissions=ES:1,:2"], "commissions: ':2' is not ROOT:VALUE"),
        (["max_loss=1", "max_loss=2"], "max_loss: given twice"),
    ],
)
def test_a_word_that_cannot_be_read_says_which(words: list[str], says: str) -> None:
    with pytest.raises(RiskArgumentError) as error:
        parse_assignments(words)
    assert says in str(error.value)


def test_names_to_remove_are_checked() -> None:
    assert check_names(["max_loss", "commissions"]) == ["max_loss", "commissions"]
    with pytest.raises(RiskArgumentError, match="nope: unknown risk key"):
        check_names(["nope"])


def test_values_read_as_words() -> None:
    assert keys_text({"max_loss": "2500", "commissions": {"ES": "2.10", "MES": "0.60"}}) == (
        "max_loss=2500; commissions=ES 2.10, MES 0.60"
    )
    assert keys_text({}) == "none"
    assert contracts_text({"contracts_in_use": "1.5", "max_contracts": "2"}) == "1.5 / 2"
    assert contracts_text({"contracts_in_use": "3", "max_contracts": None}) == "3"


def test_session_close_and_blackouts_in_chicago_time() -> None:
    """S9.4/S9.5: America/Chicago, 24-hour; a running blackout first and in capitals."""
    cpi = {"start": "2026-03-12T12:25:00+00:00", "end": "2026-03-12T12:35:00+00:00",
           "label": "CPI", "active": False}  # fmt: skip
    assert blackout_text(cpi) == "blackout CPI Thu 03-12 07:25 CT to 07:35 CT"  # CDT: UTC-5
    assert blackout_text({**cpi, "active": True}) == "BLACKOUT CPI until 07:35 CT"
    account = {"next_session_close": "2026-01-06T21:10:00+00:00", "blackout": cpi}
    assert (
        session_text(account) == "close Tue 01-06 15:10 CT; blackout CPI Thu 03-12 07:25 CT"
        " to 07:35 CT"
    )
    running = {**account, "blackout": {**cpi, "active": True}}
    assert session_text(running) == "BLACKOUT CPI until 07:35 CT; close Tue 01-06 15:10 CT"
    assert session_text({"next_session_close": None, "blackout": None}) == ""
