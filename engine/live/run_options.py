"""The options of ``python -m engine run``: its command line, and what it and the configuration
file come to together (the command line wins)."""

from __future__ import annotations

import argparse
import secrets
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from engine.app.config import DEFAULT_PORT, Config


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number of seconds")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is 0-65535 (0: any free port)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=None, metavar="FILE", help="a TOML configuration (default: the demo)"
    )
    parser.add_argument(
        "--data-dir", default=None, help="where the store and the lock live (default ./data)"
    )
    parser.add_argument(
        "--host", default=None, help="the API's address (default 127.0.0.1: this machine only)"
    )
    parser.add_argument(
        "--port", type=_port, default=None, help=f"the API's port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--tls-cert",
        default=None,
        metavar="FILE",
        help="serve the API over https with this PEM certificate chain (and --tls-key)",
    )
    parser.add_argument(
        "--tls-key", default=None, metavar="FILE", help="the certificate's PEM private key"
    )
    parser.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow plain http on a --host other than loopback (warned at every start)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the simulated market (default: random)"
    )
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=None,
        help="terminal lines: readable or JSON (default: readable on a terminal, JSON otherwise)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="stop by itself after this long (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--tradovate-sim",
        action="store_true",
        help="run on the project's local Tradovate-compatible server, started in this process"
        ' (as [broker] kind = "tradovate-sim"; the demo too)',
    )
    parser.add_argument(
        "--paper-state",
        default=None,
        metavar="FILE",
        help="keep the paper broker's state in FILE across runs, as a real broker keeps it"
        " (default: the broker lives and dies with the process)",
    )
    parser.add_argument(
        "--new-store",
        action="store_true",
        help="begin again with a new store where the store is missing or empty but an engine's"
        " history is there (it is moved aside into DATA/set-aside-<time>/, not deleted);"
        " without it such a start is refused",
    )
    # For tests: the demo leader trades every SECONDS instead of every 3-8 s.
    parser.add_argument(
        "--demo-interval", type=_positive_seconds, default=None, help=argparse.SUPPRESS
    )
    # For tests: SIGUSR1 flattens the demo group and SIGUSR2 locks the demo's second follower
    # (a manual lock) at a precise instant, as a user's commands would.
    parser.add_argument("--signal-commands", action="store_true", help=argparse.SUPPRESS)


@dataclass(frozen=True)
class Options:
    config: Config
    data_dir: Path
    seed: int
    json: bool
    duration: float | None
    leader_interval: tuple[float, float]
    host: str
    port: int
    port_given: bool  # a busy default port falls back to a free one; a chosen one does not
    paper_state: Path | None = None
    signal_commands: bool = False
    new_store: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_http: bool = False
    config_file: Path | None = None  # --config, as given: named in the hints the start logs

    @classmethod
    def from_args(cls, args: argparse.Namespace, config: Config) -> Options:
        log_format: str | None = args.log_format
        if log_format is None and config.log.terminal != "auto":
            log_format = config.log.terminal
        use_json = not sys.stderr.isatty() if log_format is None else log_format == "json"
        seed = args.seed if args.seed is not None else config.demo.seed
        if seed is None:
            seed = secrets.randbelow(1_000_000)
        interval = config.demo.leader_interval_seconds
        if args.demo_interval is not None:
            interval = (args.demo_interval, args.demo_interval)
        paper_state: Path | None = None
        if args.paper_state is not None:
            paper_state = Path(args.paper_state)
        elif config.broker.kind == "paper" and config.broker.state_file:
            paper_state = config.path(config.broker.state_file)
        data_dir = Path(args.data_dir) if args.data_dir is not None else config.data_path
        port_given = args.port is not None or "port" in config.api.model_fields_set
        api = config.api
        tls_cert = Path(args.tls_cert) if args.tls_cert else None
        tls_key = Path(args.tls_key) if args.tls_key else None
        return cls(
            config=config,
            data_dir=data_dir,
            seed=seed,
            json=use_json,
            duration=args.duration,
            leader_interval=interval,
            host=args.host if args.host is not None else config.api.host,
            port=args.port if args.port is not None else config.api.port,
            port_given=port_given,
            paper_state=paper_state,
            signal_commands=bool(args.signal_commands),
            new_store=bool(args.new_store),
            tls_cert=tls_cert or (config.path(api.tls_cert) if api.tls_cert else None),
            tls_key=tls_key or (config.path(api.tls_key) if api.tls_key else None),
            insecure_http=bool(args.insecure_http) or api.insecure_http,
            config_file=Path(args.config) if args.config else None,
        )


def version() -> str:
    try:
        return metadata.version("mimik-engine")
    except metadata.PackageNotFoundError:
        return "0"


__all__ = ["Options", "add_arguments", "version"]
