"""While the engine cannot make its state durable (decision 0014): copies and reconciliations
are held back — none reaches the broker, each is in the ledger as ``not_sent`` — a risk breach
still flattens, commands that must be durable are refused, and once the disk takes writes again
the followers are reconciled toward their leader and the breach's lock is in the status log.

The disk is the engine's drill (``MIMIK_DISK_FULL_FLAG``); ``tests/engine/live/test_full_disk.py``
does the same to a live engine on a real full filesystem."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.ledger import NOT_SENT
from engine.domain.risk_status import RiskStatus
from engine.storage import durability
from engine.storage.durability import NotDurable
from engine.storage.frames import read_frames
from tests.conftest import ES, MakeEngine, Rig, member


def _until(rig: Rig, done: object) -> None:
    """Let the actors work until ``done()`` holds (the store's writer comes back on its own
    thread; pytest-timeout guards a hang)."""
    assert callable(done)
    while True:
        rig.engine.durability.poll()
        rig.idle()
        if done():
            return
        time.sleep(0.01)


def test_a_full_disk_holds_copies_back_and_a_breach_still_flattens(
    make_engine: MakeEngine, tmp_path: Path, runtime: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "disk-full"
    monkeypatch.setattr(durability.DRILL, "flag", flag)
    rig = make_engine(tmp_path, runtime)
    engine = rig.engine
    engine.set_risk("F1", {"daily_loss_limit": Decimal(500)})
    rig.trade("LEAD", 2)
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (2, 2)
    sent_before = set(rig.broker.accepted_client_order_ids)

    flag.touch()  # the disk is full from here on
    rig.trade("LEAD", -1)  # a closing copy for each follower: held back
    assert not engine.health().ok
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (2, 2)
    with pytest.raises(NotDurable):
        engine.flatten_all()  # its cause number cannot be made durable: refused, not lost
    rig.price(ES, 4990)  # F1: 2 x -10 points x 50 = -1000, past its limit of 500
    assert rig.broker_position("F1") == 0  # the breach flattened it all the same
    assert rig.status("F1") is RiskStatus.LOCKED
    assert rig.broker_position("F2") == 2  # nothing but the liquidation went out
    went_out = set(rig.broker.accepted_client_order_ids) - sent_before
    assert went_out and all(coid.startswith("L") for coid in went_out), went_out

    flag.unlink()  # space again
    _until(rig, lambda: engine.health().ok and rig.broker_position("F2") == 1)
    assert rig.broker_position("F1") == 0
    assert rig.status("F1") is RiskStatus.LOCKED

    held = rig.orders(kind="copy")[-2:]
    assert {(r["account"], r["qty"], r["status"]) for r in held} == {
        ("F1", -1, NOT_SENT),
        ("F2", -1, NOT_SENT),
    }
    assert not {r["client_order_id"] for r in held} & set(rig.broker.accepted_client_order_ids)
    intents = {f[0] for f in read_frames(rig.store.path.with_suffix(".intents"))[0]}
    assert not {r["client_order_id"] for r in held} & intents
    logged = [f[0] for f in read_frames(rig.store.path.with_suffix(".status"))[0]]
    assert "F1" in logged  # the breach's status, written once the disk took it
    changes = [
        (r["level"], r["message"]) for r in rig.activity(kind="state_change") if not r["connection"]
    ]
    assert [level for level, _ in changes] == ["error", "info"]
    assert "cannot make its state durable" in changes[0][1]
    assert "durable again" in changes[1][1]
    reconciled = [r for r in rig.reconciliations("F2") if "reconcile:lead#" in r["cause"]]
    assert reconciled, rig.reconciliations("F2")


def test_setup_changes_are_refused_whole_while_state_is_not_durable(
    make_engine: MakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "disk-full"
    monkeypatch.setattr(durability.DRILL, "flag", flag)
    rig = make_engine(tmp_path, groups=())
    engine = rig.engine
    flag.touch()
    with pytest.raises(NotDurable):
        engine.add_group("g2", "LEAD", [member("F1")])
    with pytest.raises(NotDurable):
        engine.set_risk("F1", {"daily_loss_limit": Decimal(100)})
    assert "g2" not in engine.topology.groups
    flag.unlink()
    _until(rig, lambda: engine.health().ok)
    assert not rig.rows("SELECT * FROM groups")  # nothing half made
    assert not rig.rows("SELECT * FROM risk_limits")
    engine.add_group("g2", "LEAD", [member("F1")])  # and made whole once it can be
    rig.trade("LEAD", 1)
    assert rig.broker_position("F1") == 1
