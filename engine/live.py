"""``python -m engine run``: the long-running engine process."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default="data", help="where the store lives (default ./data)")


def main(args: argparse.Namespace) -> int:
    raise SystemExit("python -m engine run: not built yet")
