"""Restart of an engine 30 days old against a fresh one: time and peak memory, side by side.

Two data directories of the demo (one leader, three followers, the paper broker):

- *fresh*: the demo run for a whole day at its rate (a trade every 3 to 8 s) on the virtual
  clock (``bench/aging.py``: the engine maintains itself as the live process does), and nothing
  before it;
- *aged*: the same day, given the 29 days before it through the storage modules — the day's
  ledger and activity rows again for each earlier day (new client order ids, times moved back a
  day at a time) and the journal's segments for the 13 days its retention keeps (the day's
  segments again, hard-linked under earlier names: a start reads only their names).

Both hold the same recent past (the logs since their last compaction, the copy decisions of the
last two days), so what the comparison shows is what the history alone costs a restart.

Each is restarted in a process of its own, three times, alternately: the store opened, the
engine built and started (every connection returning), until each of the three followers has
decided on the leader's next fill. Reported: the median restart seconds and the peak resident
memory of that process, fresh and aged, and aged / fresh. Writes ``"aged"`` into
``bench/results.json``.

    .venv/bin/python -m bench.aged [--days 30]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.aging import JOURNAL_DIR, STORE_FILE, open_demo
from bench.results import update_results
from bench.timed_broker import TimedBroker
from brokers.base import OrderRequest
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.app import demo
from engine.app.logs import configure_logging
from engine.core.engine import Engine, EngineSettings
from engine.storage.journal import Journal, list_segments, segment_name
from engine.storage.store import Store

RUNS = 3
MB = 1024 * 1024


# --- building the two data directories ------------------------------------------------------------


def build_aged(data: Path, days: int, fresh: Path) -> dict[str, Any]:
    """One day of the demo, copied as it is into ``fresh``; then ``data`` given the
    ``days - 1`` days before it."""
    run = open_demo(data)
    run.run(run.clock.now() + timedelta(days=1))
    trades = run.trades
    _save_positions(run.broker, run.clock.now(), data)
    run.close()
    shutil.copytree(data, fresh, dirs_exist_ok=True)
    store = Store(data / STORE_FILE)
    try:
        rows = _add_history(store, days - 1)
    finally:
        store.close()
    journal_days = _add_journal_history(data / JOURNAL_DIR)
    return {"leader_trades_per_day": trades, "rows_per_day": rows, "journal_days": journal_days}


def _add_history(store: Store, earlier_days: int) -> dict[str, int]:
    """The day's ledger and activity rows again for each earlier day, as the engine wrote
    them (answered orders, entries), their times moved back ``n`` days."""

    def shifted(column: str, n: int) -> str:
        return f"strftime('%Y-%m-%dT%H:%M:%f', substr({column}, 1, 26), '-{n} days') || '+00:00'"

    def copy(conn: sqlite3.Connection) -> dict[str, int]:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("orders", "activity")
        }
        for n in range(1, earlier_days + 1):
            conn.execute(
                "INSERT INTO orders (client_order_id, account, connection, symbol, qty,"
                " order_type, kind, cause, status, reason, created_at, updated_at)"
                f" SELECT 'D{n}-' || client_order_id, account, connection, symbol, qty,"
                f" order_type, kind, 'D{n}-' || cause, status, reason,"
                f" {shifted('created_at', n)}, {shifted('updated_at', n)}"
                f" FROM orders WHERE client_order_id NOT LIKE 'D%'"
            )
            conn.execute(
                "INSERT INTO activity (time, level, account, connection, kind, message)"
                f" SELECT {shifted('time', n)}, level, account, connection, kind, message"
                " FROM activity WHERE seq <= ?",
                (counts["activity"],),
            )
        return dict(counts)

    counts: dict[str, int] = store.write(copy, wait=True)
    return counts


def _add_journal_history(directory: Path, kept_days: int = 13) -> int:
    """The journal's earlier days as its retention keeps them: the day's segments again, under
    the names of the days before (hard links: a start reads only the names)."""
    segments = list_segments(directory)
    step = sum(s.path.stat().st_size for s in segments) + 1  # numbers a day's frames can take
    for segment in reversed(segments):  # the day's own, numbered after the history's
        moved = segment_name(segment.first_seq + kept_days * step, segment.started)
        os.replace(segment.path, directory / moved)
    for n in range(1, kept_days + 1):
        for segment in segments:
            seq = segment.first_seq + (kept_days - n) * step
            os.link(
                directory / segment_name(segment.first_seq + kept_days * step, segment.started),
                directory / segment_name(seq, segment.started - timedelta(days=n)),
            )
    return kept_days + 1


def _save_positions(broker: PaperBroker, now: datetime, data: Path) -> None:
    """The broker outlives the engine: what it holds, and its time, for the restarting
    process's broker."""
    held = {
        account: {s: [p.qty, str(p.avg_price)] for s, p in broker.positions(account).items()}
        for account in ("DEMO-LEAD", "DEMO-F1", "DEMO-F2", "DEMO-F3")
    }
    (data / "broker.json").write_text(json.dumps({"now": now.isoformat(), "held": held}))


def _sizes(data: Path) -> dict[str, float]:
    journal = sum(s.path.stat().st_size for s in list_segments(data / JOURNAL_DIR))
    store = sum(p.stat().st_size for p in data.iterdir() if p.name.startswith(STORE_FILE))
    logs = sum(
        (data / n).stat().st_size for n in ("engine.intents", "engine.fanouts", "engine.status")
    )
    return {
        "store_mb": round(store / MB, 1),
        "journal_mb": round(journal / MB, 1),
        "logs_kb": round(logs / 1024, 1),
    }


