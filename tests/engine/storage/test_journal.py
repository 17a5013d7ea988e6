"""The journal (issue: nothing lost): frames, the wire codec, and replaying a recorded session
to the same final state."""

from __future__ import annotations

import subprocess
import sys
import typing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.base import (
    AccountSnapshot,
    BrokerEvent,
    Fill,
    FillCorrected,
    LegRole,
    ModifyRejected,
    OrderAccepted,
    OrderReport,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PositionInfo,
    PricesRestored,
    PricesUnavailable,
    Snapshot,
    SnapshotFailed,
    TimeInForce,
    TokenIssued,
    WorkingOrder,
)
from engine.core.topology import CommandRefused
from engine.domain.copying import CopyMode, Membership
from engine.domain.sessions import Blackout
from engine.replay.harness import Harness
from engine.replay.journal_replay import JournalError, replay_journal
from engine.replay.scenario import load_scenario
from engine.storage.event_codec import CLASSES, REDACTED, WireError, decode, encode
from engine.storage.frames import FrameError, FrameLog, encode_frame, read_frames
from engine.storage.journal import read_journal

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def test_frames_round_trip_and_a_torn_last_frame_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = FrameLog(path)
    log.append([[1, "a"], [2, "b"]])
    log.close()
    whole = path.read_bytes()
    path.write_bytes(whole + encode_frame([3, "c"])[:-2])  # a crash mid-write
    frames, good = read_frames(path)
    assert frames == [[1, "a"], [2, "b"]]
    assert good == len(whole)
    FrameLog(path).close()  # opening for append truncates the torn tail
    assert path.read_bytes() == whole


def test_corruption_before_the_end_is_reported_not_skipped(tmp_path: Path) -> None:
    path = tmp_path / "log"
    first, second = encode_frame([1, "a"]), encode_frame([2, "b"])
    damaged = bytearray(first)
    damaged[-1] ^= 0xFF
    path.write_bytes(bytes(damaged) + second)
    with pytest.raises(FrameError, match="corrupt frame at byte 0"):
        read_frames(path)


def test_wire_round_trips_every_broker_event() -> None:
    events = [
        Fill("c", "A", "X1", "O1", "C1-1", "ESZ6", -2, Decimal("5000.25"), T0, True),
        OrderAccepted("c", "A", None, "O2", "ESZ6", 0, OrderType.LIQUIDATE),
        Snapshot(
            "c",
            "c#1",
            {
                "A": AccountSnapshot(
                    {"ESZ6": PositionInfo(3, Decimal("4999.5"))},
                    (WorkingOrder("O3", "C9-1", "ESZ6", -1, OrderType.MARKET),),
                    orders=(
                        OrderReport("C9-1", "O3", OrderStatus.WORKING),
                        OrderReport("C8-1", None, OrderStatus.REJECTED),
                    ),
                )
            },
        ),
        SnapshotFailed("c", "c#2", "HTTP 429: penalty ticket"),
        FillCorrected("c", "A", "X1", "busted"),
        PricesUnavailable("c", "ESZ6", "market data subscription refused"),
        PricesRestored("c", "ESZ6"),
        OrderAccepted(
            "c", "A", "M1-1", "O5", "ESZ6", -2, OrderType.STOP, stop=Decimal("4990.25"),
            tif=TimeInForce.GTC, role=LegRole.STOP, parent="O4", oco="O6", active=False,
        ),
        OrderAccepted("c", "A", None, "O4", "ESZ6", 2, OrderType.LIMIT, price=Decimal("5000"),
                      legs=("O5", "O6")),
        OrderUpdated("c", "A", "M1-1", "O5", "ESZ6", -1, stop=Decimal("4991"), filled=1),
        ModifyRejected("c", "A", "O5", "M1-1", "order is done"),
    ]  # fmt: skip
    for event in events:
        assert decode(encode(event)) == event


def test_the_wire_knows_every_kind_of_broker_event() -> None:
    """A broker event the journal cannot record leaves a gap in every live run (S7)."""
    assert set(typing.get_args(BrokerEvent)) <= set(CLASSES.values())


def test_string_enums_come_back_as_their_enums() -> None:
    """A membership's copy mode and an order's type, tif and leg role are string enums, written
    as their strings: decoded, they are the enums again (setup rows store ``copy.value``)."""
    member = decode(encode(Membership("F1", Decimal(2), copy=CopyMode.ORDERS)))
    assert member.copy is CopyMode.ORDERS
    accepted = OrderAccepted(
        "c",
        "A",
        "C1-1",
        "O2",
        "ESZ6",
        -1,
        OrderType.STOP,
        stop=Decimal(4990),
        tif=TimeInForce.GTC,
        role=LegRole.STOP,
    )
    decoded = decode(encode(accepted))
    assert (decoded.order_type, decoded.tif, decoded.role) == (
        OrderType.STOP,
        TimeInForce.GTC,
        LegRole.STOP,
    )
    assert type(decoded.role) is LegRole
    with pytest.raises(WireError, match="not a CopyMode"):
        decode(["C", "Membership", {"account": "F1", "ratio": ["D", "1"], "copy": "all"}])


