"""``python -m engine paper show | trade | price``: the paper trading desk from a terminal,
through the running engine's API (``/api/paper``), found as the other commands find it.

    python -m engine paper trade DEMO-LEAD buy 2 ESZ6    # the owner's market order, filled now
    python -m engine paper price ESZ6 4990               # a tick: the risk guard checks it
    python -m engine paper show                          # the accounts and every last price

Exit codes as the other commands: 0 done, 1 the engine refused (on a real broker, say: its
message is printed), 2 the engine cannot be reached or the command line is wrong.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from engine.cli.commands import Client, _common, run_handler
from engine.cli.tables import table

COMMAND = "paper"


def cmd_show(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    desk = client.call("GET", "/api/paper")
    if not args.json:
        walk = "walks (a price set goes on from there)" if desk["market"] else "holds still"
        out.write(f"paper desk on broker {desk['broker']}; the simulated market {walk}\n\n")
        table(sorted(desk["prices"].items()), ("SYMBOL", "LAST"), out)
        out.write(f"\naccounts: {', '.join(desk['accounts']) or 'none'}\n")
    return desk


def cmd_trade(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    body = {"account": args.account, "side": args.side, "qty": args.qty, "symbol": args.symbol}
    return _done(client.call("POST", "/api/paper/trade", body), args, out)


def cmd_price(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    body = {"symbol": args.symbol, "last": args.last}
    return _done(client.call("POST", "/api/paper/price", body), args, out)


def _done(answer: Any, args: argparse.Namespace, out: TextIO) -> Any:
    if not args.json:
        out.write(f"{answer['message']}\n")
    return answer


HANDLERS = {"show": cmd_show, "trade": cmd_trade, "price": cmd_price}


def add_commands(commands: Any) -> None:
    """Add ``paper`` and its actions to ``python -m engine``'s sub-parsers."""
    paper = commands.add_parser(
        COMMAND, help="the paper desk: trade by hand on a paper account, set a symbol's price"
    )
    actions = paper.add_subparsers(dest="action", required=True, metavar="show|trade|price")
    p = actions.add_parser("show", help="the desk's accounts and every symbol's last price")
    _common(p)
    p = actions.add_parser(
        "trade", help="a market order of the account's owner, filled at the last price"
    )
    p.add_argument("account", help="a paper account, e.g. DEMO-LEAD")
    p.add_argument("side", type=str.lower, choices=("buy", "sell"))
    p.add_argument("qty", type=int, help="contracts, 1 or more")
    p.add_argument("symbol", help="e.g. ESZ6")
    _common(p)
    p = actions.add_parser("price", help="set a symbol's last price: a tick the risk guard sees")
    p.add_argument("symbol", help="e.g. ESZ6")
    p.add_argument("last", help="the new price, on the contract's ticks (ESZ6: 0.25)")
    _common(p)


def main(args: argparse.Namespace, out: TextIO | None = None, client: Client | None = None) -> int:
    return run_handler(HANDLERS[args.action], args, out, client)


__all__ = ["COMMAND", "add_commands", "main"]
