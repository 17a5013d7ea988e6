"""``python -m engine``: ``replay`` scenario files, or ``run`` the live engine."""

from __future__ import annotations

import argparse
import sys

from engine import live
from engine.logs import configure_logging
from engine.replay import cli as replay_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="run scenario files against the engine")
    replay_cli.add_arguments(replay)
    run = commands.add_parser("run", help="run the engine until Ctrl-C")
    live.add_arguments(run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "replay":
        configure_logging(level="critical")  # the report is the output; failures are in it
        return replay_cli.main(args)
    return live.main(args)


if __name__ == "__main__":
    sys.exit(main())
