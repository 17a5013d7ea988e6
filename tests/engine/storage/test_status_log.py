"""The status log (S7.2): a status or lock change is durable before anything acts on it, even
when the store loses its last commits; the newer of the store row and the logged state wins."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.risk_status import LockReason, RiskStatus
from engine.domain.state import FlattenRecord, RiskState
from engine.storage.frames import encode_frame
from engine.storage.status_log import StatusLog, StatusLogError
from tests.conftest import ES, MakeEngine, Rig


def status_file(store_path: Path) -> Path:
    return store_path.with_suffix(".status")


def test_states_round_trip_and_the_last_frame_of_each_account_wins(tmp_path: Path) -> None:
    log = StatusLog(tmp_path / "x.status")
    first = RiskState("LIQUIDATE_ONLY", "daily", Decimal("50100.5"), version=3)
    second = RiskState(
        "LOCKED",
        "daily",
        Decimal("50100.5"),
        triggers_off=("daily_loss_limit",),
        lock_triggers=("daily_loss_limit",),
        flatten=FlattenRecord(2, "breach:F1:2", "breach", 1, {"ESZ6": 2}),
        flattens=2,
        version=4,
    )
    other = RiskState("OK", "", Decimal(50000), version=9)
    log.record("F1", first)
    log.record("F2", other)
    log.record("F1", second)
    log.close()
    assert StatusLog(tmp_path / "x.status").latest() == {"F1": second, "F2": other}


def test_a_frame_that_is_not_a_risk_state_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.status"
    path.write_bytes(encode_frame(["F1", {"status": "OK"}]) + encode_frame(["F1", {}]))
    with pytest.raises(StatusLogError, match=r"x\.status: frame 1: KeyError"):
        StatusLog(path).latest()


def test_a_lock_the_store_lost_comes_back_from_the_status_log(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """The lock was acted on (its activity entry is written, a liquidation may be out) but the
    store's commit of the status never happened: the restart finds it in the status log."""
    rig = make_engine(tmp_path)
    rig.engine.lock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LOCKED
    rig.store.write(lambda c: c.execute("DELETE FROM risk_state WHERE account = 'F1'"), wait=True)
    rig.restart()
    rig.idle()
    view = rig.engine.risk_view("F1")
    assert view is not None
    assert (view.status, view.lock_reason) == (RiskStatus.LOCKED, LockReason.MANUAL)
    assert status_file(rig.store.path).stat().st_size == 0  # the store has it now
    row = rig.rows("SELECT status, lock_reason FROM risk_state WHERE account = 'F1'")[0]
    assert (row["status"], row["lock_reason"]) == ("LOCKED", "manual")


def test_a_newer_store_row_wins_over_an_older_logged_state(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """Only status changes go to the log; a later save (a new high-water mark, say) is only in
    the store, with a higher version: the restart keeps it."""
    rig = make_engine(tmp_path)
    rig.engine.lock("F1")
    rig.engine.unlock("F1")
    rig.idle()
    rig.store.write(
        lambda c: c.execute(
            "UPDATE risk_state SET high_water = '51234', version = version + 1 WHERE account = 'F1'"
        ),
        wait=True,
    )
    rig.restart()
    rig.idle()
    view = rig.engine.risk_view("F1")
    assert view is not None
    assert view.status is RiskStatus.OK
    assert view.high_water == Decimal(51234)


def _lose_the_store_row(rig: Rig, account: str) -> None:
    """What a kill before the store's commit leaves: the risk row as it was never written."""
    rig.store.write(
        lambda c: c.execute("DELETE FROM risk_state WHERE account = ?", (account,)), wait=True
    )


def test_s5_3_a_lock_logged_without_its_flatten_is_flattened_after_the_restart(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """A kill between the LIQUIDATE_ONLY and the flatten it starts leaves the status log with
    the one and not the other. The restart must still liquidate and then lock — not hold the
    account in LIQUIDATE_ONLY, with its position open, forever (found by the kill -9 test)."""
    rig = make_engine(tmp_path)
    rig.trade("F1", 2)

    def killed_after_the_status() -> None:
        _lose_the_store_row(rig, "F1")
        log = StatusLog(status_file(rig.store.path))
        log.record("F1", RiskState("LIQUIDATE_ONLY", "manual", Decimal(50000), version=5))
        log.close()

    rig.restart(stopped=killed_after_the_status)
    rig.idle()
    assert rig.broker_position("F1") == 0
    assert rig.status("F1") is RiskStatus.LOCKED
    assert [r["kind"] for r in rig.orders("F1")] == ["liquidation"]
    view = rig.engine.risk_view("F1")
    assert view is not None and view.lock_reason is LockReason.MANUAL


def test_s5_3_a_flatten_and_its_sends_are_logged_before_the_liquidation_goes_out(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """The store's row behind the lock is lost, the liquidation is working at the broker: the
    restart carries on with the logged flatten — it neither cancels that liquidation nor sends
    its client order id again (a duplicate the broker would refuse)."""
    rig = make_engine(tmp_path)
    rig.trade("F1", 2)
    rig.broker.hold("f1")  # the liquidation is accepted and stays working
    rig.engine.lock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    logged = StatusLog(status_file(rig.store.path)).latest()["F1"]
    assert logged.flatten is not None and logged.flatten.sends == {ES: 1}

    rig.restart(stopped=lambda: _lose_the_store_row(rig, "F1"))
    rig.idle()
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY  # its liquidation still works
    rig.broker.release("f1")
    rig.idle()
    assert rig.broker_position("F1") == 0
    assert rig.status("F1") is RiskStatus.LOCKED
    assert rig.broker.duplicate_rejections == ()
    assert len(rig.orders("F1", "liquidation")) == 1
