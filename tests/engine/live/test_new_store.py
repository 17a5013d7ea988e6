"""A store missing or empty beside an engine's history is refused at start, never made anew
in silence; ``--new-store`` begins again and moves the history aside; a fresh data directory
starts as ever. Real engine processes on real data directories."""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
from pathlib import Path

import pytest

from engine.storage.datadir import EXIT_NO_STORE, count_frames
from tests.engine.engine_process import run_for_a_second, start_engine, stop_engine


def _history(data: Path) -> dict[str, str]:
    """Every file of the history, by its path in the data directory, with its checksum."""
    found = {}
    for path in sorted(data.rglob("*")):
        relative = path.relative_to(data).as_posix()
        if path.is_file() and relative.startswith(
            ("engine.intents", "engine.fanouts", "engine.journal")
        ):
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory an engine traded in (the demo: orders sent, fills logged)."""
    data = tmp_path_factory.mktemp("ran") / "data"
    engine = start_engine(data, "--demo-interval", "0.2")
    try:
        deadline = time.monotonic() + 60
        while count_frames(data / "engine.intents") < 5:
            assert time.monotonic() < deadline, "no intents written"
            time.sleep(0.1)
    finally:
        assert stop_engine(engine) == 0
    return data


def _copy(source: Path, target: Path) -> Path:
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)
    return target


@pytest.mark.parametrize("damage", ["deleted", "emptied"])
def test_a_lost_store_beside_history_is_refused(ran: Path, tmp_path: Path, damage: str) -> None:
    data = _copy(ran, tmp_path / "data")
    store = data / "engine.sqlite"
    if damage == "deleted":
        store.unlink()
    else:
        store.write_bytes(b"")
    before = _history(data)
    intents = count_frames(data / "engine.intents")

    result = run_for_a_second(data)

    assert result.returncode == EXIT_NO_STORE, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    state = "missing" if damage == "deleted" else "empty"
    assert last.startswith(f"{store} is {state}, but {data}/ holds the history of an engine"), last
    assert f"engine.intents: {intents} intents" in last, last
    assert "engine.journal: " in last and "engine.fanouts: " in last, last
    assert "--new-store" in last and "backup" in last, last
    # Nothing was seeded, nothing of the history touched.
    assert not store.exists() or store.stat().st_size == 0
    assert "new, demo setup written" not in result.stderr
    assert _history(data) == before


def test_new_store_moves_the_history_aside_and_begins_again(ran: Path, tmp_path: Path) -> None:
    data = _copy(ran, tmp_path / "data")
    (data / "engine.sqlite").unlink()
    before = _history(data)

    result = run_for_a_second(data, "--new-store")

    assert result.returncode == 0, result.stderr
    aside = [p for p in data.iterdir() if p.name.startswith("set-aside-")]
    assert len(aside) == 1, list(data.iterdir())
    assert re.fullmatch(r"set-aside-\d{8}T\d{6}", aside[0].name)
    assert _history(aside[0]) == before  # every file of the history, unchanged, in the dated folder
    assert '"store_state": "new, demo setup written"' in result.stderr
    assert "the earlier history was moved" in result.stderr
    # The new store is in use now: --new-store again is refused, and nothing more is moved.
    again = run_for_a_second(data, "--new-store")
    assert again.returncode == 2, again.stderr
    assert (
        again.stderr.strip()
        .splitlines()[-1]
        .startswith(f"--new-store: {data / 'engine.sqlite'} is a store in use")
    )
    assert [p for p in data.iterdir() if p.name.startswith("set-aside-")] == aside
    assert run_for_a_second(data).returncode == 0  # and without it, the engine goes on


def test_a_fresh_data_dir_starts_as_ever(tmp_path: Path) -> None:
    result = run_for_a_second(tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert '"store_state": "new, demo setup written"' in result.stderr
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith("set-aside-")]
