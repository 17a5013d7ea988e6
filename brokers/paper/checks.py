"""The paper broker's reasons (the texts of its rejections and of orders that end) and the
checks of the harness's arguments, shared by its parts."""

from __future__ import annotations

from brokers.paper.book import PaperBrokerError

REJECT_SESSION_CLOSED = "SessionClosed"
REJECT_UNAUTHORIZED = "Unauthorized"
REJECT_DUPLICATE = "DuplicateClOrdId"
REJECT_FORCED = "Rejected by the paper broker (reject_next)"
REJECT_UNKNOWN_ORDER = "UnknownOrder"
SNAPSHOT_FORCED = "BrokerError: the paper broker refused the snapshot request (fail_snapshot)"
DONE_CANCELLED = "cancelled"
DONE_NOTHING_TO_LIQUIDATE = "nothing to liquidate"

FILLS_KEPT = 10_000


def no_quote(symbol: str) -> str:
    return f"NoQuote: no price for {symbol}"


def check_qty(qty: object, what: str) -> int:
    if isinstance(qty, bool) or not isinstance(qty, int):
        raise PaperBrokerError(f"{what}: quantity must be an int, got {qty!r}")
    if qty == 0:
        raise PaperBrokerError(f"{what}: quantity must not be 0")
    return qty


def check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise PaperBrokerError(f"{what} must be a non-empty string, got {value!r}")
    return value


def check_count(connection: str, count: object, what: str) -> int:
    """How many of the next requests of ``connection`` a harness control (``what``) applies to."""
    check_id(connection, "connection")
    checked = check_qty(count, f"{what} {connection}")
    if checked < 0:
        raise PaperBrokerError(f"{what} {connection}: count must be positive")
    return checked
