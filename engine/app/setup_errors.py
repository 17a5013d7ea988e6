"""Why the configured broker cannot be made: raised by the broker wiring
(:mod:`engine.app.tradovate_setup`, :mod:`engine.app.local_tradovate`), told to the user by the
live process in one line."""

from __future__ import annotations


class BrokerSetupError(Exception):
    """The configured broker cannot be made; the message is one line for the user."""


__all__ = ["BrokerSetupError"]
