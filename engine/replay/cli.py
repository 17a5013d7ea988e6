"""``python -m engine replay PATH [PATH ...] [--json REPORT.json] [--runtime ...]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.app.collector import tune_collector
from engine.replay.harness import ScenarioResult, check_supported, run_scenario
from engine.replay.journal_replay import JournalError, replay_journal
from engine.replay.scenario import Scenario, ScenarioError, collect_paths, load_scenario

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="scenario .toml files or folders")
    parser.add_argument(
        "--journal",
        metavar="FILE",
        help="re-run a recorded live session (engine.storage.journal) and report its final state",
    )
    parser.add_argument("--json", metavar="REPORT.json", help="write the report as JSON")
    parser.add_argument(
        "--runtime",
        choices=("deterministic", "threads"),
        default="deterministic",
        help="run the actors on one deterministic dispatcher (default) or as pykka threads",
    )


def report_entry(result: ScenarioResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "file": result.file,
        "ok": result.ok,
        "elapsed_s": result.elapsed_s,
        "failures": [
            {"step": f.step, "check": f.check, "expected": f.expected, "actual": f.actual}
            for f in result.failures
        ],
        "final": result.final,
    }


def main(args: argparse.Namespace) -> int:
    tune_collector()  # a replay allocates as the engine does (decision 0028)
    if args.journal:
        return _replay_journal(Path(args.journal), args.json)
    if not args.paths:
        print("ERROR replay: give scenario PATHs or --journal FILE", file=sys.stderr)
        return EXIT_INVALID
    invalid = 0  # files with errors: nothing in them runs, each counts as failed
    scenarios: list[Scenario] = []
    try:
        paths = collect_paths(list(args.paths))
    except ScenarioError as error:
        print(f"ERROR {error}", file=sys.stderr)
        return EXIT_INVALID
    for path in paths:
        try:
            scenario = load_scenario(path)
            check_supported(scenario)
        except ScenarioError as error:
            # Every error of the file, each with its place, in the report itself: read in
            # order with the PASS and FAIL lines, before the summary, however it is captured.
            for each in error.errors:
                print(f"ERROR {each}")
            invalid += 1
            continue
        scenarios.append(scenario)

    results: list[ScenarioResult] = []
    for scenario in scenarios:
        result = run_scenario(scenario, args.runtime)
        results.append(result)
        print(f"{'PASS' if result.ok else 'FAIL'} {result.name}")
        for failure in result.failures:
            print(
                f"  step {failure.step}: {failure.check}: expected {failure.expected!r}, "
                f"got {failure.actual!r}"
            )
        sys.stdout.flush()
    passed = sum(r.ok for r in results)
    print(f"{passed} passed, {len(results) - passed + invalid} failed")
    if args.json:
        Path(args.json).write_text(
            json.dumps([report_entry(r) for r in results], indent=2, sort_keys=False) + "\n"
        )
    if invalid:
        return EXIT_INVALID
    return EXIT_OK if passed == len(results) else EXIT_FAILED


def _replay_journal(path: Path, json_path: str | None) -> int:
    try:
        report = replay_journal(path)
    except JournalError as error:
        print(f"ERROR {error}", file=sys.stderr)
        return EXIT_INVALID
    final = report["final"]
    print(f"replayed {report['frames']} frames of {path} up to {report['until']}")
    for account, state in final["accounts"].items():
        positions = ", ".join(f"{s} {q:+d}" for s, q in state["positions"].items()) or "flat"
        print(f"  {account}: {state['status']}, {positions}, daily P&L {state['daily_pnl']:.2f}")
    for connection, state in final["connections"].items():
        print(f"  connection {connection}: {state['state']}")
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
    return EXIT_OK
