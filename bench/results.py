"""``bench/results.json`` and the results table in ``bench/README.md``, kept in step."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
README = HERE / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def update_results(section: str, value: Any) -> None:
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[section] = value
    data["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    write_table(data)


def write_table(data: dict[str, Any]) -> None:
    lines = [BEGIN, ""]
    fanout = data.get("fanout")
    if fanout:
        lines += [
            "### Fan-out: leader fill in → last follower order accepted by the broker",
            "",
            "| followers | logins | fills | p50 ms | p99 ms | floor p50 ms | floor p99 ms "
            "| p50 / floor | p99 / floor |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['followers']} | {r.get('logins', '')} | {r.get('fills', '')} | {r['p50_ms']} "
            f"| {r['p99_ms']} | {r['floor_p50_ms']} | {r.get('floor_p99_ms', '')} "
            f"| {r.get('ratio_p50', '')} | {r.get('ratio_p99', '')} |"
            for r in fanout
        ]
        lines.append("")
    lines += _brackets_table(data.get("brackets"))
    risk = data.get("risk")
    if risk:
        lines += [
            f"### Risk: {risk['accounts']} accounts holding ES, tick → breach → liquidation",
            "",
            f"Sustained: **{risk['sustained_ticks_per_s']} ticks/s**; "
            f"peak memory {risk['peak_memory_mb']} MB.",
            "",
            "| target ticks/s | sent ticks/s | drained after stream ms | kept up | breaches "
            "| breach→liquidation p50 ms | p99 ms | p99 / p50 |",
            "|---:|---:|---:|:---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['rate']} | {r['achieved_ticks_per_s']} | {r['drain_ms']} | "
            f"{'yes' if r['kept_up'] else 'no'} | {r['breaches']} | {r['breach_p50_ms']} "
            f"| {r['breach_p99_ms']} | {r.get('ratio_p99_p50', '')} |"
            for r in risk["rates"]
        ]
        lines.append("")
    recovery = data.get("recovery")
    if recovery:
        lines += [
            f"### Recovery: restart with {recovery['accounts']} accounts "
            f"({recovery['logins']} logins, {recovery['groups']} groups)",
            "",
            "| open store and build s | start and reconcile s | first fan-out s "
            "| restart → trading again s | positions restored |",
            "|---:|---:|---:|---:|:---:|",
            f"| {recovery['open_store_and_build_s']} | {recovery['start_and_reconcile_s']} "
            f"| {recovery['first_fanout_s']} | **{recovery['restart_to_trading_s']}** "
            f"| {'yes' if recovery['positions_restored'] else 'no'} |",
            "",
        ]
    tradovate = data.get("tradovate")
    if tradovate:
        lines += [
            "### Tradovate adapter: leader fill pushed on the local server's socket → last "
            "follower order received by it",
            "",
            "| followers | logins | requests in flight | fills | p50 ms | p99 ms |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['followers']} | {r['logins']} | {r['max_concurrent']} | {r['fills']} "
            f"| {r['p50_ms']} | {r['p99_ms']} |"
            for r in tradovate
        ]
        lines.append("")
    lines += _aged_table(data.get("aged")) + _load_table(data.get("load"))
    lines += _replay_table(data.get("replay"))
    lines.append(f"Machine: {data.get('machine', '')}")
    lines += ["", END]
    text = README.read_text() if README.exists() else "# Benchmarks\n\n" + BEGIN + "\n" + END + "\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    README.write_text(head + "\n".join(lines) + tail)


def _brackets_table(brackets: list[dict[str, Any]] | None) -> list[str]:
    if not brackets:
        return []
    return [
        "### Bracket fan-out (orders mode): leader's bracket accepted → last follower bracket "
        "accepted by the broker (bench/brackets.py)",
        "",
        "| followers | logins | rounds | p50 ms | p99 ms | fill fan-out p50 ms | p99 ms "
        "| bracket / fill p50 | p99 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['followers']} | {r['logins']} | {r['rounds']} | {r['p50_ms']} | {r['p99_ms']} "
            f"| {r['fill_p50_ms']} | {r['fill_p99_ms']} | {r['ratio_p50']} | {r['ratio_p99']} |"
            for r in brackets
        ),
        "",
    ]


def _aged_table(aged: dict[str, Any] | None) -> list[str]:
    if not aged:
        return []
    rows = [
        f"| {name} | {aged[name]['restart_s']} | {aged[name]['peak_rss_mb']} "
        f"| {aged[name]['store_mb']} | {aged[name]['journal_mb']} |"
        for name in ("fresh", "aged")
    ]
    return [
        f"### Restart of an engine {aged['days']} days old against a fresh one (bench/aged.py)",
        "",
        "| engine | restart s | peak RSS MB | store MB | journal MB |",
        "|:---|---:|---:|---:|---:|",
        *rows,
        "",
        f"aged / fresh: restart **{aged['restart_ratio']}**, peak memory "
        f"**{aged['peak_rss_ratio']}**",
        "",
    ]


def _load_table(load: dict[str, Any] | None) -> list[str]:
    if not load:
        return []
    reads = load["reads"]
    stops = load["stops"]
    return [
        f"### Under load: GET /api/accounts while {reads['followers']} followers copy a leader "
        "trading every millisecond (bench/load.py)",
        "",
        "| reads | leader fills | mailbox depth at the end | p50 ms | p99 ms | max ms |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {reads['reads']} | {reads['leader_fills']} | {reads['mailbox_depth_at_end']} "
        f"| {reads['p50_ms']} | {reads['p99_ms']} | {reads['max_ms']} |",
        "",
        "SIGTERM → exit: "
        + ", ".join(
            f"{stop['seconds']} s (exit {stop['exit_code']}, orders written after the stop "
            f"{stop['orders_written_after_stopping']}, of them at the broker "
            f"{stop['of_them_at_the_broker']})"
            for stop in stops
        ),
        "",
    ]


def _replay_table(replay: dict[str, Any] | None) -> list[str]:
    if not replay:
        return []
    return [
        "### Replay throughput: the scenario harness on the deterministic runtime "
        "(bench/replay.py)",
        "",
        "| followers | leader fills | copies | seconds (median) | runs | copies/s |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {replay['followers']} | {replay['fills']} | {replay['copies']} | {replay['seconds']} "
        f"| {replay['runs']} | **{replay['copies_per_s']}** |",
        "",
    ]