def test_tokens_never_reach_the_wire() -> None:
    encoded = encode(TokenIssued("c", token="secret-token-123"))
    assert "secret-token-123" not in repr(encoded)
    assert decode(encoded).token == REDACTED


def test_the_wire_refuses_classes_it_does_not_know() -> None:
    with pytest.raises(WireError):
        decode(["C", "Popen", {"args": "rm -rf /"}])
    with pytest.raises(WireError):
        encode(object())


def _recording(scenario: str, runtime: str, data_dir: Path, journal: Path) -> Harness:
    """A library scenario's harness that journals everything entering its engine."""
    return Harness(load_scenario(ROOT / "scenarios" / scenario), runtime, data_dir, journal=journal)


@pytest.mark.parametrize(
    "scenario",
    [
        "s2_2_ratio_and_max_qty_cap.toml",
        "s3_2_leader_flat_follower_closed_on_reconnect.toml",
        "s5_4_liquidate_only_gate.toml",
        "s5_6_rejected_flatten_retried_with_backoff.toml",
        "s5_8_daily_lock_cleared_at_1700_not_1659.toml",
        "s6_flatten_group_does_not_flip_followers.toml",
        "s3_5_failed_leader_snapshot_on_reconnect_followers_wait_then_reconciled_once.toml",
        "s3_5_failed_follower_snapshot_at_start_copies_on_the_confirmed_position.toml",
        "s3_5_leader_and_follower_snapshots_fail_retried_1_2_4s_reconciled_once.toml",
    ],
)
def test_a_recorded_session_replays_to_the_same_final_state(scenario: str, tmp_path: Path) -> None:
    journal = tmp_path / "engine.journal"
    harness = _recording(scenario, "threads", tmp_path, journal)
    try:
        harness.setup()
        harness.run()
        final = harness.final_state()
    finally:
        harness.close()
    report = replay_journal(journal)
    assert report["final"] == final
    assert report["frames"] > 1


def test_a_journal_that_does_not_start_with_a_setup_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j"
    log = FrameLog(path)
    log.append([[1, T0.isoformat(), "quote", ["ESZ6", ["D", "5000"]]]])
    log.close()
    with pytest.raises(JournalError, match="frame 1: a journal starts with a setup frame"):
        replay_journal(path)


