"""The paper broker: the embedded default broker and the scenario broker."""

from __future__ import annotations

from brokers.base import PlacedOrder
from brokers.paper.book import PaperBrokerError
from brokers.paper.broker import PaperBroker, PaperSession
from brokers.paper.checks import (
    DONE_CANCELLED,
    DONE_NOTHING_TO_LIQUIDATE,
    REJECT_DUPLICATE,
    REJECT_FORCED,
    REJECT_SESSION_CLOSED,
    REJECT_UNAUTHORIZED,
    REJECT_UNKNOWN_ORDER,
    SNAPSHOT_FORCED,
    no_quote,
)
from brokers.paper.matching import (
    DONE_ENTRY_CANCELLED,
    DONE_MODIFIED_TO_FILLED,
    DONE_OCO_CANCELLED,
    DONE_OCO_FILLED,
)

__all__ = [
    "DONE_CANCELLED",
    "DONE_ENTRY_CANCELLED",
    "DONE_MODIFIED_TO_FILLED",
    "DONE_NOTHING_TO_LIQUIDATE",
    "DONE_OCO_CANCELLED",
    "DONE_OCO_FILLED",
    "REJECT_DUPLICATE",
    "REJECT_FORCED",
    "REJECT_SESSION_CLOSED",
    "REJECT_UNAUTHORIZED",
    "REJECT_UNKNOWN_ORDER",
    "SNAPSHOT_FORCED",
    "PaperBroker",
    "PaperBrokerError",
    "PaperSession",
    "PlacedOrder",
    "no_quote",
]
