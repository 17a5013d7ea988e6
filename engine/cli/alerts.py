"""``python -m engine alerts test [--config FILE]``: one test message to each alert target of
the configuration's ``[alerts]`` (S10.4), and one line per target saying whether it took it.

    $ python -m engine alerts test --config engine.toml
    discord#1: ok
    json#2: failed: Failed to send JSON POST notification: Internal server error., error=500.

Targets are named by their scheme and place in the list, never by their URL (it holds their
secret). It reads the URLs as the engine does (``urls_env``, ``urls_file`` mode 0600) and needs
no running engine. Each target is sent to once, all at the same time, without the engine's
retries: what it prints is what the target does now.

Exit codes: 0 every target took its message, 1 one or more did not, 2 no targets can be read
(no ``[alerts]``, a file missing or open to others, a variable unset, a URL apprise refuses).
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from brokers.clock import WallClock
from engine.app.alert_targets import AlertsError, Target, load_targets, send_alert
from engine.app.config import ConfigError, load_config
from engine.domain.activity import Level
from engine.domain.alerting import Alert

COMMAND = "alerts"
EXIT_FAILED = 1
EXIT_SETUP = 2
TEST_KIND = "test"


def add_commands(commands: Any) -> None:
    """Add ``alerts test`` to ``python -m engine``'s sub-parsers."""
    p = commands.add_parser(
        COMMAND,
        help="the alert targets of [alerts]: send each a test message",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", required=True)
    test = actions.add_parser("test", help="send one test message to each target")
    test.add_argument("--config", help="the engine's configuration file (its [alerts] table)")


def trial_alert(now: Any) -> Alert:
    return Alert(
        now,
        Level.INFO,
        TEST_KIND,
        "a test message from the trade copier (python -m engine alerts test): this target"
        " gets its alerts",
    )


def send_tests(targets: list[Target], alert: Alert) -> list[tuple[str, str | None]]:
    """Each target's name and why it did not take ``alert`` (None: it did), in order."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(targets), 16))) as pool:
        results = list(pool.map(lambda t: send_alert(t, alert), targets))
    return [(t.name, r) for t, r in zip(targets, results, strict=True)]


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        config = load_config(Path(args.config) if args.config else None)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_SETUP
    where = args.config or "the configuration (no --config given)"
    if not config.alerts.enabled:
        print(
            f"{where}: no alert targets: set [alerts] urls_file (a 0600 file of apprise URLs)"
            " or urls_env (an environment variable holding them)",
            file=sys.stderr,
        )
        return EXIT_SETUP
    try:
        targets = load_targets(config.alerts, config.path)
    except AlertsError as error:
        print(f"{where}: {error}", file=sys.stderr)
        return EXIT_SETUP
    failed = 0
    for name, reason in send_tests(targets, trial_alert(WallClock().now())):
        out.write(f"{name}: ok\n" if reason is None else f"{name}: failed: {reason}\n")
        failed += reason is not None
    return EXIT_FAILED if failed else 0


__all__ = ["COMMAND", "add_commands", "main", "send_tests", "trial_alert"]
