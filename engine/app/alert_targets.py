"""The trader's alert targets (S10.4): apprise URLs read from where ``[alerts]`` says, each sent
to by apprise — which already speaks Discord, Telegram, Slack, e-mail, ntfy and JSON webhooks
(decision 0023) — one blocking call at a time.

A URL holds its target's secret (a webhook or bot token, a password, a private topic), so it is
read only from an environment variable (``urls_env``) or from a file that its owner alone can
read (``urls_file``, mode 0600), and it never leaves this module: a target is named by its
scheme and its place in the list (``json#1``, ``discord#2``) in logs, metrics, errors and the
CLI; a reason a send failed is apprise's own words with every part of the URL taken out; the
URL's secret parts are registered with the log's redaction (``engine.app.logs.SECRETS``) in
case anything else quotes them; and apprise's own log, which prints URLs, is kept out of the
engine's (its lines are captured per send, for the reason, instead).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import stat
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from engine.app.alerts_config import AlertsConfig
from engine.app.logs import REDACTED, SECRETS
from engine.domain.activity import Level
from engine.domain.alerting import Alert

_PIECES = re.compile(r"[/:@?&=#,;+\s]+")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")
SECRET_PIECE = 8  # a part this long with a digit or a capital is masked in every log line
_SECRETISH = re.compile(r"[0-9A-Z]")
_HOSTISH = re.compile(r"^(?:\d{1,3}(?:\.\d{1,3}){3}|[a-z0-9-]+(?:\.[a-z0-9-]+)+)$")
MIN_PIECE = 3  # pieces shorter than this are left in a reason ("to", "ok"); the secret is longer
APPRISE_LOGGER = "apprise"
_load_lock = threading.Lock()
_apprise: Any = None


class AlertsError(Exception):
    """The targets cannot be read: a file missing or open to others, a variable unset, a URL
    apprise does not know. The message never holds a URL."""


def _module() -> Any:
    """apprise, its plugins loaded once (one of them imports ``imghdr``, which warns of its
    removal on this Python), its own log kept out of the engine's."""
    global _apprise  # noqa: PLW0603 - one library, loaded once per process
    with _load_lock:
        if _apprise is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                # Imported here, not at the top: an engine without alerts never loads it.
                apprise = importlib.import_module("apprise")
                apprise.Apprise.instantiate("json://localhost")  # loads every plugin now
            own = logging.getLogger(APPRISE_LOGGER)
            own.propagate = False
            own.addHandler(logging.NullHandler())  # not Python's last resort either (stderr)
            own.setLevel(logging.WARNING)  # what _Said needs, whatever the engine's level
            _apprise = apprise
    return _apprise


@dataclass(eq=False)
class Target:
    """One apprise URL, named without its secret."""

    name: str  # scheme#position, 1-based: json#1
    _url: str = field(repr=False)
    _pieces: tuple[str, ...] = field(repr=False, default=())

    @property
    def scheme(self) -> str:
        return self.name.split("#", 1)[0]

    def scrub(self, text: str) -> str:
        """``text`` with every part of this target's URL taken out."""
        if self._url in text:
            text = text.replace(self._url, REDACTED)
        for piece in self._pieces:
            if piece in text:
                text = text.replace(piece, REDACTED)
        return text

    def send(self, title: str, body: str, level: Level) -> str | None:
        """Send one message (blocking, for a worker thread): None when the target took it, else
        why not, without the URL. Never raises.

        The service's own sender is called here, in this thread: ``Apprise.notify`` hands the
        request to apprise's thread pool, whose threads the interpreter joins at its exit, so
        a hung request there would hold the engine's stop until it timed out."""
        try:
            module = _module()
            service = module.Apprise.instantiate(self._url)  # fresh: no state between messages
            if service is None:
                return "apprise cannot use this URL"
            kind = {
                Level.INFO: module.NotifyType.INFO,
                Level.WARNING: module.NotifyType.WARNING,
                Level.ERROR: module.NotifyType.FAILURE,
            }[level]
            with _Said() as said:
                sent = service.notify(body=body, title=title, notify_type=kind)
            if sent:
                return None
            return self.scrub(said.reason())
        except Exception as error:  # a broken plugin must not stop the queue
            return self.scrub(f"{type(error).__name__}: {error}")


