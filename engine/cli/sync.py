"""``python -m engine sync ACCOUNT`` and ``python -m engine sync group ID``: bring a follower
(or every follower of a group) to its leader's target on purpose (SEMANTICS S6.2), through the
running engine's API.

The orders it would send are shown first, per follower — position, target and order by symbol,
and why nothing is sent, or what the risk gate would refuse, where that applies — then it asks,
as a delete does (decision 0008); ``--yes`` skips the question and is needed when no one is there
to answer. The orders shown go with the command: if the follower's plan differs by the time it
acts (the leader or the follower traded in between), it sends nothing and says so. Nothing to
send says so and asks nothing.

    python -m engine sync DEMO-F1
    python -m engine sync group demo --yes

Exit codes as the other commands: 0 done (or nothing to send), 1 refused (a leader, an account
in no group, a cancelled question, orders that changed since they were shown), 2 the engine
cannot be reached, the command line is wrong, or no one can answer the question.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from engine.cli.commands import (
    EXIT_USAGE,
    Client,
    CliError,
    _common,
    _path,
    confirm,
    run_handler,
)
from engine.cli.tables import table

COMMAND = "sync"
GROUP = "group"
HEADERS = ("ACCOUNT", "SYMBOL", "POSITION", "TARGET", "ORDER")


def _target(args: argparse.Namespace) -> tuple[str, str]:
    """(what is synced, its API path) from ``sync ACCOUNT`` or ``sync group ID``."""
    if args.target == GROUP:
        if args.group is None:
            raise CliError(
                "sync group needs the group's ID: python -m engine sync group ID", EXIT_USAGE
            )
        return f"group {args.group}", _path("api", "groups", args.group, "sync")
    if args.group is not None:
        raise CliError(
            f"sync takes one account ({args.target!r}, then {args.group!r}?):"
            " python -m engine sync ACCOUNT, or python -m engine sync group ID",
            EXIT_USAGE,
        )
    return f"account {args.target}", _path("api", "accounts", args.target, "sync")


def _followers(answer: Any) -> list[dict[str, Any]]:
    return list(answer.get("followers", [answer]))


def orders_table(followers: list[dict[str, Any]], out: TextIO) -> None:
    """One row per follower and symbol; then each follower's line (why nothing is sent, or what
    the gate would refuse)."""
    rows: list[tuple[str, str, Any, Any, str]] = []
    for f in followers:
        symbols = sorted(set(f["positions"]) | set(f["targets"]) | set(f["orders"]))
        rows += [
            (
                f["account"],
                symbol,
                f["positions"].get(symbol, 0),
                f["targets"].get(symbol, ""),
                f"{f['orders'][symbol]:+d}" if f["orders"].get(symbol) else "",
            )
            for symbol in symbols
        ] or [(f["account"], "", "", "", "")]
    table(rows, HEADERS, out)
    out.write("\n")
    for f in followers:
        out.write(f"{f['message']}\n")


def run(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    what, path = _target(args)
    shown = client.call("POST", f"{path}?dry_run=true")
    followers = _followers(shown)
    if not args.json or not args.yes:
        orders_table(followers, out)
    expect = {f["account"]: f["orders"] for f in followers if f["orders"]}
    if not expect:
        if not args.json:
            out.write(f"sync {what}: nothing to send, nothing asked\n")
        return shown
    confirm(args, f"Send these orders at market to bring {what} to its leader's target?", out)
    body = {"expect": expect if args.target == GROUP else expect[args.target]}
    answer = client.call("POST", path, body)
    sent = _followers(answer)
    if not args.json:
        out.write("".join(f"{f['message']}\n" for f in sent))
    changed = [f["account"] for f in sent if f["account"] in expect and f["skip"]]
    if changed:
        if args.json:
            out.write(json.dumps(answer, indent=2) + "\n")
        raise CliError(
            f"nothing sent for {', '.join(changed)}: the orders are not the ones shown any more;"
            " run sync again to see them"
        )
    return answer


def add_commands(commands: Any) -> None:
    """Add ``sync`` to ``python -m engine``'s sub-parsers."""
    p = commands.add_parser(
        COMMAND,
        help="bring a follower, or a group's followers, to the leader's target (S6.2)",
        description="Shows the orders first and asks; --yes to skip the question.",
    )
    p.add_argument("target", metavar="ACCOUNT|group", help="a follower account, or 'group'")
    p.add_argument("group", nargs="?", metavar="ID", help="with group: the group's ID")
    p.add_argument("--yes", action="store_true", help="send without a question")
    _common(p)


def main(args: argparse.Namespace, out: TextIO | None = None, client: Client | None = None) -> int:
    return run_handler(run, args, out, client, interrupted="cancelled, nothing sent")


__all__ = ["COMMAND", "add_commands", "main", "orders_table"]