# --- one restart, in a process of its own ---------------------------------------------------------


def restart(data: Path) -> dict[str, float]:
    """Restart the engine on ``data`` as the live process does (threads runtime, journal),
    until every follower decided on the leader's next fill
    (``copied``: how many sent a copy)."""
    _reset_peak()
    started = time.perf_counter()
    store = Store(data / STORE_FILE)
    saved = json.loads((data / "broker.json").read_text())
    clock = VirtualClock(datetime.fromisoformat(saved["now"]) + timedelta(minutes=1))
    contracts = ContractTable()
    # A broker that outlived the engine: its ids go on from where the old one's were.
    broker = PaperBroker(clock, contracts, id_prefix="after-restart-")
    for connection, accounts in (
        (demo.LEADER_CONNECTION, ("DEMO-LEAD",)),
        (demo.PROP_CONNECTION, ("DEMO-F1", "DEMO-F2", "DEMO-F3")),
    ):
        broker.add_accounts(connection, accounts)
    for symbol in ("ESZ6", "NQZ6", "MESZ6", "MNQZ6"):
        broker.set_price(symbol, Decimal(5000))
    for account, held in saved["held"].items():
        for symbol, (qty, _) in held.items():
            if qty:
                broker.trade(account, symbol, qty)
    followers = {"DEMO-F1", "DEMO-F2", "DEMO-F3"}
    seen: set[str] = set()

    def placed(order: OrderRequest, _: int) -> None:
        if order.account in followers and order.client_order_id.startswith("C"):
            seen.add(order.account)

    engine = Engine(
        store=store,
        clock=clock,
        brokers={"paper": TimedBroker(broker, placed)},
        contracts=contracts,
        settings=EngineSettings(runtime="threads"),
        journal=Journal(data / JOURNAL_DIR, clock),
    )
    engine.start(reconcile=True)
    engine.wait_idle()
    broker.trade("DEMO-LEAD", "ESZ6", 1)
    # Every follower copies it, or decides not to (a day of the demo can leave one locked by
    # its risk guard, or at its max_qty): the engine is idle once each has decided.
    engine.wait_idle()
    elapsed = time.perf_counter() - started
    engine.stop()
    store.close()
    peak_kb = _peak_kb()
    return {
        "restart_s": round(elapsed, 3),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "copied": len(seen),
    }


def _reset_peak() -> None:
    """The peak resident memory counted from here: a child of a large process starts with its
    parent's peak (the counter is copied at fork), which would hide its own."""
    with open("/proc/self/clear_refs", "w") as control:
        control.write("5")


def _peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _in_child(data: Path) -> dict[str, float]:
    """One restart in a process of its own, on a copy of ``data`` (each run from the same
    state: a restart changes the store); the journal's segments are linked, not copied."""
    scratch = data.with_name(data.name + "-run")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(data, scratch, ignore=shutil.ignore_patterns(JOURNAL_DIR))
    shutil.copytree(data / JOURNAL_DIR, scratch / JOURNAL_DIR, copy_function=os.link)
    # The copy's dirty pages written out first: else the restart's first fsync waits for
    # hundreds of megabytes of them (ext4 commits its journal with them), which a real restart
    # never meets.
    os.sync()
    done = subprocess.run(
        [sys.executable, "-m", "bench.aged", "--restart", str(scratch)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    if done.returncode != 0:
        raise RuntimeError(f"the restart of {data.name} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- the benchmark --------------------------------------------------------------------------------


def run(days: int, tmp: Path) -> dict[str, Any]:
    fresh, aged = tmp / "fresh", tmp / "aged"
    fresh.mkdir()
    aged.mkdir()
    built = build_aged(aged, days, fresh)
    sizes = {"fresh": _sizes(fresh), "aged": _sizes(aged)}
    measured: dict[str, list[dict[str, float]]] = {"fresh": [], "aged": []}
    for _ in range(RUNS):
        for name, data in (("fresh", fresh), ("aged", aged)):
            measured[name].append(_in_child(data))
    row: dict[str, Any] = {"days": days, **built, "runs": measured}
    for name in ("fresh", "aged"):
        row[name] = {
            "restart_s": statistics.median(m["restart_s"] for m in measured[name]),
            "peak_rss_mb": statistics.median(m["peak_rss_mb"] for m in measured[name]),
            **sizes[name],
        }
    row["restart_ratio"] = round(row["aged"]["restart_s"] / row["fresh"]["restart_s"], 2)
    row["peak_rss_ratio"] = round(row["aged"]["peak_rss_mb"] / row["fresh"]["peak_rss_mb"], 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--restart", metavar="DATA", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure_logging(level="error")
    if args.restart:
        print(json.dumps(restart(Path(args.restart))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-aged-") as tmp:
        row = run(args.days, Path(tmp))
    print(
        f"restart after {row['days']} days: {row['aged']['restart_s']} s, "
        f"{row['aged']['peak_rss_mb']} MB peak (fresh: {row['fresh']['restart_s']} s, "
        f"{row['fresh']['peak_rss_mb']} MB); aged / fresh {row['restart_ratio']} and "
        f"{row['peak_rss_ratio']}"
    )
    update_results("aged", row)


if __name__ == "__main__":
    main()
