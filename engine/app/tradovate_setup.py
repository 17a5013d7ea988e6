"""The Tradovate broker from the configuration (``[broker] kind = "tradovate"``), or the local
Tradovate-compatible server with the adapter pointed at it (``kind = "tradovate-sim"``,
:mod:`engine.app.local_tradovate`), when this build has the adapter (``brokers/tradovate``).

The client id and secret come from the environment (or the secret from a 0600 file in the data
directory), never from the configuration file; the secret is registered with the log redaction
before anything can print it. The environment (``demo``/``live``) gives the hosts;
``rest_url``, ``ws_url``, ``md_url``, ``auth_url`` and ``token_url`` in ``[broker]`` replace them
one by one (another Tradovate-compatible server: a partner sandbox, a conformance server). Tokens
are kept by the adapter in ``DATA/tradovate/``, or in a directory of the overridden hosts' own.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import structlog

from brokers.base import Broker
from brokers.clock import Clock
from brokers.instruments import ContractTable
from engine.app.config import TradovateConfig, TradovateSimConfig
from engine.app.logs import SECRETS
from engine.app.secret_files import SecretError, read_secret_env, read_secret_file
from engine.app.setup_errors import BrokerSetupError

if TYPE_CHECKING:
    from engine.app.local_tradovate import LocalTradovate

log = structlog.get_logger("engine.app.tradovate_setup")

TOKEN_DIR = "tradovate"


def _adapter() -> Any:
    try:
        return importlib.import_module("brokers.tradovate")
    except ImportError:
        return None


def _require_adapter(kind: str) -> Any:
    adapter = _adapter()
    if adapter is None:
        raise BrokerSetupError(
            f'broker.kind = "{kind}": not available in this build (the Tradovate adapter'
            " (brokers/tradovate) is not part of it)"
        )
    return adapter


def tradovate_broker(
    config: TradovateConfig, data_dir: Path, clock: Clock
) -> tuple[Broker, AbstractAsyncContextManager[Any]]:
    """The broker, and what runs its trio side (enter it inside the engine's trio loop)."""
    adapter = _require_adapter(config.kind)
    try:
        client_id = read_secret_env(config.client_id_env)
        secret = (
            read_secret_file(data_dir, config.client_secret_file)
            if config.client_secret_file
            else read_secret_env(config.client_secret_env)
        )
    except SecretError as error:
        raise BrokerSetupError(f"broker: {error}") from None
    SECRETS.add(secret)
    settings_type = adapter.TradovateSettings
    make = settings_type.live if config.environment == "live" else settings_type.demo
    tokens = token_dir(config, data_dir)
    settings = make(client_id, secret, tokens)
    hosts = config.hosts
    budgets = config.budgets.settings()
    if hosts or budgets:
        settings = settings_type(**{**dict(settings), **hosts, **budgets})
    if hosts:
        # Each as "key url" in a list: a field named token_url would be masked as a secret.
        log.info(
            "tradovate hosts overridden",
            environment=config.environment,
            hosts=[f"{key} {url}" for key, url in hosts.items()],
            directory=str(tokens),
        )
    broker = adapter.TradovateBroker(settings, clock)
    return cast(Broker, broker), cast(AbstractAsyncContextManager[Any], broker.running())


def token_dir(config: TradovateConfig, data_dir: Path) -> Path:
    """Where the adapter keeps its tokens: ``DATA/tradovate/`` on Tradovate's own hosts, and a
    directory named after the overrides on any other (``DATA/tradovate-<12 hex digits>/``), so
    a token one server issued is never presented to another; other hosts, other sign-ins."""
    hosts = config.hosts
    if not hosts:
        return data_dir / TOKEN_DIR
    named = json.dumps({"environment": config.environment, **hosts}, sort_keys=True)
    return data_dir / f"{TOKEN_DIR}-{hashlib.sha256(named.encode()).hexdigest()[:12]}"


def local_tradovate(
    config: TradovateSimConfig,
    data_dir: Path,
    clock: Clock,
    contracts: ContractTable,
    *,
    quote_symbols: Iterable[str] = (),
) -> LocalTradovate:
    """The local server, its socket bound (a one-line :class:`BrokerSetupError` if it cannot
    be), and the adapter pointed at it; :meth:`LocalTradovate.running` serves and runs both."""
    _require_adapter(config.kind)
    local = importlib.import_module("engine.app.local_tradovate")
    made = local.LocalTradovate(config, data_dir, clock, contracts, quote_symbols=quote_symbols)
    return cast("LocalTradovate", made)


__all__ = ["TOKEN_DIR", "BrokerSetupError", "local_tradovate", "token_dir", "tradovate_broker"]
