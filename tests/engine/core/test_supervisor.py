"""The supervisor through the real engine (ARCHITECTURE: Supervisor; SEMANTICS S7.2).

A crashed actor of any kind is rebuilt in place — same address, same mailbox — from the store;
messages told to it while it restarts are all handled, the message it failed on is dropped, and
every restart writes an ``error`` ``restart`` activity entry. Past the restart intensity (5 in
30 s of engine clock) the accounts the actor serves are held in LIQUIDATE_ONLY without a flatten.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors import addresses
from actors.messages.group import DisableMember
from actors.messages.risk import SetLimits
from actors.risk import RiskView
from engine.core.topology import CommandRefused, GroupConfig
from engine.domain.gate import LIQUIDATE_ONLY_TEXT
from engine.domain.risk_status import LockReason, RiskStatus
from engine.host.address import Address
from tests.conftest import ES, MakeEngine, Rig, member

D = Decimal
OK, LQ, LK = RiskStatus.OK, RiskStatus.LIQUIDATE_ONLY, RiskStatus.LOCKED
KINDS = ("connection", "account", "group", "risk")
IDENT = {"connection": "f1", "account": "F1", "group": "g1", "risk": "F1"}


# --- helpers --------------------------------------------------------------------------------------


def behaviour(rig: Rig, address: Address) -> Any:
    """The behaviour object hosted at ``address`` now (to tell a restart from the same one)."""
    return rig.engine.runtime.inspect(address, lambda actor: actor)


@contextmanager
def busy(rig: Rig, address: Address) -> Iterator[None]:
    """Keep the thread hosting ``address`` busy while the body runs, so that whatever the body
    tells it (the failure, then more messages) is queued behind each other and the restart
    happens with the rest still waiting — on the threads runtime as on the deterministic one,
    where nothing runs before the engine is waited on anyway."""
    if rig.runtime != "threads":
        yield
        return
    entered, release = threading.Event(), threading.Event()

    def hold(_: object) -> None:
        entered.set()
        release.wait(10)

    blocker = threading.Thread(target=rig.engine.runtime.inspect, args=(address, hold))
    blocker.start()
    try:
        assert entered.wait(10), "the host thread never ran the blocking read"
        yield
    finally:
        release.set()
        blocker.join(10)


def risk(rig: Rig, account: str) -> RiskView:
    view = rig.engine.risk_view(account)
    assert view is not None, f"no risk actor {account}"
    return view


def restarts(rig: Rig) -> list[Any]:
    return rig.activity(kind="restart")


def crash(rig: Rig, kind: str, ident: str, times: int = 1) -> None:
    for _ in range(times):
        rig.engine.inject_failure(kind, ident)
        rig.idle()


def assert_restarted(rig: Rig, kind: str, ident: str, before: object) -> None:
    """Same address, a fresh behaviour, one ``error`` ``restart`` entry naming the actor."""
    address = (kind, ident)
    assert rig.engine.runtime.exists(address)
    assert behaviour(rig, address) is not before
    entries = restarts(rig)
    assert len(entries) == 1, [e["message"] for e in entries]
    entry = entries[0]
    assert entry["level"] == "error"
    assert f"{kind} actor {ident}" in entry["message"]
    if kind in ("account", "risk"):
        assert entry["account"] == ident
    if kind == "connection":
        assert entry["connection"] == ident
    assert rig.engine.supervisor.total == 1


def four_accounts(make_engine: MakeEngine, tmp_path: Path, runtime: str) -> Rig:
    """LEAD (login lead) → F1 and F2 (both on login f1) and F3 (login f3)."""
    return make_engine(
        tmp_path,
        runtime,
        connections=("lead", "f1", "f3"),
        accounts=(("LEAD", "lead"), ("F1", "f1"), ("F2", "f1"), ("F3", "f3")),
        groups=(GroupConfig("g1", "LEAD", [member("F1"), member("F2"), member("F3")]),),
    )


# --- one-for-one restart in place, mailbox kept ---------------------------------------------------


def test_a_crashed_risk_actor_handles_every_message_told_while_it_restarts(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    address = addresses.risk("F1")
    before = behaviour(rig, address)
    tell = rig.engine.runtime.tell
    with busy(rig, address):
        rig.engine.inject_failure("risk", "F1")
        # told right behind the failure, before it is handled: they reach the new behaviour
        # (each SetLimits carries the account's whole effective keys, S9.7)
        tell(address, SetLimits({"daily_loss_limit": D(1000)}, ("daily_loss_limit",)))
        both = {"daily_loss_limit": D(1000), "weekly_loss_limit": D(3000)}
        tell(address, SetLimits(both, ("weekly_loss_limit",)))
        rig.engine.lock("F1")
    rig.idle()
    assert_restarted(rig, "risk", "F1", before)
    view = risk(rig, "F1")
    assert view.limits == {"daily_loss_limit": D(1000), "weekly_loss_limit": D(3000)}
    assert view.status is LK  # F1 is flat: a manual lock locks at once
    assert view.lock_reason is LockReason.MANUAL


def test_a_crashed_account_actor_handles_every_fill_that_arrived_while_it_restarts(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.trade("F1", 1)  # the owner's own trade, @ 5000
    rig.price(ES, 5010)
    address = addresses.account("F1")
    before = behaviour(rig, address)
    with busy(rig, address):
        rig.engine.inject_failure("account", "F1")
        rig.broker.trade("F1", ES, -1)  # @ 5010: realizes +500
        rig.broker.trade("F1", ES, 2)  # @ 5010: long 2
    rig.idle()
    assert_restarted(rig, "account", "F1", before)
    view = rig.engine.account_view("F1")
    assert view is not None
    assert rig.broker_position("F1") == 2
    assert view.positions == {ES: 2}  # each fill applied once, none lost
    assert view.realized_daily == D(500)
    assert view.unrealized == 0


def test_a_crashed_connection_actor_handles_every_event_that_arrived_while_it_restarts(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    address = addresses.connection("f1")
    before = behaviour(rig, address)
    with busy(rig, address):
        rig.engine.inject_failure("connection", "f1")
        rig.broker.drop("f1")  # SessionLost
        rig.engine.take_offline("f1")
    rig.idle()
    assert_restarted(rig, "connection", "f1", before)
    assert rig.engine.connection_state("f1") == "disconnected"
    view = rig.engine.account_view("F1")
    assert view is not None
    assert view.connection_state == "disconnected"  # the new actor told its accounts
    (row,) = rig.rows("SELECT state, offline FROM connections WHERE id = 'f1'")
    assert (row["state"], row["offline"]) == ("disconnected", 1)
    changes = [r["message"] for r in rig.activity(connection="f1", kind="state_change")]
    assert any("connected → disconnected" in m for m in changes), changes
    # the restarted actor goes on with the S1.4 table: the user's reconnect brings it back
    rig.engine.reconnect("f1")
    rig.idle()
    assert rig.engine.connection_state("f1") == "connected"


def test_a_crashed_group_actor_handles_every_message_told_while_it_restarts(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    address = addresses.group("g1")
    before = behaviour(rig, address)
    tell = rig.engine.runtime.tell
    with busy(rig, address):
        rig.engine.inject_failure("group", "g1")
        tell(address, DisableMember("F1", "first reason"))
        tell(address, DisableMember("F2", "second reason"))
        rig.broker.trade("LEAD", ES, 1)
        rig.broker.trade("LEAD", ES, 1)
    rig.idle()
    assert_restarted(rig, "group", "g1", before)
    view = rig.engine.group_view("g1")
    assert view is not None
    reasons = {m.account: m.disable_reason for m in view.members}
    assert reasons == {"F1": "first reason", "F2": "second reason"}
    stored = rig.rows("SELECT account, disable_reason FROM memberships ORDER BY account")
    assert [(r["account"], r["disable_reason"]) for r in stored] == [
        ("F1", "first reason"),
        ("F2", "second reason"),
    ]
    assert view.leader_positions == {ES: 2}
    # both leader fills fanned out once each (the gates are OK: a disabled membership is
    # still offered the fill)
    assert rig.position("F1") == rig.position("F2") == 2
    assert rig.order_qtys("F1") == rig.order_qtys("F2") == [1, 1]


@pytest.mark.parametrize("kind", KINDS)
def test_the_message_an_actor_failed_on_is_dropped_and_one_error_entry_written(
    make_engine: MakeEngine, tmp_path: Path, runtime: str, kind: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.trade("LEAD", 1)
    ident = IDENT[kind]
    before = behaviour(rig, (kind, ident))
    crash(rig, kind, ident)
    rig.idle()
    # restarted once: the failing message was not delivered again to the new behaviour
    assert_restarted(rig, kind, ident, before)
    assert risk(rig, "F1").status is OK
    assert not risk(rig, "F1").supervisor_hold
    # the restarted actor takes part as before: the next leader fill is copied once
    rig.trade("LEAD", 1)
    assert rig.position("F1") == rig.position("F2") == 2
    assert rig.order_qtys("F1") == rig.order_qtys("F2") == [1, 1]
    assert len(restarts(rig)) == 1


def test_a_group_restarted_while_its_leader_is_down_does_not_reconcile_toward_a_stale_leader(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.trade("LEAD", 1)
    rig.trade("F1", 2)  # the owner's own: F1 holds 3
    rig.broker.drop("lead")
    rig.idle()
    rig.trade("LEAD", 2)  # unseen: L_now = 3
    rig.broker.drop("f1")
    rig.idle()
    crash(rig, "group", "g1")
    rig.engine.reconnect("f1")
    rig.idle()
    # as without the crash: the leader's position is not known while its connection is down
    assert rig.position("F1") == 3
    assert rig.orders("F1", "reconciliation") == []
    rig.engine.reconnect("lead")
    rig.idle()
    assert rig.position("F1") == 3  # t(L_now) = 3: nothing to do


def test_s3_5_a_connection_restarted_while_its_snapshot_is_unknown_asks_for_it_again(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    """The old actor's wait (and its retry timer) goes with it; the rebuilt one asks the broker
    again, so the accounts of the login are not left unconfirmed until the next return."""
    rig = four_accounts(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.broker.drop("f1")
    rig.idle()
    rig.trade("LEAD", -2)
    rig.broker.fail_snapshot("f1", 2)
    rig.engine.reconnect("f1")  # unknown: a retry in 1 s
    rig.idle()
    crash(rig, "connection", "f1")  # the rebuilt actor asks at once: the second error
    for account in ("F1", "F2"):
        view = rig.engine.account_view(account)
        assert view is not None
        assert not view.positions_confirmed
        assert rig.broker_position(account) == 2
    rig.advance(1)  # its own retry: the answer
    for account in ("F1", "F2"):
        view = rig.engine.account_view(account)
        assert view is not None
        assert view.positions_confirmed
        assert view.positions == {}
        # the return is reconciled once, however the answer was asked for
        assert len(rig.reconciliations(account)) == 1
    rig.trade("LEAD", 1)
    assert rig.order_qtys("F1") == rig.order_qtys("F2") == [2, 1]


# --- restart intensity: more than 5 in 30 s of engine clock ---------------------------------------


def test_five_crashes_within_30s_do_not_escalate(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.trade("LEAD", 1)
    crash(rig, "risk", "F1", times=5)
    view = risk(rig, "F1")
    assert view.status is OK
    assert not view.supervisor_hold
    assert len(restarts(rig)) == 5
    assert all(r["level"] == "error" for r in restarts(rig))
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 2


def test_a_sixth_crash_within_30s_holds_the_account_without_a_flatten(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.trade("LEAD", 1)
    crash(rig, "risk", "F1", times=6)
    view = risk(rig, "F1")
    assert view.status is LQ
    assert view.supervisor_hold
    assert not view.flattening  # no flatten: the position is left as it is
    assert rig.position("F1") == rig.broker_position("F1") == 1
    assert rig.orders("F1", "liquidation") == []
    held = [r for r in restarts(rig) if "held in LIQUIDATE_ONLY" in r["message"]]
    assert len(held) == 1
    assert held[0]["level"] == "error"
    assert held[0]["account"] == "F1"
    # no new exposure: an opening copy is rejected with the S5.4 text
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 1
    assert any(LIQUIDATE_ONLY_TEXT in m for m in rig.messages("F1", "rejection"))
    # the others are untouched
    assert risk(rig, "F2").status is OK
    assert rig.position("F2") == 2
    # a person unlocks it
    rig.engine.unlock("F1")
    rig.idle()
    view = risk(rig, "F1")
    assert view.status is OK
    assert not view.supervisor_hold
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 2


@pytest.mark.parametrize(
    "gaps",
    [
        pytest.param([6.1] * 5, id="six-over-30.5s"),
        pytest.param([0, 0, 0, 0, 31], id="five-then-one-31s-later"),
        pytest.param([0, 0, 31, 0, 0, 0, 0], id="three-window-slides-then-five"),
    ],
)
def test_crashes_spread_over_more_than_30s_of_engine_clock_do_not_escalate(
    make_engine: MakeEngine, tmp_path: Path, runtime: str, gaps: list[float]
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.trade("LEAD", 1)
    crash(rig, "risk", "F1")
    for gap in gaps:
        if gap:
            rig.advance(gap)
        crash(rig, "risk", "F1")
    assert len(restarts(rig)) == len(gaps) + 1
    view = risk(rig, "F1")
    assert view.status is OK
    assert not view.supervisor_hold
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 2


def test_the_intensity_window_is_engine_clock_a_sixth_crash_inside_it_escalates(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.trade("LEAD", 1)
    crash(rig, "risk", "F1")
    for _ in range(5):
        rig.advance(5)  # six crashes within 25 s
        crash(rig, "risk", "F1")
    view = risk(rig, "F1")
    assert view.status is LQ
    assert view.supervisor_hold
    assert rig.position("F1") == 1


@pytest.mark.parametrize(
    ("kind", "ident", "held"),
    [
        pytest.param("connection", "f1", {"F1", "F2"}, id="connection-every-account-of-it"),
        pytest.param("account", "F3", {"F3"}, id="account-itself"),
        pytest.param("risk", "F2", {"F2"}, id="risk-its-account"),
        pytest.param("group", "g1", {"LEAD", "F1", "F2", "F3"}, id="group-leader-and-followers"),
    ],
)
def test_escalation_holds_every_account_the_failing_actor_serves(
    make_engine: MakeEngine, tmp_path: Path, runtime: str, kind: str, ident: str, held: set[str]
) -> None:
    rig = four_accounts(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 1)
    crash(rig, kind, ident, times=5)
    assert all(risk(rig, a).status is OK for a in ("LEAD", "F1", "F2", "F3"))
    crash(rig, kind, ident)
    for account in ("LEAD", "F1", "F2", "F3"):
        view = risk(rig, account)
        expected = LQ if account in held else OK
        assert view.status is expected, account
        assert view.supervisor_hold is (account in held), account
        assert not view.flattening, account
        assert rig.position(account) == 1, account
    assert rig.orders(kind="liquidation") == []
    entries = [r for r in restarts(rig) if "held in LIQUIDATE_ONLY" in r["message"]]
    assert sorted(r["account"] for r in entries) == sorted(held)
    assert all(r["level"] == "error" for r in entries)


def test_escalation_of_a_connection_rejects_opening_copies_on_each_of_its_accounts(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = four_accounts(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 1)
    crash(rig, "connection", "f1", times=6)
    assert rig.engine.connection_state("f1") == "connected"
    rig.trade("LEAD", 1)
    assert rig.position("F3") == 2
    for account in ("F1", "F2"):
        assert rig.position(account) == 1, account
        assert any(LIQUIDATE_ONLY_TEXT in m for m in rig.messages(account, "rejection"))
    rig.trade("LEAD", -2)  # closing copies still go through
    assert rig.position("F1") == rig.position("F2") == rig.position("F3") == 0


def test_a_supervisor_hold_survives_an_engine_restart_until_unlocked(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(tmp_path)
    rig.trade("LEAD", 1)
    crash(rig, "risk", "F1", times=6)
    assert risk(rig, "F1").status is LQ
    rig.restart()
    view = risk(rig, "F1")
    assert view.status is LQ
    assert view.supervisor_hold
    assert rig.position("F1") == 1
    rig.engine.unlock("F1")
    rig.idle()
    assert risk(rig, "F1").status is OK


# --- failure injection is a command like any other ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "ident"),
    [
        ("connection", "nope"),
        ("account", "NOPE"),
        ("group", "nope"),
        ("risk", "NOPE"),
        ("account", "f1"),  # a connection's id is no account
        ("group", "F1"),  # an account's id is no group
        ("broker", "f1"),  # no such kind of actor
    ],
)
def test_inject_failure_of_an_unknown_actor_is_refused(
    make_engine: MakeEngine, tmp_path: Path, runtime: str, kind: str, ident: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    with pytest.raises(CommandRefused, match=ident):
        rig.engine.inject_failure(kind, ident)
    rig.idle()
    assert restarts(rig) == []
    assert rig.engine.supervisor.total == 0


def test_inject_failure_of_a_deleted_actor_is_refused(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.delete_connection("f1")
    rig.idle()
    for kind, ident in (("connection", "f1"), ("account", "F1"), ("risk", "F1")):
        with pytest.raises(CommandRefused):
            rig.engine.inject_failure(kind, ident)
    rig.idle()
    assert restarts(rig) == []


# --- the S9 reasons: a rebuilt risk actor keeps them, from the store ----------------------------


def test_s9_3_a_risk_actor_crashed_under_an_account_lock_keeps_it_and_its_threshold(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"max_loss": D(500), "max_loss_mode": "intraday_trailing"})
    rig.idle()
    rig.trade("LEAD", 1)
    rig.price(ES, D(5010))  # a new peak: 50,500, threshold 50,000
    rig.idle()
    assert risk(rig, "F1").threshold == D(50000)
    rig.price(ES, D(4999))
    rig.idle()
    assert risk(rig, "F1").lock_reason is LockReason.ACCOUNT
    crash(rig, "risk", "F1")
    view = risk(rig, "F1")
    assert view.status is LK
    assert view.lock_reason is LockReason.ACCOUNT
    assert view.threshold == D(50000)  # the peak is durable, not remembered
    assert view.start_balance == D(50000)


def test_s9_4_a_risk_actor_crashed_under_a_session_close_keeps_it_until_the_reset(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"flatten_at": "15:10"})
    rig.idle()
    rig.engine.advance_to(datetime(2026, 1, 6, 21, 10, tzinfo=UTC))  # 15:10 CST
    rig.idle()
    assert risk(rig, "F1").lock_reason is LockReason.SESSION_CLOSE
    crash(rig, "risk", "F1")
    assert risk(rig, "F1").status is LK
    assert len(rig.activity("F1", "session_close")) == 1  # applied once, not again
    rig.engine.advance_to(datetime(2026, 1, 6, 23, 0, tzinfo=UTC) + timedelta(seconds=1))
    rig.idle()
    assert risk(rig, "F1").status is OK
    assert risk(rig, "F1").lock_reason is LockReason.NONE
