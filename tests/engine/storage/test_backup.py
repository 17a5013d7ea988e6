"""Backups of a data directory and restoring them: what is copied and how (whole frames, modes,
checksums), a log rewritten during a backup, and every way a restore refuses (a damaged or
unfinished backup, a newer schema, a directory that holds data or is in use)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.storage import backup as backup_module
from engine.storage.backup import BackupError, read_backup, restore_backup, take_backup
from engine.storage.datadir import (
    EXIT_NO_STORE,
    DataLock,
    RunError,
    backup_files,
    check_store_history,
)
from engine.storage.frames import encode_frame, read_frames
from engine.storage.store import SCHEMA_VERSION, Store, backup_store, stored_schema

NOW = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
SEGMENT = "engine.journal/000000000001-20260302T150000Z.journal"


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    """A data directory as an engine leaves it running: a store with rows (its last ones still
    in the write-ahead log), the logs, a journal segment, a token, and a frame being written."""
    data = tmp_path / "data"
    data.mkdir()
    store = Store(data / "engine.sqlite")
    store.write(
        lambda conn: conn.execute("INSERT INTO counters (name, value) VALUES ('x', 7)"), wait=True
    )
    (data / "engine.intents").write_bytes(
        encode_frame(["I", "C1"]) + encode_frame(["I", "C2"]) + encode_frame(["I", "C3"])[:9]
    )
    (data / "engine.fanouts").write_bytes(encode_frame(["J", "g1", "F1"]))
    (data / "engine.status").write_bytes(b"")
    (data / "engine.journal").mkdir()
    (data / SEGMENT).write_bytes(encode_frame([1, NOW.isoformat(), "setup", {}]))
    (data / "api.token").write_text("secret-token\n")
    yield data
    store.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_backup_holds_the_store_and_the_logs_with_a_manifest(data: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    manifest = take_backup(data, dest, NOW, "1.2.3")

    assert [f.name for f in manifest.files] == [
        "engine.sqlite",
        "engine.fanouts",
        "engine.status",
        "engine.intents",
        SEGMENT,
    ]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    for path in [dest / f.name for f in manifest.files] + [dest / "manifest.json"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not (dest / "api.token").exists()
    # The store: a consistent copy (the rows still in the write-ahead log included), one file.
    conn = sqlite3.connect(dest / "engine.sqlite")
    assert conn.execute("SELECT value FROM counters WHERE name = 'x'").fetchone() == (7,)
    conn.close()
    assert not (dest / "engine.sqlite-wal").exists()
    # The intent log: its whole frames only (the one being written is left out, as a start would).
    frames, end = read_frames(dest / "engine.intents")
    assert frames == [["I", "C1"], ["I", "C2"]]
    assert end == (dest / "engine.intents").stat().st_size
    # The manifest: sizes, checksums, schema, time; SHA256SUMS for sha256sum -c.
    written = json.loads((dest / "manifest.json").read_text())
    assert written["schema_version"] == SCHEMA_VERSION
    assert written["created_at"] == NOW.isoformat()
    assert written["engine_version"] == "1.2.3"
    for item in written["files"]:
        assert item["bytes"] == (dest / item["name"]).stat().st_size
        assert item["sha256"] == _sha(dest / item["name"])
    sums = (dest / "SHA256SUMS").read_text().splitlines()
    assert sums[0] == f"{_sha(dest / 'engine.sqlite')}  engine.sqlite"
    assert read_backup(dest).files == manifest.files


def test_restore_brings_back_a_data_dir_an_engine_starts_from(data: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    take_backup(data, dest, NOW)
    target = tmp_path / "restored"
    restore_backup(dest, target)

    for name in ("engine.sqlite", "engine.fanouts", "engine.intents", SEGMENT):
        assert _sha(target / name) == _sha(dest / name)
        assert stat.S_IMODE((target / name).stat().st_mode) == 0o600
    assert stored_schema(target / "engine.sqlite") == SCHEMA_VERSION
    assert check_store_history(target, new_store=False, now=NOW) is None  # a start goes on
    assert not list(target.glob("*.restoring"))


def test_a_backup_goes_into_a_new_or_empty_directory(data: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    dest.mkdir()
    (dest / "old").write_text("x")
    with pytest.raises(BackupError, match="not empty"):
        take_backup(data, dest, NOW)
    with pytest.raises(BackupError, match="no store"):
        take_backup(tmp_path / "nothing", tmp_path / "b2", NOW)


def test_a_log_rewritten_during_the_backup_starts_it_over(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine keeps only what a restart needs by writing a new file over a log. One
    replaced between the store's snapshot and its copy could be older than the snapshot: the
    backup starts over, and the log it holds is the new one."""
    real = backup_store
    calls = 0

    def snapshot_then_rewrite(source: Path, target: Path) -> int:
        nonlocal calls
        calls += 1
        version = real(source, target)
        if calls == 1:
            new = data / "engine.fanouts.new"
            new.write_bytes(encode_frame(["J", "g1", "F2"]))
            new.replace(data / "engine.fanouts")
        return version

    monkeypatch.setattr(backup_module, "backup_store", snapshot_then_rewrite)
    dest = tmp_path / "backup"
    take_backup(data, dest, NOW)
    assert calls == 2
    assert read_frames(dest / "engine.fanouts")[0] == [["J", "g1", "F2"]]
    read_backup(dest)


