"""structlog setup: readable lines on a terminal, JSON lines otherwise, and JSON lines to a file
in the data directory; secrets redacted before anything is written.

Redaction works three ways, so no token, OAuth code or secret is ever written whatever the
caller did: a field whose *name* looks secret is replaced; a string holding a value registered
with :data:`SECRETS` (the API token, a client secret, codes and ``state`` values in flight) has
it replaced; and ``code=…``, ``token=…``, ``Bearer …`` patterns in any string are masked.
Standard-library logging (the HTTP server's) goes through the same chain.

The file in the data directory is rotated by the engine once it passes ``[log] max_mb``:
``engine.log`` becomes ``engine.log.1``, the older ones move up a number, and the oldest past
``[log] keep`` is deleted. ``max_mb = 0`` leaves rotation to the system (logrotate's
``copytruncate``: the file is opened for appending).
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import IO, Any

import structlog

SECRET_KEYS = re.compile(
    r"token|secret|password|passwd|code|authorization|cookie|credential", re.IGNORECASE
)
SECRET_PATTERNS = (
    re.compile(
        r"(?i)\b((?:access_|refresh_|id_)?token|code|state|client_secret|password)=[^&\s\"'<>]+"
    ),
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"),
)
REDACTED = "[redacted]"
MIN_SECRET = 6  # shorter values would mask ordinary words


class SecretValues:
    """Values that must never be written, wherever they turn up (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        if isinstance(value, str) and len(value) >= MIN_SECRET:
            with self._lock:
                self._values.add(value)

    def discard(self, value: str) -> None:
        with self._lock:
            self._values.discard(value)

    def scrub(self, text: str) -> str:
        with self._lock:
            values = list(self._values)
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
        for pattern in SECRET_PATTERNS:
            text = pattern.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
        return text


SECRETS = SecretValues()


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return SECRETS.scrub(value)
    if isinstance(value, dict):
        return {k: REDACTED if _secret_key(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _secret_key(key: object) -> bool:
    return isinstance(key, str) and key != "event" and bool(SECRET_KEYS.search(key))


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Never write a token, OAuth code or secret, whatever key or text it hides in."""
    for key in list(event):
        event[key] = REDACTED if _secret_key(key) else _scrub(event[key])
    return event


class JsonFile:
    """Appends every event as one JSON line to a file (created 0600), whatever the terminal
    shows. Writes are serialized: actor threads, trio and the HTTP server all log.

    Past ``max_bytes`` (0: never) the file is rotated: ``path.1`` is the newest of the ``keep``
    earlier files kept."""

    def __init__(self, path: Path, max_bytes: int = 0, keep: int = 5) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._lock = threading.Lock()
        self._file = self._open()
        self._size = os.fstat(self._file.fileno()).st_size

    def _open(self) -> IO[str]:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8", buffering=1)

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        line = jsonlib.dumps(dict(event), default=str, ensure_ascii=False) + "\n"
        with self._lock:
            if not self._file.closed:
                # A full disk must not stop the engine; the terminal still shows the line.
                with contextlib.suppress(OSError):
                    if self.max_bytes and self._size + len(line) > self.max_bytes and self._size:
                        self._rotate()
                    self._file.write(line)
                    self._size += len(line.encode("utf-8"))
        return event

    def _rotate(self) -> None:
        """``path`` becomes ``path.1``, each older one moves up a number, the last goes."""
        self._file.close()
        rotated = [self.path.with_name(f"{self.path.name}.{n}") for n in range(self.keep + 1)]
        rotated[self.keep].unlink(missing_ok=True)
        for n in range(self.keep - 1, 0, -1):
            if rotated[n].exists():
                os.replace(rotated[n], rotated[n + 1])
        os.replace(self.path, rotated[1])
        self._file = self._open()
        self._size = 0

    def close(self) -> None:
        with self._lock:
            self._file.close()


_file_sink: JsonFile | None = None

# The HTTP client logs every request it makes at info (one line per order sent to the broker,
# per contract lookup): only its warnings and errors are worth a line of the engine's log.
QUIET_LIBRARIES = ("httpx", "httpcore")


class _ToStructlog(logging.Handler):
    """Standard-library records (the HTTP server's) into the structlog chain."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = record.levelname.lower()
            method: Callable[..., Any] = getattr(
                structlog.get_logger(record.name), level if level != "critical" else "error"
            )
            method(record.getMessage(), logger=record.name)
        except Exception:  # a log line must never break the caller
            pass


def configure_logging(
    level: str = "info",
    *,
    json: bool | None = None,
    file: Path | None = None,
    max_bytes: int = 0,
    keep: int = 5,
) -> None:
    """Terminal lines (readable, or JSON when ``json`` or when stderr is not a terminal) and,
    with ``file``, JSON lines appended to it, rotated past ``max_bytes`` (0: never) with
    ``keep`` earlier files."""
    global _file_sink  # noqa: PLW0603 - logging is process-wide by nature
    numeric = logging.getLevelName(level.upper())
    use_json = not sys.stderr.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    if _file_sink is not None:
        _file_sink.close()
        _file_sink = None
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    if file is not None:
        _file_sink = JsonFile(file, max_bytes, keep)
        processors.append(_file_sink)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _ToStructlog):
            root.removeHandler(handler)
    root.addHandler(_ToStructlog())
    root.setLevel(max(numeric if isinstance(numeric, int) else logging.INFO, logging.INFO))
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def close_log_file() -> None:
    global _file_sink  # noqa: PLW0603
    if _file_sink is not None:
        _file_sink.close()
        _file_sink = None


__all__ = [
    "REDACTED",
    "SECRETS",
    "JsonFile",
    "SecretValues",
    "close_log_file",
    "configure_logging",
    "redact",
]
