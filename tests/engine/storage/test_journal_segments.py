"""The journal in segments (decision 0013): a start reads none of them, segments past the
retention go, and what is kept still replays — from a start's setup or from a checkpoint."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from brokers.clock import VirtualClock
from engine.replay.harness import Harness
from engine.replay.journal_replay import replay_journal
from engine.replay.scenario import load_scenario
from engine.storage import journal as journal_module
from engine.storage.frames import FrameLog, encode_frame
from engine.storage.journal import (
    CHECKPOINT,
    SETUP,
    Journal,
    JournalLimits,
    list_segments,
    read_journal,
    read_segment,
)

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
KB = 1024


def _harness(
    tmp_path: Path, journal: Path, scenario: str = "s2_2_ratio_and_max_qty_cap.toml"
) -> Harness:
    return Harness(
        load_scenario(ROOT / "scenarios" / scenario), "deterministic", tmp_path, journal=journal
    )


def _first_kinds(directory: Path) -> list[str]:
    return [read_segment(s.path)[0][2] for s in list_segments(directory)]


def test_every_segment_begins_with_a_frame_a_replay_can_start_from(tmp_path: Path) -> None:
    """A segment a few KB long: the session spreads over several, the first begun by the
    start's setup, each next one by a checkpoint; replayed whole they give the session's end."""
    directory = tmp_path / "engine.journal"
    harness = _harness(tmp_path, directory)
    journal = harness.engine.journal
    assert journal is not None
    journal.limits = JournalLimits(segment_bytes=2 * KB, retention_days=0, max_bytes=0)
    try:
        harness.setup()
        for step in harness.scenario.steps:
            harness.apply(step)
            harness.settle()
            journal.flush()  # rotates once the segment has grown past its size
        final = harness.final_state()
    finally:
        harness.close()
    kinds = _first_kinds(directory)
    assert len(kinds) > 2
    assert kinds[0] == SETUP and set(kinds[1:]) == {CHECKPOINT}
    seqs = [frame[0] for frame in read_journal(directory)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert replay_journal(directory)["final"] == final


def test_a_journal_whose_oldest_segments_were_deleted_replays_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    """The incident is in the segments kept: the replay starts from the checkpoint the first
    of them begins with (the store as it was then, its positions the first snapshot's answer)
    and ends where the session did."""
    directory = tmp_path / "engine.journal"
    harness = _harness(tmp_path, directory)
    journal = harness.engine.journal
    assert journal is not None
    steps = harness.scenario.steps
    try:
        harness.setup()
        for number, step in enumerate(steps):
            harness.apply(step)
            harness.settle()
            if number == len(steps) // 2:
                journal.flush()
                assert journal.rotate()
        final = harness.final_state()
    finally:
        harness.close()
    first, *kept = list_segments(directory)
    assert kept and read_segment(kept[0].path)[0][2] == CHECKPOINT
    first.path.unlink()  # what the retention does to the oldest
    report = replay_journal(directory)
    assert report["segments"] == len(kept)
    assert report["final"] == final


def test_segments_past_the_retention_are_deleted_never_the_one_being_written(
    tmp_path: Path,
) -> None:
    """Days on the engine clock: a segment is begun at each UTC day; one whose every frame
    is older than ``retention_days`` goes. Then a size cap: the oldest go while the journal
    is larger, the newest stays whatever its size."""
    clock = VirtualClock(T0)
    journal = Journal(tmp_path / "j", clock, JournalLimits(0, retention_days=2, max_bytes=0))
    journal.checkpoint = lambda: {"store": {}}
    try:
        for _ in range(6):
            journal.record("clock", None)
            journal.flush()
            clock.advance(timedelta(days=1))
        journal.record("clock", None)
        journal.flush()
        started = [s.started.date() for s in list_segments(tmp_path / "j")]
        assert started == [(T0 + timedelta(days=n)).date() for n in (3, 4, 5, 6)]
        journal.limits = JournalLimits(0, retention_days=0, max_bytes=1)
        journal.rotate()
        assert len(list_segments(tmp_path / "j")) == 1
    finally:
        journal.close()


def test_a_start_reads_nothing_of_the_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old journal was read whole at every start to find its last sequence number; now
    the numbers of a new start are placed past what the last segment can hold, from its name
    and size, and the segment is left as it was."""
    clock = VirtualClock(T0)
    first = Journal(tmp_path / "j", clock)
    for n in range(500):
        first.record("quote", ["ESZ6", n])
    first.close()
    (old,) = list_segments(tmp_path / "j")
    size = old.path.stat().st_size

    def refuse(*_: Any) -> Any:
        raise AssertionError("a start read a journal segment")

    monkeypatch.setattr(journal_module, "read_frames", refuse)
    monkeypatch.setattr(journal_module, "parse_frames", refuse)
    second = Journal(tmp_path / "j", clock)
    second.record("clock", None)
    second.close()
    monkeypatch.undo()
    assert old.path.stat().st_size == size
    seqs = [frame[0] for frame in read_journal(tmp_path / "j")]
    assert seqs[:500] == list(range(1, 501))
    assert seqs[500] > 500


def test_a_single_file_journal_of_an_earlier_engine_becomes_the_first_segment(
    tmp_path: Path,
) -> None:
    legacy = tmp_path / "engine.journal"
    log = FrameLog(legacy)
    log.append([[1, T0.isoformat(), "setup", {}], [2, T0.isoformat(), "clock", None]])
    log.close()
    journal = Journal(legacy, VirtualClock(T0 + timedelta(hours=1)))
    journal.record("clock", None)
    journal.close()
    assert legacy.is_dir()
    segments = list_segments(legacy)
    assert [s.started for s in segments] == [T0, T0 + timedelta(hours=1)]
    assert [f[0] for f in read_journal(legacy)][:2] == [1, 2]


def test_the_cli_replays_a_data_directory(tmp_path: Path) -> None:
    harness = _harness(tmp_path, tmp_path / "engine.journal")
    try:
        harness.setup()
        harness.run()
    finally:
        harness.close()
    done = subprocess.run(
        [sys.executable, "-m", "engine", "replay", "--journal", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "replayed" in done.stdout and "F1:" in done.stdout


def test_a_directory_without_a_journal_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "other.txt").write_bytes(encode_frame([1]))
    done = subprocess.run(
        [sys.executable, "-m", "engine", "replay", "--journal", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2
    assert "no journal there" in done.stderr and "Traceback" not in done.stderr
