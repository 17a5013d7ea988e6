"""S1.2: tokens, refresh tokens, authorization codes and the client secret never reach a log, a
record or an event — only the token file (0600) holds a token. The test captures every log line
of a run (the adapter's, the engine's, and the libraries' at DEBUG) and greps it for each
secret."""

from __future__ import annotations

import logging
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from tests.brokers.tradovate.conftest import MakeTv


def test_no_secret_in_any_log_record_or_event(
    tmp_path: Path,
    make_tv: MakeTv,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    rig = make_tv(tmp_path, settings={"renew_ahead": timedelta(minutes=79)})
    rig.trade("LEAD", 1)
    rig.advance(120)  # past the renewal instant: every token is renewed once
    rig.control("expire_token", "prop")
    rig.reauthorize("prop")
    rig.control("penalize_next", "prop", 1, 0.01)
    rig.trade("LEAD", 1)
    rig.control("push_raw", "prop", "a[{not json")
    rig.settle()
    rows = rig.rows("SELECT * FROM activity") + rig.rows("SELECT * FROM orders")
    records = "\n".join(" ".join(str(v) for v in tuple(r)) for r in rows)
    out, err = capfd.readouterr()
    logs = "\n".join([caplog.text, out, err])
    secrets = rig.read(
        lambda sim: [
            *sim.auth.issued(),
            *sim.auth.codes(),
            *sim.auth.refresh_tokens(),
            sim.client_secret,
        ]
    )
    # 2 tokens, 2 renewals, a re-authorization; 3 codes; 3 refresh tokens; the secret
    assert len(secrets) >= 10
    assert len(rig.requests("auth/renewaccesstoken")) >= 2
    assert "penalty ticket" in logs and "malformed" in logs  # the run did log
    assert "code=[redacted]" in logs  # the libraries' lines were there, blanked
    for secret in secrets:
        assert secret not in logs
        assert secret not in records
    token_dir = tmp_path / "engine-0" / "tradovate"
    files = sorted(token_dir.glob("*.token"))
    assert len(files) == 2
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_dir.stat().st_mode) == 0o700
