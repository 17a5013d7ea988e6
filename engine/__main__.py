"""``python -m engine``: ``run`` the live engine, ``replay`` scenario files, control a running
engine through its API (``status``, ``connections``, ``accounts``, ``groups``, ``limits``,
``flatten``, ``lock``, ``unlock``, ``activity``, the risk ``profiles``, an account's ``profile``,
the ``blackouts``, the ``paper`` desk, ``setup diff|apply`` a configuration file, the
``cockpit``'s address), ``backup`` and ``restore`` a data directory, ``export`` its records of
a range of trading days, or send the ``alerts`` targets a test message."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from engine.app.logs import configure_logging
from engine.cli import alerts as alerts_cli
from engine.cli import backup as backup_cli
from engine.cli import cockpit as cockpit_cli
from engine.cli import commands as cli
from engine.cli import export as export_cli
from engine.cli import paper as paper_cli
from engine.cli import profiles as profiles_cli
from engine.cli import setup as setup_cli
from engine.cli import sync as sync_cli
from engine.live import runner as live
from engine.replay import cli as replay_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="run scenario files against the engine")
    replay_cli.add_arguments(replay)
    run = commands.add_parser("run", help="run the engine until Ctrl-C")
    live.add_arguments(run)
    cli.add_commands(commands)
    backup_cli.add_commands(commands)
    export_cli.add_commands(commands)
    paper_cli.add_commands(commands)
    profiles_cli.add_commands(commands)
    sync_cli.add_commands(commands)
    setup_cli.add_commands(commands)
    cockpit_cli.add_commands(commands)
    alerts_cli.add_commands(commands)
    return parser


# A reader that went away (``... | head -1``): the status a shell shows for a command ended by
# SIGPIPE, as ``yes | head -1`` reports it.
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # here, not at exit: a closed pipe is then caught below
    except BrokenPipeError:
        # Whatever is still buffered goes nowhere, quietly: the reader wanted no more of it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_PIPE_CLOSED
    return code


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "replay":
        configure_logging(level="critical")  # the report is the output; failures are in it
        return replay_cli.main(args)
    if args.command == "run":
        return live.main(args)
    if args.command in backup_cli.COMMANDS:
        return backup_cli.main(args)
    if args.command == export_cli.COMMAND:
        return export_cli.main(args)
    if args.command == paper_cli.COMMAND:
        return paper_cli.main(args)
    if args.command in profiles_cli.COMMANDS:
        return profiles_cli.main(args)
    if args.command == sync_cli.COMMAND:
        return sync_cli.main(args)
    if args.command == setup_cli.COMMAND:
        return setup_cli.main(args)
    if args.command == cockpit_cli.COMMAND:
        return cockpit_cli.main(args)
    if args.command == alerts_cli.COMMAND:
        return alerts_cli.main(args)
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
