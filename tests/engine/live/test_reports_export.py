"""S10.5 in a running engine process: the demo's copies show in GET /api/reports, and
``python -m engine export`` reads the store beside the running engine (WAL mode, read-only) —
each fill once, every copy's fill beside the order it filled."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from engine.domain.reports import trading_day
from engine.storage.export import COLUMNS
from tests.engine.engine_process import ROOT, start_engine, stop_engine


def test_s10_5_reports_and_an_export_of_a_running_engine(tmp_path: Path) -> None:
    engine = start_engine(tmp_path / "data", "--demo-interval", "0.3")
    try:
        auth = {"Authorization": f"Bearer {engine.token}"}
        with httpx.Client(base_url=engine.url, headers=auth, timeout=15) as http:
            deadline = time.monotonic() + 30
            while True:
                report = http.get("/api/reports").json()
                copied = [f for f in report["followers"] if f["filled"] >= 2]
                if copied or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
        assert copied, report
        assert {f["account"] for f in report["followers"]} >= {"DEMO-F1", "DEMO-F2"}
        assert copied[0]["to_fill"]["count"] >= 1
        today = trading_day(datetime.now(UTC))
        done = subprocess.run(
            [sys.executable, "-m", "engine", "export", "--data-dir", str(engine.data_dir),
             "--from", (today - timedelta(days=1)).isoformat(), "--to", today.isoformat()],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        header, *rows = list(csv.reader(io.StringIO(done.stdout, newline="")))
    finally:
        assert stop_engine(engine) == 0
    assert header == list(COLUMNS)
    records = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    fills = [r for r in records if r["record"] == "fill"]
    assert Counter((f["account"], f["fill_id"]) for f in fills).most_common(1)[0][1] == 1
    orders = {r["order_id"] for r in records if r["record"] == "order"}
    copies = [f for f in fills if f["kind"] == "copy"]
    assert copies and all(f["order_id"] in orders for f in copies)
    assert any(f["account"] == "DEMO-LEAD" and f["kind"] == "manual" for f in fills)