class _Said(logging.Handler):
    """What apprise logs at warning and above in this thread while it sends: why it failed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            with contextlib.suppress(Exception):
                self.lines.append(record.getMessage().strip())

    def __enter__(self) -> _Said:
        logging.getLogger(APPRISE_LOGGER).addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        logging.getLogger(APPRISE_LOGGER).removeHandler(self)

    def reason(self) -> str:
        text = " ".join(dict.fromkeys(line for line in self.lines if line))
        return text or "not delivered (apprise gave no reason)"


def _pieces(url: str) -> tuple[str, ...]:
    """The parts of a URL that may be its secret: everything after the scheme, split at its
    separators, and the query's values; longest first, so a part inside another goes after."""
    rest = _SCHEME.sub("", url)
    parts = {p for p in _PIECES.split(rest) if len(p) >= MIN_PIECE}
    with contextlib.suppress(ValueError):
        parts |= {v for _, v in parse_qsl(urlsplit(url).query) if len(v) >= MIN_PIECE}
    parts.add(rest)
    return tuple(sorted(parts, key=len, reverse=True))


def _register(url: str) -> None:
    """The URL and its parts that look like a secret into the log's redaction, wherever a log
    line might quote them: the password, and every part of eight characters or more with a
    digit or a capital in it (tokens, webhook ids, chat ids, keys). Words (``webhook``,
    ``alerts``) and host names are left readable: masking them would blank ordinary lines."""
    SECRETS.add(url)
    with contextlib.suppress(ValueError):
        SECRETS.add(urlsplit(url).password or "")
    for piece in _pieces(url):
        if len(piece) >= SECRET_PIECE and _SECRETISH.search(piece) and not _HOSTISH.match(piece):
            SECRETS.add(piece)


def split_urls(text: str) -> list[str]:
    """URLs separated by whitespace or newlines; ``#`` starts a comment line."""
    urls: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        urls.extend(line.split())
    return urls


def read_urls_file(path: Path) -> str:
    """The file's text, if only its owner — this user — can read or write it."""
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AlertsError(f"alerts.urls_file: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise AlertsError(f"alerts.urls_file: cannot read {path}: {reason}") from None
    if not stat.S_ISREG(info.st_mode):
        raise AlertsError(f"alerts.urls_file: {path} is not a file")
    if info.st_uid != os.getuid():
        raise AlertsError(
            f"alerts.urls_file: {path} belongs to another user (uid {info.st_uid}); it must be"
            " this user's own, mode 0600"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise AlertsError(
            f"alerts.urls_file: {path} is open to others (mode {mode:04o}); it holds secrets:"
            f" run chmod 600 {path}"
        )
    return text


def load_targets(
    alerts: AlertsConfig,
    path: Callable[[str], Path],
    environ: dict[str, str] | None = None,
) -> list[Target]:
    """The configured targets, in order: the environment variable's URLs, then the file's.
    ``path`` resolves ``urls_file`` (relative to the configuration file's directory)."""
    env = os.environ if environ is None else environ
    urls: list[str] = []
    if alerts.urls_env:
        value = env.get(alerts.urls_env, "")
        if not value.strip():
            raise AlertsError(
                f"alerts.urls_env: environment variable {alerts.urls_env} is not set (or empty);"
                " it holds the alert URLs, separated by spaces or newlines"
            )
        urls += split_urls(value)
    if alerts.urls_file:
        file = path(alerts.urls_file)
        found = split_urls(read_urls_file(file))
        if not found:
            raise AlertsError(f"alerts.urls_file: {file} holds no URL")
        urls += found
    return [_target(url, n) for n, url in enumerate(urls, 1)]


def _target(url: str, position: int) -> Target:
    match = _SCHEME.match(url)
    if match is None:
        raise AlertsError(
            f"alert URL #{position}: not an apprise URL (expected scheme://..., such as"
            " discord://, tgram://, mailtos://, ntfys:// or json://)"
        )
    scheme = match.group(1).lower()
    name = f"{scheme}#{position}"
    _register(url)
    if _module().Apprise.instantiate(url) is None:
        raise AlertsError(
            f"{name}: apprise does not take this URL (an unknown scheme, or a part missing or"
            " malformed: see https://github.com/caronc/apprise/wiki for its form)"
        )
    return Target(name, url, _pieces(url))


def send_alert(target: Target, alert: Alert) -> str | None:
    return target.send(alert.title, alert.body, alert.level)


__all__ = [
    "AlertsError",
    "Target",
    "load_targets",
    "read_urls_file",
    "send_alert",
    "split_urls",
]
