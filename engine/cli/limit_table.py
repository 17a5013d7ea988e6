"""The tables ``status`` prints under the accounts: each limit set, the money left before it is
hit (the API's ``limit_distances``), and a word — coloured on a terminal — for an account near a
limit (within 20 %, amber) or at it, past it or halted (red); then the prop-firm rules (S9):
the profile, the max-loss threshold and the distance to it, the contracts in use of the cap, the
next session close and the blackout running (in capitals) or next."""

from __future__ import annotations

import io
from typing import Any, TextIO

from engine.cli.risk_text import contracts_text, session_text
from engine.cli.tables import table

AMBER, RED, RESET = "\033[33m", "\033[31m", "\033[0m"


def standing_text(standing: str, risk_status: str) -> str:
    match standing:
        case "near":
            return "NEAR: within 20 %"
        case "breached":
            return "BREACHED"
        case "halted":
            return f"HALTED: {risk_status}"
        case "off":
            return "off until its reset (unlocked by hand)"
        case _:
            return "ok"


def _coloured(text: str, standing: str) -> str:
    colour = {"near": AMBER, "breached": RED, "halted": RED}.get(standing)
    return f"{colour}{text}{RESET}" if colour else text


def limits_table(accounts: list[dict[str, Any]], out: TextIO) -> None:
    rows = [
        (
            a["id"],
            d["limit"].replace("_", " "),
            a["limits"].get(d["limit"], d["value"]),
            d["distance"],
            standing_text(d["standing"], a["risk_status"]),
            d["standing"],
        )
        for a in accounts
        for d in a.get("limit_distances", [])
    ]
    out.write("Limits: the money left before each is hit\n")
    headers = ("ACCOUNT", "LIMIT", "SET", "LEFT", "STANDING")
    if not out.isatty():
        table([r[:5] for r in rows], headers, out)
        return
    # On a terminal a row near or at its limit is coloured; the escapes would throw the columns
    # off, so the table is laid out first and coloured after.
    laid = io.StringIO()
    table([r[:5] for r in rows], headers, laid)
    for index, line in enumerate(laid.getvalue().splitlines()):
        standing = rows[index - 2][5] if 2 <= index < len(rows) + 2 else ""
        out.write(_coloured(line, standing) + "\n")


def _has_rules(account: dict[str, Any]) -> bool:
    return any(
        account.get(k)
        for k in ("profile", "threshold", "max_contracts", "next_session_close", "blackout")
    )


def _threshold(account: dict[str, Any]) -> str | None:
    """S9.3's threshold; ``(off)`` while an unlock has switched its trigger off."""
    threshold: str | None = account.get("threshold")
    if threshold is not None and "max_loss" in account.get("triggers_off", []):
        return f"{threshold} (off)"
    return threshold


def rules_table(accounts: list[dict[str, Any]], out: TextIO) -> None:
    """The S9 figures of each account that has any: a running blackout comes first, marked."""
    rows = [
        (
            a["id"],
            a.get("profile"),
            _threshold(a),
            a.get("threshold_distance"),
            contracts_text(a),
            session_text(a),
        )
        for a in accounts
        if _has_rules(a)
    ]
    out.write("Prop-firm rules: the threshold and the equity above it, contracts in use\n")
    headers = ("ACCOUNT", "PROFILE", "THRESHOLD", "DISTANCE", "CONTRACTS", "SESSION / BLACKOUT")
    table(rows, headers, out)


__all__ = ["limits_table", "rules_table", "standing_text"]
