"""The paper broker: the embedded default broker and the scenario broker."""

from __future__ import annotations

from brokers.paper.book import PaperBrokerError
from brokers.paper.broker import (
    DONE_CANCELLED,
    DONE_NOTHING_TO_LIQUIDATE,
    REJECT_DUPLICATE,
    REJECT_FORCED,
    REJECT_SESSION_CLOSED,
    REJECT_UNAUTHORIZED,
    SNAPSHOT_FORCED,
    PaperBroker,
    PaperSession,
    no_quote,
)

__all__ = [
    "DONE_CANCELLED",
    "DONE_NOTHING_TO_LIQUIDATE",
    "REJECT_DUPLICATE",
    "REJECT_FORCED",
    "REJECT_SESSION_CLOSED",
    "REJECT_UNAUTHORIZED",
    "SNAPSHOT_FORCED",
    "PaperBroker",
    "PaperBrokerError",
    "PaperSession",
    "no_quote",
]
