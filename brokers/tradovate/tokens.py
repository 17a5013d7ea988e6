"""Access tokens and where they are kept: one file per connection, mode 0600, in the data dir.

A token file holds the access token, its expiry and, when the code exchange gave one, the
``refresh_token`` beside it. A :class:`Token` never shows either value in a repr. The file is
replaced atomically (a temporary file created 0600 beside it, then ``os.replace``), so a crash
leaves the old token or the new one. Nothing here logs.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

FILE_MODE = 0o600
DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class Token:
    value: str = field(repr=False)
    expires_at: datetime
    refresh_token: str | None = field(default=None, repr=False)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class TokenStoreError(Exception):
    """A token file that cannot be read or written (the message names the file, not the token)."""


class TokenStore:
    """Tokens by connection id, in ``directory`` (created 0700 if missing)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    def path(self, connection: str) -> Path:
        return self.directory / f"tradovate-{quote(connection, safe='')}.token"

    def load(self, connection: str) -> Token | None:
        path = self.path(connection)
        with self._lock:
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return None
            except OSError as error:
                raise TokenStoreError(f"cannot read {path}: {error.strerror}") from None
        try:
            data = json.loads(text)
            refresh = data.get("refresh_token")
            return Token(
                str(data["access_token"]),
                datetime.fromisoformat(data["expires_at"]),
                refresh if isinstance(refresh, str) and refresh else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise TokenStoreError(f"{path} is not a token file") from None

    def save(self, connection: str, token: Token) -> None:
        path = self.path(connection)
        fields = {"access_token": token.value, "expires_at": token.expires_at.isoformat()}
        if token.refresh_token is not None:
            fields["refresh_token"] = token.refresh_token
        text = json.dumps(fields)
        with self._lock:
            self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.tmp")
            try:
                fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
                try:
                    os.fchmod(fd, FILE_MODE)
                    os.write(fd, text.encode())
                finally:
                    os.close(fd)
                os.replace(temporary, path)
            except OSError as error:
                raise TokenStoreError(f"cannot write {path}: {error.strerror}") from None

    def delete(self, connection: str) -> None:
        with self._lock:
            self.path(connection).unlink(missing_ok=True)
