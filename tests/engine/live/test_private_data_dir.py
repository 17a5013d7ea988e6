"""The data directory holds the API token and every order: a live engine keeps it 0700 and every
file it writes there 0600 — the store with its WAL and shared-memory files, the logs, the lock,
the URL file — and tightens what an older engine or a copy left readable, saying so once."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.engine.engine_process import start_engine, stop_engine

WRITTEN = (
    *("engine.sqlite", "engine.sqlite-wal", "engine.sqlite-shm", "engine.lock", "api.url"),
    *("api.token", "engine.log", "engine.intents", "engine.status"),
)
TIGHTENED = "data directory made private to its owner (0700, files 0600)"


def _modes(data: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(data.stat().st_mode)}
    for root, dirs, files in os.walk(data):
        for name in [*dirs, *files]:
            path = Path(root) / name
            found[str(path.relative_to(data))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _events(err: Path, event: str) -> list[dict[str, object]]:
    out = []
    for line in err.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("event") == event:
            out.append(entry)
    return out


def test_the_data_directory_and_its_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # as an older engine left it
    for name in ("engine.log", "engine.intents"):
        (data / name).write_bytes(b"")
        os.chmod(data / name, 0o644)
    err = tmp_path / "err.log"
    engine = start_engine(data, stderr=err)
    try:
        modes = _modes(data)
        assert set(WRITTEN) <= set(modes), sorted(modes)
        loose = {name: oct(mode) for name, mode in modes.items() if mode & 0o077}
        assert not loose, loose
        assert modes["."] == 0o700
    finally:
        assert stop_engine(engine) == 0
    told = _events(err, TIGHTENED)
    assert len(told) == 1 and told[0]["level"] == "info"
    assert set(told[0]["paths"]) == {".", "engine.log", "engine.intents"}  # type: ignore[arg-type]

    # A second start finds nothing to tighten and says nothing of it.
    err = tmp_path / "err-2.log"
    engine = start_engine(data, stderr=err)
    assert stop_engine(engine) == 0
    assert not _events(err, TIGHTENED)
    assert not {n: m for n, m in _modes(data).items() if m & 0o077}
