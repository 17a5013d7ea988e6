"""``python -m engine cockpit [--data-dir DIR]``: the Cockpit's address with its API token, for
the engine running on the data directory — what a terminal showed at its first start, found
again when the engine runs in the background or its output went to a file.

    $ python -m engine cockpit
    http://127.0.0.1:8765/#token=q9Xz…

The address is the running engine's (``DIR/api.url``, written at its start), the token its file
(``DIR/api.token``); the engine is asked once that it answers to both before the address is
printed. Exit codes: 0 printed, 1 the engine refused the token, 2 no engine runs there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from engine.cli.commands import EXIT_USAGE, Client, CliError
from engine.storage.datadir import URL_FILE, read_url

COMMAND = "cockpit"
TOKEN_FILE = "api.token"


def add_commands(commands: Any) -> None:
    """Add ``cockpit`` to ``python -m engine``'s sub-parsers."""
    p = commands.add_parser(
        COMMAND,
        help="print the running engine's Cockpit address with its API token",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-dir", default="data", help="the engine's data directory (./data)")


def address(data_dir: Path) -> str:
    """The Cockpit's address with the token of the engine running on ``data_dir``; raises
    :class:`CliError` when none runs there or it refuses the token."""
    url = read_url(data_dir)
    if url is None:
        raise CliError(
            f"no engine is running on {data_dir}/ (no {data_dir / URL_FILE}): start one with"
            f" python -m engine run --data-dir {data_dir}",
            EXIT_USAGE,
        )
    token_file = data_dir / TOKEN_FILE
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise CliError(
            f"cannot read the API token {token_file} ({error.strerror or error})", EXIT_USAGE
        ) from None
    client = Client(url, token, token_source=str(token_file))
    try:
        client.call("GET", "/api/status")
    except CliError as error:
        if error.code == EXIT_USAGE:
            raise CliError(
                f"no engine answers at {url} (from {data_dir / URL_FILE}, left by an engine that"
                f" did not stop cleanly?): start one with python -m engine run --data-dir"
                f" {data_dir}",
                EXIT_USAGE,
            ) from None
        raise
    finally:
        client.close()
    return f"{client.url}/#token={token}"


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        out.write(address(Path(args.data_dir)) + "\n")
    except CliError as error:
        print(error, file=sys.stderr)
        return error.code
    return 0


__all__ = ["COMMAND", "add_commands", "address", "main"]