def test_a_log_shrunk_during_every_attempt_fails_the_backup(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = backup_store

    def snapshot_then_truncate(source: Path, target: Path) -> int:
        version = real(source, target)
        log = data / "engine.intents"
        frames, _ = read_frames(log)
        log.write_bytes(b"".join(encode_frame(f) for f in frames[:-1]))  # in place, shorter
        return version

    monkeypatch.setattr(backup_module, "backup_store", snapshot_then_truncate)
    dest = tmp_path / "backup"
    (data / "engine.intents").write_bytes(b"".join(encode_frame(["I", f"C{n}"]) for n in range(9)))
    with pytest.raises(BackupError, match="rewritten during each of 3 attempts"):
        take_backup(data, dest, NOW)
    assert not any(dest.iterdir())  # nothing half-made is left to be taken for a backup


def test_a_journal_segment_dropped_meanwhile_is_left_out(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = backup_store

    def snapshot_then_expire(source: Path, target: Path) -> int:
        version = real(source, target)
        (data / SEGMENT).unlink(missing_ok=True)
        return version

    monkeypatch.setattr(backup_module, "backup_store", snapshot_then_expire)
    manifest = take_backup(data, tmp_path / "backup", NOW)
    assert SEGMENT not in [f.name for f in manifest.files]
    assert "engine.intents" in [f.name for f in manifest.files]


def test_a_damaged_or_unfinished_backup_is_refused(data: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    take_backup(data, dest, NOW)
    intents = dest / "engine.intents"
    damaged = bytearray(intents.read_bytes())
    damaged[-1] ^= 0xFF
    intents.write_bytes(bytes(damaged))
    target = tmp_path / "restored"
    with pytest.raises(BackupError, match=r"engine.intents: does not match the manifest"):
        restore_backup(dest, target)
    assert not (target / "engine.sqlite").exists()

    (dest / "manifest.json").unlink()
    with pytest.raises(BackupError, match=r"no manifest\.json: not a backup, or one that did not"):
        restore_backup(dest, target)


def test_a_backup_of_a_newer_schema_is_refused(data: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    take_backup(data, dest, NOW)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["schema_version"] = SCHEMA_VERSION + 1
    (dest / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="newer than this engine's"):
        restore_backup(dest, tmp_path / "restored")


def test_a_manifest_naming_a_path_outside_the_backup_is_refused(data: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    take_backup(data, dest, NOW)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["files"].append(
        {"name": "../outside", "bytes": 0, "sha256": _sha(dest / "engine.status")}
    )
    (dest / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="not a file of a backup"):
        restore_backup(dest, tmp_path / "restored")


def test_restore_never_overwrites_nor_enters_a_running_engine(data: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    take_backup(data, dest, NOW)
    with pytest.raises(BackupError, match="already holds an engine's data"):
        restore_backup(dest, data)
    target = tmp_path / "busy"
    target.mkdir()
    lock = DataLock(target)
    lock.acquire()
    try:
        with pytest.raises(BackupError, match="another engine is running"):
            restore_backup(dest, target)
    finally:
        lock.release()
    assert [p.name for p in backup_files(target) if p.exists()] == []


def test_the_engine_s_lock_does_not_stand_in_the_way(data: Path, tmp_path: Path) -> None:
    """A running engine holds the data directory's lock: a backup neither takes it nor waits."""
    lock = DataLock(data)
    lock.acquire()
    try:
        manifest = take_backup(data, tmp_path / "backup", NOW)
    finally:
        lock.release()
    assert manifest.files[0].name == "engine.sqlite"


def test_a_stopped_engine_s_data_dir_backs_up_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = Store(data / "engine.sqlite")
    store.write(lambda conn: conn.execute("INSERT INTO counters VALUES ('y', 3)"), wait=True)
    store.close()
    (data / "engine.intents").write_bytes(encode_frame(["I", "C1"]))
    take_backup(data, tmp_path / "backup", NOW)
    restore_backup(tmp_path / "backup", tmp_path / "restored")
    conn = sqlite3.connect(tmp_path / "restored" / "engine.sqlite")
    assert conn.execute("SELECT value FROM counters WHERE name = 'y'").fetchone() == (3,)
    conn.close()


def _tableless(path: Path) -> None:
    """A database file with pages but without a table (a start killed before its migration)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("DROP TABLE t")
    conn.commit()
    conn.close()
    assert path.stat().st_size > 0


def test_what_counts_as_no_store(tmp_path: Path) -> None:
    """Missing, zero bytes, or a database without a table: no store was ever made there (a
    start refuses that beside history); a store, or a file that is not one, is something."""
    path = tmp_path / "engine.sqlite"
    assert stored_schema(path) is None
    path.write_bytes(b"")
    assert stored_schema(path) is None
    _tableless(path)
    assert stored_schema(path) is None
    path.unlink()
    Store(path).close()
    assert stored_schema(path) == SCHEMA_VERSION
    history = tmp_path / "engine.intents"
    history.write_bytes(encode_frame(["I", "C1"]))
    assert check_store_history(tmp_path, new_store=False, now=NOW) is None
    for name in ("engine.sqlite", "engine.sqlite-wal", "engine.sqlite-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    _tableless(path)
    with pytest.raises(RunError) as refused:
        check_store_history(tmp_path, new_store=False, now=NOW)
    assert refused.value.code == EXIT_NO_STORE
    assert f"{path} is empty, but {tmp_path}/ holds the history" in str(refused.value)
    assert "(engine.intents: 1 intent)" in str(refused.value)
