"""``python -m engine``: ``replay`` scenario files, or ``run`` the live engine."""

from __future__ import annotations

import argparse
import sys

from engine.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    from engine.replay import cli as replay_cli

    replay = commands.add_parser("replay", help="run scenario files against the engine")
    replay_cli.add_arguments(replay)

    from engine import live

    run = commands.add_parser("run", help="run the engine until Ctrl-C")
    live.add_arguments(run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "replay":
        from engine.replay import cli as replay_cli

        configure_logging(level="error")
        return replay_cli.main(args)
    from engine import live

    return live.main(args)


if __name__ == "__main__":
    sys.exit(main())
