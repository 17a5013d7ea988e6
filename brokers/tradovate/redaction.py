"""Keep OAuth codes and tokens out of the HTTP libraries' own log lines.

httpx logs every request URL at INFO and httpcore the response headers at DEBUG; an OAuth
redirect carries ``code=`` in both. Our own log lines never hold a secret (they are written
without them), but a process that turns on DEBUG logging for the libraries would see these.
:func:`install` puts a filter on those loggers that blanks the values of ``code``, ``state``,
token and secret parameters and of ``Bearer`` credentials before any handler sees the record.
"""

from __future__ import annotations

import logging
import re

LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "hypercorn.access",
    "hypercorn.error",
    "trio-websocket",
)
REDACTED = "[redacted]"
_PATTERNS = (
    re.compile(
        r"(?i)\b(code|state|access_?token|refresh_?token|token|client_secret|p-ticket)"
        r"(=|%3D)[^&\s'\"\\)]+"
    ),
    re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)\"(access_?token|accessToken|refresh_?token|refreshToken|client_secret)\""
        r"(\s*:\s*)\"[^\"]*\""
    ),
)


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return text


class SecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = SecretFilter()


def install() -> None:
    """Idempotent: filter the HTTP and WebSocket libraries' loggers."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
