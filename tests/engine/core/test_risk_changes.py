"""The risk-key commands (engine/core/risk_changes.py) through the real engine on the paper
broker: an account's own keys, named profiles (S9.7), the profile an account uses, and the
engine-wide blackouts (S9.5). Each is checked first, written to the store, applied to the
topology, then told to the actors: the account's whole effective keys with the keys that
changed (``SetLimits``), its rules (``SetRules``), every blackout (``SetBlackouts``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors import addresses
from actors.messages.account import SetRules
from actors.messages.risk import SetBlackouts, SetLimits
from engine.core.topology import CommandRefused, UnknownId
from engine.domain.risk_profile import RiskRules
from engine.domain.sessions import Blackout
from engine.host.address import Address
from tests.conftest import ES, START, MakeEngine, Rig

CPI = Blackout(START + timedelta(days=1), START + timedelta(days=1, minutes=15), "CPI")
D = Decimal
NFP = Blackout(START + timedelta(hours=2), START + timedelta(hours=3), "NFP")


@dataclass
class Told:
    """What the engine told the actors, of the messages these commands send."""

    messages: list[tuple[Address, Any]] = field(default_factory=list)

    def of(self, kind: type) -> list[tuple[Address, Any]]:
        return [(a, m) for a, m in self.messages if isinstance(m, kind)]

    def limits(self) -> dict[str, SetLimits]:
        return {a[1]: m for a, m in self.of(SetLimits)}

    def clear(self) -> None:
        self.messages.clear()


@pytest.fixture
def rig(tmp_path: Path, make_engine: MakeEngine) -> Rig:
    return make_engine(tmp_path)


@pytest.fixture
def told(rig: Rig) -> Iterator[Told]:
    """Every SetLimits, SetRules and SetBlackouts the engine tells from now on."""
    record = Told()
    runtime = rig.engine.runtime
    tell = runtime.tell

    def recording(to: Address, message: object) -> None:
        if isinstance(message, SetLimits | SetRules | SetBlackouts):
            record.messages.append((to, message))
        tell(to, message)

    runtime.tell = recording  # type: ignore[method-assign]
    yield record
    runtime.tell = tell  # type: ignore[method-assign]


def _stored(rig: Rig, table: str, where: str = "") -> dict[str, str]:
    rows = rig.rows(f"SELECT name, value FROM {table} {where}")
    return {r["name"]: r["value"] for r in rows}


# --- an account's own keys ---------------------------------------------------------------------


def test_s9_set_risk_takes_every_key_writes_it_and_tells_both_actors(rig: Rig, told: Told) -> None:
    """S5.2/S9: numbers, words and tables; the risk actor gets the whole effective mapping with
    the keys set, the account actor the rules (its commissions, S9.1)."""
    values = {
        "daily_loss_limit": D(1000),
        "commissions": {"ES": D("2.10")},
        "max_loss_mode": "eod_trailing",
        "flatten_at": "15:10",
    }
    rig.engine.set_risk("F1", values)
    rig.idle()
    assert rig.engine.topology.accounts["F1"].limits == values
    stored = _stored(rig, "risk_limits", "WHERE account = 'F1'")
    assert stored == {
        "daily_loss_limit": "1000",
        "commissions": '{"ES": "2.10"}',
        "max_loss_mode": "eod_trailing",
        "flatten_at": "15:10",
    }
    assert told.limits()["F1"] == SetLimits(values, tuple(values))
    assert told.of(SetRules) == [(addresses.account("F1"), SetRules(RiskRules.of(values)))]
    view = rig.engine.risk_view("F1")
    assert view is not None and dict(view.limits) == values


def test_s9_1_commissions_set_by_command_are_charged_and_kept_across_a_restart(rig: Rig) -> None:
    rig.engine.set_risk("LEAD", {"commission": D("2.5")})
    rig.trade("LEAD", 2)
    view = rig.engine.account_view("LEAD")
    assert view is not None and view.commissions == D(5)  # 2 contracts × 2.5
    rig.restart()
    assert rig.engine.topology.accounts["LEAD"].limits == {"commission": D("2.5")}
    rig.trade("LEAD", -2)
    view = rig.engine.account_view("LEAD")
    assert view is not None and view.commissions == D(10)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_loss_mode": "daily"}, "account 'F1': max_loss_mode: unknown value 'daily'"),
        ({"max_los": 1}, "account 'F1': unknown risk key 'max_los'"),
        ({"daily_loss_limit": D(-1)}, "account 'F1': daily_loss_limit: negative"),
        ({"flatten_at": "18:00"}, "account 'F1': flatten_at"),
        ({"commissions": {"es": 1}}, "account 'F1': commissions: 'es' is not a contract root"),
    ],
)
def test_a_bad_value_is_refused_saying_where_and_what_and_nothing_changes(
    rig: Rig, told: Told, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(CommandRefused, match=message):
        rig.engine.set_risk("F1", {"daily_profit_target": D(1), **values})
    assert rig.engine.topology.accounts["F1"].limits == {}
    assert _stored(rig, "risk_limits") == {}
    assert told.messages == []
    with pytest.raises(UnknownId, match="unknown account 'F9'"):
        rig.engine.set_risk("F9", {"max_loss": D(1)})


def test_s9_7_unset_risk_removes_own_keys_and_the_profiles_value_applies(
    rig: Rig, told: Told
) -> None:
    rig.engine.set_profile("50K", {"max_loss": D(2000), "commission": D(1)})
    rig.engine.set_account_profile("F1", "50K")
    rig.engine.set_risk("F1", {"max_loss": D(2500), "daily_loss_limit": D(500)})
    told.clear()
    removed = rig.engine.unset_risk("F1", ["max_loss", "daily_loss_limit", "flatten_at"])
    rig.idle()
    assert removed == ("max_loss", "daily_loss_limit")  # flatten_at was not set
    assert rig.engine.topology.accounts["F1"].limits == {}
    assert _stored(rig, "risk_limits", "WHERE account = 'F1'") == {}
    effective = {"max_loss": D(2000), "commission": D(1)}
    assert told.limits()["F1"] == SetLimits(effective, ("max_loss", "daily_loss_limit"))
    view = rig.engine.risk_view("F1")
    assert view is not None and dict(view.limits) == effective
    told.clear()
    assert rig.engine.unset_risk("F1", ["max_loss"]) == ()  # nothing to remove: nothing told
    assert told.messages == []
    with pytest.raises(CommandRefused, match="unknown risk key 'nope'"):
        rig.engine.unset_risk("F1", ["nope"])


# --- profiles (S9.7) ---------------------------------------------------------------------------


def test_s9_7_an_accounts_own_keys_override_its_profiles_key_by_key(rig: Rig, told: Told) -> None:
    rig.engine.set_profile("50K", {"max_loss": D(2000), "max_contracts": D(5)})
    rig.engine.set_risk("F1", {"max_contracts": D(2)})
    told.clear()
    rig.engine.set_account_profile("F1", "50K")
    rig.engine.set_account_profile("F2", "50K")
    rig.idle()
    assert rig.engine.effective_risk("F1") == {"max_loss": D(2000), "max_contracts": D(2)}
    assert rig.engine.effective_risk("F2") == {"max_loss": D(2000), "max_contracts": D(5)}
    assert told.limits()["F1"].changed == ("max_loss",)  # only what took effect
    assert set(told.limits()["F2"].changed) == {"max_loss", "max_contracts"}
    assert _stored_profile_of(rig) == {"F1": "50K", "F2": "50K", "LEAD": None}
    f1 = rig.engine.risk_view("F1")
    assert f1 is not None and f1.max_contracts == D(2)

    # a profile's change reaches the accounts using it, unless they override the key
    told.clear()
    rig.engine.set_profile("50K", {"max_contracts": D(4), "commission": D(1)})
    rig.idle()
    sent = told.limits()
    assert sent["F1"] == SetLimits(
        {"max_loss": D(2000), "max_contracts": D(2), "commission": D(1)}, ("commission",)
    )
    assert sent["F2"].changed == ("max_contracts", "commission")
    assert "LEAD" not in sent
    told.clear()
    rig.engine.set_profile("50K", {"max_contracts": D(3)})  # F1 overrides it: not told
    assert set(told.limits()) == {"F2"}

    rig.restart()  # the actors are built from the store with the same effective keys
    f1 = rig.engine.risk_view("F1")
    assert f1 is not None and dict(f1.limits) == rig.engine.effective_risk("F1")
    assert rig.engine.profiles() == {
        "50K": {"max_loss": D(2000), "max_contracts": D(3), "commission": D(1)}
    }


def test_s9_7_an_account_leaving_its_profile_is_told_what_changed(rig: Rig, told: Told) -> None:
    rig.engine.set_profile("A", {"max_loss": D(2000), "commission": D(1)})
    rig.engine.set_profile("B", {"max_loss": D(2000), "flatten_at": "15:10"})
    rig.engine.set_account_profile("F1", "A")
    told.clear()
    rig.engine.set_account_profile("F1", "B")
    assert told.limits()["F1"] == SetLimits(
        {"max_loss": D(2000), "flatten_at": "15:10"}, ("commission", "flatten_at")
    )
    told.clear()
    rig.engine.set_account_profile("F1", "B")  # the same: nothing changes, nothing told
    assert told.messages == []
    rig.engine.set_account_profile("F1", None)
    assert told.limits()["F1"] == SetLimits({}, ("max_loss", "flatten_at"))
    assert rig.engine.topology.accounts["F1"].profile is None
    with pytest.raises(UnknownId, match="unknown profile 'C'"):
        rig.engine.set_account_profile("F1", "C")


def test_s9_7_unset_profile_keys_and_delete_profile(rig: Rig, told: Told) -> None:
    rig.engine.set_profile("50K", {"max_loss": D(2000), "commission": D(1)})
    rig.engine.set_account_profile("F1", "50K")
    told.clear()
    assert rig.engine.unset_profile_keys("50K", ["commission", "flatten_at"]) == ("commission",)
    assert told.limits()["F1"] == SetLimits({"max_loss": D(2000)}, ("commission",))
    assert _stored(rig, "profile_keys") == {"max_loss": "2000"}
    with pytest.raises(CommandRefused, match="profile '50K' is used by F1"):
        rig.engine.delete_profile("50K")
    assert "50K" in rig.engine.profiles()
    rig.engine.set_account_profile("F1", None)
    rig.engine.delete_profile("50K")
    assert rig.engine.profiles() == {}
    assert rig.rows("SELECT * FROM profiles") == []
    assert rig.rows("SELECT * FROM profile_keys") == []
    with pytest.raises(UnknownId, match="unknown profile '50K'"):
        rig.engine.delete_profile("50K")
    with pytest.raises(UnknownId, match="unknown profile '50K'"):
        rig.engine.unset_profile_keys("50K", ["max_loss"])


@pytest.mark.parametrize("name", ["", "a b", "-x", "x" * 65])
def test_a_profile_name_must_be_an_id(rig: Rig, name: str) -> None:
    with pytest.raises(CommandRefused, match="expected 1-64 letters"):
        rig.engine.set_profile(name, {"max_loss": D(1)})
    assert rig.engine.profiles() == {}


def test_a_bad_profile_value_names_the_profile(rig: Rig) -> None:
    with pytest.raises(CommandRefused, match="profile '50K': blackout: unknown value 'all'"):
        rig.engine.set_profile("50K", {"blackout": "all"})
    assert rig.engine.profiles() == {}


def test_deleting_an_account_keeps_the_profile_it_used(rig: Rig) -> None:
    rig.engine.set_profile("50K", {"max_loss": D(2000)})
    rig.engine.set_account_profile("F2", "50K")
    rig.engine.delete_account("F2")
    rig.engine.delete_profile("50K")  # no account uses it any more
    assert rig.engine.profiles() == {}


# --- blackouts (S9.5) --------------------------------------------------------------------------


def test_s9_5_blackouts_are_added_and_removed_and_every_risk_actor_gets_them_all(
    rig: Rig, told: Told
) -> None:
    rig.engine.set_risk("F1", {"blackout": "block"})  # shown to an account it concerns
    rig.engine.add_blackout(CPI)
    rig.engine.add_blackout(NFP)
    assert rig.engine.blackouts() == [NFP, CPI]  # by start
    sent = told.of(SetBlackouts)
    assert {a for a, _ in sent[-3:]} == {addresses.risk(a) for a in ("LEAD", "F1", "F2")}
    assert all(m == SetBlackouts((NFP, CPI)) for _, m in sent[-3:])
    rows = rig.rows("SELECT * FROM blackouts ORDER BY start")
    assert [r["label"] for r in rows] == ["NFP", "CPI"]
    assert rows[0]["start"] == NFP.start.isoformat()

    with pytest.raises(CommandRefused, match="already exists"):
        # the same interval written in another offset is the same blackout
        chicago = NFP.start.astimezone(timezone(timedelta(hours=-6)))
        rig.engine.add_blackout(Blackout(chicago, NFP.end, "NFP"))

    rig.restart()
    assert rig.engine.blackouts() == [NFP, CPI]
    view = rig.engine.risk_view("F1")
    assert view is not None and view.blackout == NFP  # the next one, from the store

    assert rig.engine.remove_blackout(NFP.key()) == NFP
    assert rig.engine.blackouts() == [CPI]
    assert [r["label"] for r in rig.rows("SELECT * FROM blackouts")] == ["CPI"]
    with pytest.raises(UnknownId, match="unknown blackout"):
        rig.engine.remove_blackout(NFP.key())


def test_s9_5_a_blackout_that_is_none_is_refused(rig: Rig) -> None:
    with pytest.raises(CommandRefused, match="not a blackout"):
        rig.engine.add_blackout("CPI")  # type: ignore[arg-type]


# --- the journal: each command replays --------------------------------------------------------


def test_risk_commands_are_journaled_with_their_arguments(rig: Rig) -> None:
    recorded: list[tuple[str, list[object]]] = []
    rig.engine._record = lambda name, *args: recorded.append((name, list(args)))  # type: ignore[method-assign]
    rig.engine.set_risk("F1", {"commission": D(1)})
    rig.engine.unset_risk("F1", ["commission"])
    rig.engine.set_profile("P", {"max_loss": D(1)})
    rig.engine.set_account_profile("F1", "P")
    rig.engine.unset_profile_keys("P", ["max_loss"])
    rig.engine.set_account_profile("F1", None)
    rig.engine.delete_profile("P")
    rig.engine.add_blackout(CPI)
    rig.engine.remove_blackout(CPI.key())
    assert recorded == [
        ("set_risk", ["F1", {"commission": D(1)}]),
        ("unset_risk", ["F1", ["commission"]]),
        ("set_profile", ["P", {"max_loss": D(1)}]),
        ("set_account_profile", ["F1", "P"]),
        ("unset_profile_keys", ["P", ["max_loss"]]),
        ("set_account_profile", ["F1", None]),
        ("delete_profile", ["P"]),
        ("add_blackout", [CPI]),
        ("remove_blackout", [CPI.key()]),
    ]


def _stored_profile_of(rig: Rig) -> dict[str, str | None]:
    return {r["id"]: r["profile"] for r in rig.rows("SELECT id, profile FROM accounts")}


def test_a_trade_is_unaffected_by_keys_that_are_off(rig: Rig) -> None:
    """0 turns a number off: an own 0 overrides the profile's cap."""
    rig.engine.set_profile("P", {"max_contracts": D(1)})
    rig.engine.set_account_profile("LEAD", "P")
    rig.engine.set_risk("LEAD", {"max_contracts": D(0)})
    assert RiskRules.of(rig.engine.effective_risk("LEAD")).max_contracts is None
    rig.trade("LEAD", 3)
    assert (rig.position("LEAD", ES), rig.position("F1", ES)) == (3, 3)
