"""Secrets the engine reads (a broker's client secret): from the environment, or from a file in
the data directory that only its owner can read. Never from the configuration file."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class SecretError(Exception):
    """A secret is missing or kept where others can read it."""


def read_secret_file(data_dir: Path, name: str) -> str:
    """A secret kept in a file of the data directory, which only its owner may read."""
    if Path(name).name != name:
        raise SecretError(f"{name}: a secret file is named relative to the data directory")
    path = data_dir / name
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SecretError(f"cannot read {path}: {error.strerror or error}") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise SecretError(
            f"{path} is readable by others (mode {stat.S_IMODE(info.st_mode):04o});"
            f" run: chmod 600 {path}"
        )
    if not text:
        raise SecretError(f"{path} is empty")
    return text


def read_secret_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise SecretError(f"environment variable {name} is not set")
    return value


__all__ = ["SecretError", "read_secret_env", "read_secret_file"]
