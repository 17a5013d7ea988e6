"""The project's scenario library (``scenarios/``): every file passes under both runtimes, and the
same file gives the same report every run (apart from ``elapsed_s``), as SCENARIOS.md promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.replay.cli import report_entry
from engine.replay.harness import ScenarioResult, check_supported, run_scenario
from engine.replay.scenario import Scenario, load_scenario

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
FILES = sorted(LIBRARY.glob("*.toml"))


def _load(path: Path) -> Scenario:
    scenario = load_scenario(path)
    check_supported(scenario)  # the library uses only capabilities that are built
    return scenario


def _explain(result: ScenarioResult) -> str:
    lines = [f"{result.file}: {result.name}"]
    lines += [
        f"  step {f.step}: {f.check}: expected {f.expected!r}, got {f.actual!r}"
        for f in result.failures
    ]
    return "\n".join(lines)


def _report(result: ScenarioResult) -> dict[str, Any]:
    entry = report_entry(result)
    del entry["elapsed_s"]
    return entry


def test_library_is_not_empty() -> None:
    assert FILES, f"no scenario files in {LIBRARY}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_passes_on_threads(path: Path) -> None:
    result = run_scenario(_load(path), "threads")
    assert result.ok, _explain(result)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_passes_deterministic_and_gives_identical_reports(path: Path) -> None:
    """The deterministic runtime's pass, and the same report from a second run: the first run
    is the pass's, not a third."""
    scenario = _load(path)
    result = run_scenario(scenario, "deterministic")
    assert result.ok, _explain(result)
    assert _report(result) == _report(run_scenario(scenario, "deterministic"))