def test_the_cli_reports_a_corrupt_journal_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "j"
    damaged = bytearray(encode_frame([1, T0.isoformat(), "setup", {}]))
    damaged[-1] ^= 0xFF
    path.write_bytes(bytes(damaged) + encode_frame([2, T0.isoformat(), "clock", None]))
    done = subprocess.run(
        [sys.executable, "-m", "engine", "replay", "--journal", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2
    assert "corrupt frame at byte 0" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_journal_from_a_newer_engine_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j"
    log = FrameLog(path)
    setup = encode({"version": 99, "schema": 1, "reconcile": False, "store": {}})
    log.append([[1, T0.isoformat(), "setup", setup]])
    log.close()
    with pytest.raises(JournalError, match="written by a newer engine"):
        replay_journal(path)


def test_an_event_the_codec_cannot_encode_leaves_a_gap_the_replay_reports(tmp_path: Path) -> None:
    """Recording never stops trading: the event is replaced by a ``gap`` frame and the replay
    of the session says which frames it could not know."""

    class Unknown:
        pass

    journal = tmp_path / "engine.journal"
    harness = _recording("s2_2_ratio_and_max_qty_cap.toml", "deterministic", tmp_path, journal)
    try:
        harness.setup()
        assert harness.engine.journal is not None
        harness.engine.journal.record("broker", ["lead", Unknown()])
        harness.run()
        final = harness.final_state()
    finally:
        harness.close()
    report = replay_journal(journal)
    assert report["final"] == final
    (gap,) = report["gaps"]
    frames = read_journal(journal)
    assert next(f for f in frames if f[0] == gap)[2:] == (
        "gap",
        {"kind": "broker", "error": "cannot encode Unknown"},
    )


def test_setup_changes_while_running_are_journaled_and_replayed(tmp_path: Path) -> None:
    """Adding a connection and a group, changing a follower's terms, deleting a group and an
    account: each is a journaled command the replay applies, so the replayed session ends where
    the recorded one did."""
    journal = tmp_path / "engine.journal"
    harness = _recording("s2_2_ratio_and_max_qty_cap.toml", "deterministic", tmp_path, journal)
    try:
        harness.setup()
        harness.run()
        engine = harness.engine
        engine.add_connection("f9", "paper", {"F9": Decimal(25000), "F8": Decimal(30000)})
        engine.add_group("g2", "F8", [Membership("F9", Decimal(2))])
        engine.update_follower("g1", Membership("F1", Decimal(3)))
        harness.settle()
        harness.broker.trade("LEAD", "ESZ6", 1)
        harness.broker.trade("F8", "ESZ6", 1)
        harness.settle()
        engine.delete_group("g2")
        engine.delete_account("F8")
        harness.broker.trade("LEAD", "ESZ6", 1)
        harness.settle()
        final = harness.final_state()
    finally:
        harness.close()
    assert final["accounts"]["F1"]["positions"] == {"ESZ6": 6}  # ratio 3 from the change on
    assert final["accounts"]["F9"]["positions"] == {"ESZ6": 2}  # F8's one lot, doubled
    assert "F8" not in final["accounts"]
    report = replay_journal(journal)
    assert report["final"] == final


def test_withdrawn_fills_and_refused_prices_are_journaled_and_replayed(tmp_path: Path) -> None:
    """S3.5 / S10.3 events from the broker replay like any other: a withdrawn fill (from the
    paper broker, through the session) and a refused then restored price feed (recorded and
    pushed as the session's sink does)."""
    journal = tmp_path / "engine.journal"
    harness = _recording(
        "s3_2_leader_flat_follower_closed_on_reconnect.toml", "deterministic", tmp_path, journal
    )
    try:
        harness.setup()
        harness.run()
        engine, broker = harness.engine, harness.broker
        broker.trade("LEAD", "ESZ6", 2)
        harness.settle()
        broker.correct_fill(broker.fill_ids("LEAD")[-1], "busted")
        harness.settle()
        assert engine.journal is not None
        for event in (
            PricesUnavailable("f1", "ESZ6", "subscription refused"),
            PricesRestored("f1", "ESZ6"),
        ):
            engine.journal.record("broker", ["f1", event])
            engine.inbox("f1").push(event)
            harness.settle()
        final = harness.final_state()
        activity = engine.store.query("SELECT kind, level FROM activity")
    finally:
        harness.close()
    assert ("reconciliation", "error") in [tuple(r) for r in activity]
    frames = read_journal(journal)
    kinds = {type(decode(p[1])).__name__ for _, _, kind, p in frames if kind == "broker"}
    assert {"FillCorrected", "PricesUnavailable", "PricesRestored"} <= kinds
    report = replay_journal(journal)
    assert report["final"] == final


def test_risk_keys_profiles_and_blackouts_are_journaled_and_replayed(tmp_path: Path) -> None:
    """S9: an account's own keys, a named profile and the profile an account uses (S9.7), a
    blackout (S9.5) and the removals, a refused command among them: each replays, so the
    replayed session charges the same commissions and shows the same threshold."""
    journal = tmp_path / "engine.journal"
    harness = _recording("s2_2_ratio_and_max_qty_cap.toml", "deterministic", tmp_path, journal)
    try:
        harness.setup()
        harness.run()
        engine, broker = harness.engine, harness.broker
        engine.set_profile("50K", {"commission": Decimal("2.5"), "max_loss": Decimal(2000)})
        engine.set_account_profile("F2", "50K")
        engine.set_risk("LEAD", {"commissions": {"ES": Decimal(1)}, "max_loss_mode": "static"})
        engine.add_blackout(Blackout(T0.replace(year=2027), T0.replace(year=2027, hour=16), "X"))
        with pytest.raises(CommandRefused):
            engine.delete_profile("50K")  # F2 uses it
        broker.trade("LEAD", "ESZ6", 1)
        harness.settle()
        engine.unset_profile_keys("50K", ["max_loss"])
        engine.unset_risk("LEAD", ["commissions"])
        engine.remove_blackout(engine.blackouts()[0].key())
        broker.trade("LEAD", "ESZ6", -1)
        harness.settle()
        engine.set_account_profile("F2", None)
        engine.delete_profile("50K")
        final = harness.final_state()
    finally:
        harness.close()
    assert final["accounts"]["LEAD"]["commissions"] == 1.0  # the buy only: unset before the sell
    assert final["accounts"]["F2"]["commissions"] == 5.0  # its copies, 2.5 each
    report = replay_journal(journal)
    assert report["final"] == final
