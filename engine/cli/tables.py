"""Readable tables for the CLI (``engine/cli.py``): fixed columns, ``—`` for nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from engine.domain.activity import Kind, Level


def table(
    rows: Sequence[Sequence[Any]],
    headers: Sequence[str],
    out: TextIO,
    min_widths: Sequence[int] = (),
) -> list[int]:
    """Write ``rows`` under ``headers``; returns the column widths, at least ``min_widths``."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    widths = [max(w, m) for w, m in zip(widths, (*min_widths, *[0] * len(widths)), strict=False)]
    for index, row in enumerate(cells):
        out.write(_line(row, widths) + "\n")
        if index == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    if not rows:
        out.write("(none)\n")
    return widths


def _cell(value: Any) -> str:
    return "—" if value in (None, "") else str(value)


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def positions_text(positions: dict[str, int]) -> str:
    return ", ".join(f"{q:+d} {s}" for s, q in positions.items()) or "flat"


def connections_table(connections: list[dict[str, Any]], out: TextIO) -> None:
    table(
        [
            (
                c["id"],
                c["broker"],
                "offline" if c["offline"] else c["state"],
                ", ".join(c["accounts"]),
            )
            for c in connections
        ],
        ("CONNECTION", "BROKER", "STATE", "ACCOUNTS"),
        out,
    )


def accounts_table(accounts: list[dict[str, Any]], out: TextIO) -> None:
    table(
        [
            (
                a["id"],
                a["connection"],
                positions_text(a["positions"]),
                a["daily_pnl"],
                a["weekly_pnl"],
                a["equity"],
                a["risk_status"],
                a["lock_reason"],
                a["copying"],
            )
            for a in accounts
        ],
        ("ACCOUNT", "CONNECTION", "POSITION", "DAILY P&L", "WEEKLY P&L", "EQUITY", "RISK",
         "LOCK REASON", "COPYING"),
        out,
    )  # fmt: skip


def groups_table(groups: list[dict[str, Any]], out: TextIO) -> None:
    rows = []
    for g in groups:
        rows.append((g["id"], g["leader"], "leader", "", "", "", "", "", g["on_drift"]))
        for f in g["followers"]:
            terms = ", ".join(f"{a}→{b}" for a, b in f["symbol_map"].items())
            rows.append((g["id"], f["account"], "follower", f["ratio"], f["max_qty"], terms,
                         f["copy"], f["disable_reason"], ""))  # fmt: skip
    table(rows, ("GROUP", "ACCOUNT", "ROLE", "RATIO", "MAX QTY", "SYMBOL MAP", "COPY", "DISABLED",
                 "ON DRIFT"), out)  # fmt: skip


def drift_table(accounts: list[dict[str, Any]], out: TextIO) -> bool:
    """S10.1: each follower's open drift, one row per symbol (follower position − expected);
    nothing (``False``) while no follower drifts."""
    rows = [
        (a["id"], symbol, f"{qty:+d}")
        for a in accounts
        for symbol, qty in sorted(a.get("drift", {}).items())
    ]
    if rows:
        table(rows, ("DRIFTING", "SYMBOL", "DRIFT"), out)
    return bool(rows)


# Wide enough for any level and kind, and for most account ids: the lines ``activity --follow``
# prints after the table stay under its columns.
ACTIVITY_MIN_WIDTHS = (19, max(map(len, Level)), max(map(len, Kind)), 12)


def _activity_row(item: dict[str, Any]) -> tuple[str, ...]:
    who = item.get("account") or item.get("connection") or "engine"
    message = item["message"]
    if item.get("fill"):  # the leader fill it belongs to: the key ``activity --fill`` takes
        message = f"{message}  [fill {item['fill']}]"
    row = (item["time"][:19].replace("T", " "), item["level"], item["kind"], who, message)
    return tuple(_cell(c) for c in row)


def activity_table(items: list[dict[str, Any]], out: TextIO) -> list[int]:
    """The entries as a table; returns its column widths, for :func:`activity_line`."""
    return table(
        [_activity_row(i) for i in items],
        ("TIME (UTC)", "LEVEL", "KIND", "WHO", "MESSAGE"),
        out,
        ACTIVITY_MIN_WIDTHS,
    )


def activity_line(item: dict[str, Any], widths: Sequence[int]) -> str:
    """One live entry, its columns under those of :func:`activity_table`'s ``widths``."""
    return _line(_activity_row(item), widths)


def describe_deletion(plan: dict[str, Any], out: TextIO) -> None:
    lines = []
    if plan.get("accounts"):
        lines.append(f"accounts deleted: {', '.join(plan['accounts'])}")
    if plan.get("groups"):
        lines.append(f"copy groups removed whole: {', '.join(plan['groups'])}")
    for m in plan.get("memberships", []):
        lines.append(f"membership removed: {m['account']} from group {m['group']}")
    for m in plan.get("orphaned_followers", []):
        lines.append(f"left without a group: {m['account']} (was in {m['group']})")
    if plan.get("followers"):
        lines.append(f"followers left without a group: {', '.join(plan['followers'])}")
    out.write("\n".join(lines or ["nothing else is removed"]) + "\n")
    out.write("No order is sent: positions stay as they are (flatten first to close them).\n")
    staying = plan.get("working_orders", [])
    if staying:  # S8.8: cancels are orders too; none is sent
        out.write("These working orders stay at the broker, cancelled by nothing:\n")
        for order in staying:
            out.write(f"  {order['account']}: {working_order_text(order)}\n")


def working_order_text(order: dict[str, Any]) -> str:
    """``sell 2 ESZ6 stop 4980 (stop leg; waits for its entry; mirrors 17)``: a limit shows its
    price, a stop its stop price, a stop-limit both."""
    side = "buy" if order["qty"] > 0 else "sell"
    kind = order["order_type"]
    if kind in ("stop", "stop_limit") and order.get("stop") is not None:
        kind = f"stop {order['stop']}"
    if order["order_type"] in ("limit", "stop_limit") and order.get("price") is not None:
        kind = (
            f"{kind} limit {order['price']}"
            if kind.startswith("stop ")
            else f"limit {order['price']}"
        )
    notes = []
    if order.get("role"):
        notes.append(f"{order['role']} leg")
    if not order.get("active", True):
        notes.append("waits for its entry")
    if order.get("mirrors"):
        notes.append(f"mirrors {order['mirrors']}")
    text = f"{side} {abs(order['qty'])} {order['symbol']} {kind}"
    return text + (f" ({'; '.join(notes)})" if notes else "")


__all__ = [
    "accounts_table",
    "activity_line",
    "activity_table",
    "connections_table",
    "describe_deletion",
    "groups_table",
    "positions_text",
    "table",
    "working_order_text",
]
