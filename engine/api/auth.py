"""The API's bearer token: generated on first start into the data directory, mode 0600.

Every request to the API carries ``Authorization: Bearer <token>``; the token is compared in
constant time. Three kinds of path need none: the Cockpit page's own files (HTML, JS, CSS —
no data in them; the page asks for the token), and the OAuth callback, which the broker's page
sends the browser to and which is guarded by its single-use ``state`` (S1.2) instead.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from engine.app.logs import SECRETS

TOKEN_FILE = "api.token"
PUBLIC_PATHS = frozenset({"/", "/index.html", "/favicon.ico", "/oauth/callback", "/healthz"})
PUBLIC_PREFIXES = ("/static/",)


class TokenError(Exception):
    """The token file cannot be used; the message says which file and what to do."""


def load_or_create_token(data_dir: Path) -> tuple[str, bool]:
    """The API token and whether it was created just now (to be shown once)."""
    path = data_dir / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        token = _read(path)
        SECRETS.add(token)
        return token, False
    except OSError as error:
        raise TokenError(f"cannot create {path}: {error.strerror or error}") from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    SECRETS.add(token)
    return token, True


def _read(path: Path) -> str:
    try:
        info = path.stat()
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise TokenError(f"cannot read {path}: {error}") from None
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise TokenError(f"{path} is readable by others (mode {mode:04o}); run: chmod 600 {path}")
    if len(token) < 16:
        raise TokenError(f"{path} holds no usable token (delete it to have a new one made)")
    return token


def bearer_ok(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


__all__ = ["TOKEN_FILE", "TokenError", "bearer_ok", "is_public", "load_or_create_token"]
