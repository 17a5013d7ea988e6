"""The Tradovate broker from the configuration (``[broker] kind = "tradovate"``), when this build
has the adapter (``brokers/tradovate``).

The client id and secret come from the environment (or the secret from a 0600 file in the data
directory), never from the configuration file; the secret is registered with the log redaction
before anything can print it. Tokens are kept by the adapter in ``DATA/tradovate/``.
"""

from __future__ import annotations

import importlib
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, cast

from brokers.base import Broker
from engine.clock import Clock
from engine.config import BrokerConfig, TradovateConfig
from engine.logs import SECRETS
from engine.secret_files import SecretError, read_secret_env, read_secret_file

TOKEN_DIR = "tradovate"


class BrokerSetupError(Exception):
    """The configured broker cannot be made; the message is one line for the user."""


def _adapter() -> Any:
    try:
        return importlib.import_module("brokers.tradovate")
    except ImportError:
        return None


def tradovate_broker(
    config: BrokerConfig, data_dir: Path, clock: Clock
) -> tuple[Broker, AbstractAsyncContextManager[Any]]:
    """The broker, and what runs its trio side (enter it inside the engine's trio loop)."""
    kind = config.kind
    adapter = _adapter()
    if adapter is None or not isinstance(config, TradovateConfig):
        why = (
            "the Tradovate adapter (brokers/tradovate) is not part of it"
            if adapter is None
            else "the engine does not start the local Tradovate server itself yet"
        )
        raise BrokerSetupError(f'broker.kind = "{kind}": not available in this build ({why})')
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
    settings = make(client_id, secret, data_dir / TOKEN_DIR)
    broker = adapter.TradovateBroker(settings, clock)
    return cast(Broker, broker), cast(AbstractAsyncContextManager[Any], broker.running())


__all__ = ["TOKEN_DIR", "BrokerSetupError", "tradovate_broker"]
