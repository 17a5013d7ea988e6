"""Secrets the engine reads: from the environment, or a file in the data directory that only
its owner can read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.app.secret_files import SecretError, read_secret_env, read_secret_file


def test_secrets_come_from_a_0600_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "tv.secret"
    secret.write_text("s3cr3t-value\n")
    secret.chmod(0o644)
    with pytest.raises(SecretError, match="readable by others"):
        read_secret_file(tmp_path, "tv.secret")
    secret.chmod(0o600)
    assert read_secret_file(tmp_path, "tv.secret") == "s3cr3t-value"
    with pytest.raises(SecretError, match="relative to the data directory"):
        read_secret_file(tmp_path, "../tv.secret")
    monkeypatch.delenv("TEST_SECRET", raising=False)
    with pytest.raises(SecretError, match="TEST_SECRET is not set"):
        read_secret_env("TEST_SECRET")
    monkeypatch.setenv("TEST_SECRET", " value ")
    assert read_secret_env("TEST_SECRET") == "value"
    assert os.environ["TEST_SECRET"]
