"""Replay throughput: copies per second through the scenario harness on the deterministic runtime.

A scenario of 200 followers (ten logins of 20) and a leader that trades 50 times, one contract
each way in turn, replayed as ``python -m engine replay`` replays a file: the same parser, the
same harness, the same paper broker on the virtual clock. The clock runs from the first trade
to the end of the steps; building the engine and seeding it are taken out. Every follower must
end where the leader ends, or the run is not counted. Writes ``bench/results.json``
(``"replay"``).

    .venv/bin/python -m bench.replay [--followers 200] [--fills 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.results import update_results
from engine.app.collector import tune_collector
from engine.app.logs import configure_logging
from engine.replay.harness import Harness
from engine.replay.scenario import Scenario, parse_scenario

PER_LOGIN = 20


def scenario_text(followers: int, fills: int) -> str:
    logins = (followers + PER_LOGIN - 1) // PER_LOGIN
    lines = [
        f'name = "replay throughput: {followers} followers, {fills} leader fills"',
        'description = "bench/replay.py"',
        '[[connection]]\nid = "lead"',
        '[[account]]\nid = "LEAD"\nconnection = "lead"',
    ]
    lines += [f'[[connection]]\nid = "p{i}"' for i in range(logins)]
    lines += [
        f'[[account]]\nid = "F{i}"\nconnection = "p{i // PER_LOGIN}"' for i in range(followers)
    ]
    members = ", ".join(f'{{ account = "F{i}" }}' for i in range(followers))
    lines.append(f'[[group]]\nid = "g"\nleader = "LEAD"\nfollowers = [{members}]')
    lines.append('[[step]]\nprice = { symbol = "ESZ6", last = 5000 }')
    for n in range(fills):
        side = "buy" if n % 2 == 0 else "sell"
        lines.append(
            f'[[step]]\ntrade = {{ account = "LEAD", symbol = "ESZ6", side = "{side}", qty = 1 }}'
        )
    end = fills % 2
    lines.append(
        f'[[step]]\nexpect = {{ account = "F{followers - 1}", symbol = "ESZ6", position = {end} }}'
    )
    return "\n\n".join(lines) + "\n"


def measure(scenario: Scenario, fills: int) -> float:
    """Seconds from the first step to the last, the engine built and seeded before."""
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        harness = Harness(scenario, "deterministic", Path(tmp))
        try:
            harness.setup()
            started = time.perf_counter()
            harness.run()
            elapsed = time.perf_counter() - started
            positions = harness.final_state()["accounts"]
            wrong = [
                name
                for name, account in positions.items()
                if name != "LEAD" and account["positions"].get("ESZ6", 0) != fills % 2
            ]
            if harness.failures or wrong:
                raise RuntimeError(f"replay went wrong: {harness.failures[:3]} {wrong[:3]}")
        finally:
            harness.close()
    return elapsed


def run(followers: int, fills: int, runs: int) -> dict[str, Any]:
    tune_collector()  # as ``python -m engine replay`` runs
    scenario = parse_scenario(scenario_text(followers, fills), "bench/replay.py")
    copies = followers * fills
    seconds = [measure(scenario, fills) for _ in range(runs)]
    best = statistics.median(seconds)
    return {
        "followers": followers,
        "fills": fills,
        "copies": copies,
        "runs": runs,
        "seconds": round(best, 3),
        "copies_per_s": round(copies / best),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--followers", type=int, default=200)
    parser.add_argument("--fills", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    configure_logging(level="error")
    row = run(args.followers, args.fills, args.runs)
    print(
        f"replay: {row['copies']} copies ({row['followers']} followers x {row['fills']} fills) "
        f"in {row['seconds']} s (median of {row['runs']}): {row['copies_per_s']} copies/s"
    )
    update_results("replay", row)


if __name__ == "__main__":
    main()
