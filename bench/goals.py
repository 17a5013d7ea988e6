"""The performance goals, against ``bench/results.json``: printed at the end of ``make bench``.

Every goal is a ratio measured within one run (the engine against its no-actor floor, a tail
against its own median) or a throughput, so the figures hold on a machine whose speed varies
from day to day:

- fan-out: p50 within 1.5 times the floor's p50 and p99 within 2 times the floor's p99, at 20
  and at 1,000 followers (``bench/fanout.py``);
- breach → liquidation: p99 within 3 times its p50 at 1,000 ticks/s with 1,000 accounts
  (``bench/risk.py``);
- replay: at least 10,000 copies a second on the deterministic runtime, 200 followers × 50
  fills (``bench/replay.py``).

    .venv/bin/python -m bench.goals
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bench.results import RESULTS

FANOUT_SIZES = (20, 1000)
FANOUT_P50 = 1.5
FANOUT_P99 = 2.0
RISK_RATE = 1000
RISK_TAIL = 3.0
REPLAY_COPIES_PER_S = 10_000


@dataclass(frozen=True)
class Check:
    goal: str
    measured: str
    met: bool | None  # None: not measured


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value}×"


def checks(data: dict[str, Any]) -> list[Check]:
    out: list[Check] = []
    fanout = {row["followers"]: row for row in data.get("fanout", [])}
    for size in FANOUT_SIZES:
        row = fanout.get(size, {})
        p50, p99 = row.get("ratio_p50"), row.get("ratio_p99")
        out += [
            Check(
                f"fan-out {size}: p50 ≤ {FANOUT_P50}× floor", _times(p50), _at_most(p50, FANOUT_P50)
            ),
            Check(
                f"fan-out {size}: p99 ≤ {FANOUT_P99}× floor", _times(p99), _at_most(p99, FANOUT_P99)
            ),
        ]
    rates = {row["rate"]: row for row in data.get("risk", {}).get("rates", [])}
    tail = rates.get(RISK_RATE, {}).get("ratio_p99_p50")
    out.append(
        Check(
            f"breach → liquidation at {RISK_RATE} ticks/s: p99 ≤ {RISK_TAIL}× p50",
            _times(tail),
            _at_most(tail, RISK_TAIL),
        )
    )
    replay = data.get("replay", {}).get("copies_per_s")
    out.append(
        Check(
            f"replay ≥ {REPLAY_COPIES_PER_S:,} copies/s",
            "—" if replay is None else f"{replay:,}",
            None if replay is None else replay >= REPLAY_COPIES_PER_S,
        )
    )
    return out


def main() -> None:
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    print("\nGoals (bench/goals.py), from bench/results.json:")
    for check in checks(data):
        mark = {True: "met", False: "NOT met", None: "not measured"}[check.met]
        print(f"  {check.goal:<52} {check.measured:>10}  {mark}")


if __name__ == "__main__":
    main()
