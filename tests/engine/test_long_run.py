"""Running for days: what the engine keeps grows no more (the issue: restarts slower and
hungrier with age, ~165 MB of data and ~95 MB of memory a day).

The demo — one leader, three followers, the paper broker — trades on the virtual clock and the
deterministic runtime (``bench/aging.py``), maintaining itself as the live process does, with a
one-day retention of the journal and the records. After each trading day the sizes of what
grew with age before are taken: the fill ids each account remembers, the copy decisions, the
paper broker's order lists, the three logs, the journal, the store. From the second day on they
level off: the third day's are within a quarter of the second's, where every one of them grew by
half (a day in three) before.

``make test`` runs three days at a trade a minute; ``make soak`` thirty days at the demo's rate
(a trade every 3 to 8 seconds): ``ENGINE_LONG_RUN_DAYS=30 ENGINE_LONG_RUN_RATE=demo``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.aging import JOURNAL_DIR, STORE_FILE, AgingDemo, open_demo
from engine.app import demo
from engine.core.engine import EngineSettings
from engine.storage.journal import JournalLimits, list_segments

DAYS = int(os.environ.get("ENGINE_LONG_RUN_DAYS", "3"))
DEMO_RATE = os.environ.get("ENGINE_LONG_RUN_RATE", "") == "demo"
INTERVAL = demo.LEADER_INTERVAL if DEMO_RATE else (30.0, 90.0)
ONE_DAY = timedelta(days=1)
MB = 1024 * 1024


def _sizes(run: AgingDemo) -> dict[str, int]:
    """What grew with the engine's age: lengths of structures, sizes of files (bytes)."""
    engine, broker = run.engine, run.broker
    sizes: dict[str, int] = {"decided copies": len(engine.records.decided)}
    sizes["recorded fill ids"] = len(engine.records.recorded_fills)  # S10.5
    for account in engine.topology.accounts:
        sizes[f"{account} fill ids"] = engine.runtime.inspect(
            ("account", account), lambda a: len(a.seen_fills)
        )
    sizes["broker accepted ids"] = len(broker.accepted_client_order_ids)
    sizes["broker order reports"] = sum(
        len(broker._ledger.reports_of(a)) for a in engine.topology.accounts
    )
    data = run.data_dir
    for name in ("engine.intents", "engine.fanouts", "engine.status"):
        sizes[name] = (data / name).stat().st_size
    sizes["journal"] = sum(s.path.stat().st_size for s in list_segments(data / JOURNAL_DIR))
    sizes["store"] = sum(p.stat().st_size for p in data.iterdir() if p.name.startswith(STORE_FILE))
    return sizes


def test_what_the_engine_keeps_levels_off_after_a_day(tmp_path: Path) -> None:
    settings = EngineSettings(
        runtime="deterministic", activity_retention=ONE_DAY, ledger_retention=ONE_DAY
    )
    # Segments small beside a day's journal (about 3.4 MB with the demo copying orders), so
    # what one-day retention keeps does not swing by a whole segment from one day to the next.
    journal = JournalLimits(segment_bytes=MB // 2, retention_days=1, max_bytes=0)
    run = open_demo(tmp_path, settings=settings, journal=journal)
    run.interval = INTERVAL
    days: list[dict[str, Any]] = []
    try:
        for _ in range(DAYS):
            run.run(run.clock.now() + ONE_DAY)
            assert run.engine.journal is not None
            run.engine.journal.flush()
            days.append(_sizes(run))
            print(f"day {len(days)}: {run.trades} leader trades so far; {days[-1]}")
    finally:
        run.close()
    assert run.trades > DAYS * 24 * 3600 / (2 * INTERVAL[1])  # it traded all along
    second, *later = days[1:]
    # One day's retention keeps one to two days of journal, as expiry meets the segments.
    second = {**second, "journal": max(second["journal"], 2 * days[0]["journal"])}
    for day, sizes in enumerate(later, start=3):
        grew = {
            what: (second[what], size)
            for what, size in sizes.items()
            if size > 1.25 * second[what] + 64 * 1024 * (what in ("store", "journal"))
        }
        assert not grew, f"day {day}: still growing since day 2 (day 2, day {day}): {grew}"
    # Logs compacted while running: never far past the 1 MB a compaction starts at.
    for sizes in days:
        for name in ("engine.intents", "engine.fanouts", "engine.status"):
            assert sizes[name] < 2 * MB + 64 * 1024, (name, sizes[name])
