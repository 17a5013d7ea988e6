"""A disk that refuses writes (decision 0014): the frame logs and the store fail whole, say so,
lose nothing queued, and come back when the disk takes writes again — on a real full tmpfs
where the test may mount one, and through the drill everywhere."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from brokers.clock import VirtualClock
from engine.domain.ledger import NOT_SENT, LedgerRow
from engine.storage import durability
from engine.storage.durability import Durability, NotDurable
from engine.storage.frames import FrameLog, encode_frame, read_frames
from engine.storage.records import HELD_REASON, UNLOGGED_REASON, Records
from engine.storage.store import Store
from tests.engine.disks import Disk, Drill, disk

KINDS = ["tmpfs", "drill"]


@pytest.fixture(params=KINDS)
def full_disk(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Disk]:
    with disk(str(request.param), tmp_path / "disk", size="2m") as found:
        if isinstance(found, Drill):
            monkeypatch.setattr(durability.DRILL, "flag", found.flag)
        yield found


def wait_healthy(health: Durability) -> None:
    """Until every file takes writes again (pytest-timeout guards a hang)."""
    while not health.poll().ok:
        time.sleep(0.02)


# --- frame logs -----------------------------------------------------------------------------------


def test_a_refused_write_leaves_the_log_as_it_was_and_it_comes_back(full_disk: Disk) -> None:
    health = Durability()
    path = full_disk.root / "engine.intents"
    log = FrameLog(path, health)
    log.append([["first", 1]])
    before = path.read_bytes()
    full_disk.fill()
    with pytest.raises(NotDurable, match=r"engine\.intents"):
        log.append([["x" * 20_000, 2]])  # more than the last page's slack: cut short
    assert path.read_bytes() == before  # what did land of it was cut off again
    assert not health.ok
    assert set(health.failing()) == {"engine.intents"}
    assert "engine.intents" in health.health().reason
    assert health.poll().ok is False  # still full: the probe is refused
    full_disk.free()
    assert health.poll().ok
    log.append([["second", 3]])
    frames, good = read_frames(path)
    assert frames == [["first", 1], ["second", 3]]
    assert good == path.stat().st_size
    log.close()


def test_a_torn_last_frame_is_dropped_with_a_warning_naming_file_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "engine.fanouts"
    whole = encode_frame(["F", 1]) + encode_frame(["S", 2])
    path.write_bytes(whole + encode_frame(["S", 3])[:7])
    with capture_logs() as logs:
        log = FrameLog(path)
    log.close()
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1, logs
    assert warnings[0]["event"] == "torn last frame dropped"
    assert warnings[0]["file"] == str(path)
    assert (warnings[0]["offset"], warnings[0]["bytes"]) == (len(whole), 7)
    assert path.read_bytes() == whole


def test_a_whole_log_opens_without_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "engine.status"
    path.write_bytes(encode_frame(["A", 1]))
    with capture_logs() as logs:
        FrameLog(path).close()
    assert not [e for e in logs if e["log_level"] == "warning"]


# --- the store --------------------------------------------------------------------------------


def _count(store: Store) -> int:
    rows = store.query("SELECT count(*) FROM counters")
    return int(rows[0][0])


def test_the_store_keeps_every_queued_write_through_a_full_disk(full_disk: Disk) -> None:
    health = Durability()
    store = Store(full_disk.root / "engine.sqlite", health)
    try:
        assert stat.S_IMODE((full_disk.root / "engine.sqlite").stat().st_mode) == 0o600
        store.append("INSERT INTO counters (name, value) VALUES (?, ?)", ("before", 0))
        store.flush()
        full_disk.fill()
        for n in range(2000):  # pages more than a full disk's slack
            store.append("INSERT INTO counters (name, value) VALUES (?, ?)", (f"c{n:05d}", n))
        with pytest.raises(NotDurable, match=r"engine\.sqlite"):
            store.flush()  # refused as soon as the writer says so, never left hanging
        assert not health.ok
        assert "engine.sqlite" in health.health().reason
        assert not store.caught_up()
        assert _count(store) == 1  # a reader sees what is committed
        with pytest.raises(NotDurable):
            store.write(lambda conn: None, wait=True)  # refused at once, nothing queued
        full_disk.free()
        wait_healthy(health)
        store.flush()
        assert _count(store) == 2001  # nothing queued was lost
        names = [r[0] for r in store.query("SELECT name FROM counters ORDER BY rowid")]
        assert names == ["before", *(f"c{n:05d}" for n in range(2000))]
    finally:
        full_disk.free()
        store.close()


def test_a_store_closed_while_the_disk_refuses_says_what_was_not_saved(
    full_disk: Disk,
) -> None:
    health = Durability()
    store = Store(full_disk.root / "engine.sqlite", health)
    full_disk.fill()
    for n in range(2000):
        store.append("INSERT INTO counters (name, value) VALUES (?, ?)", (f"c{n}", n))
    while health.ok:  # the writer meets the full disk
        store.caught_up()
    with capture_logs() as logs:
        store.close()
    assert store.unsaved > 0
    assert any(e["event"] == "store closed with writes not saved" for e in logs)
    full_disk.free()


# --- records: what goes out, what is held, what is written later ------------------------------


def _row(coid: str, kind: str) -> LedgerRow:
    return LedgerRow(coid, "F1", "c1", "ESZ6", 1, "market", kind, "cause")


def test_orders_not_durable_hold_copies_and_send_liquidations(full_disk: Disk) -> None:
    health = Durability()
    store = Store(full_disk.root / "engine.sqlite", health)
    records = Records(store, VirtualClock(datetime(2026, 1, 6, 15, tzinfo=UTC)))
    try:
        assert records.orders_sending([_row("C1", "copy")])
        full_disk.fill()
        records.copy_settled("fill-1", "F1")  # refused by the fan-out log: kept for later
        assert not health.ok
        assert records.orders_sending([_row("C2", "copy"), _row("L1", "liquidation")]) is False
        full_disk.free()
        wait_healthy(health)
        store.flush()
        rows = {
            r["client_order_id"]: (r["status"], r["reason"])
            for r in store.query("SELECT client_order_id, status, reason FROM orders")
        }
        assert rows == {
            "C1": ("sent", ""),
            "C2": (NOT_SENT, HELD_REASON),
            "L1": ("sent", UNLOGGED_REASON),
        }
        intents = [f[0] for f in read_frames(full_disk.root / "engine.intents")[0]]
        assert "C2" not in intents  # a held order has no intent: it never went out
        settled = records.fanouts.read().settled
        assert ("fill-1", "F1") in settled  # written before the engine was healthy again
    finally:
        full_disk.free()
        records.close()
        store.close()
