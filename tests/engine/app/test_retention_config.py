"""The retention keys of the configuration (decision 0013): ``[journal]``, ``[records]`` and the
log file's rotation, with their defaults and one line per wrong value."""

from __future__ import annotations

import tomllib

import pytest

from engine.app.config import ConfigError, parse_config


def test_defaults_keep_two_weeks_of_journal_and_every_record() -> None:
    config = parse_config({}, "engine.toml")
    assert (config.journal.segment_mb, config.journal.retention_days, config.journal.max_mb) == (
        64,
        14,
        1024,
    )
    assert config.records.activity_retention_days == 0
    assert config.records.ledger_retention_days == 0
    assert (config.log.max_mb, config.log.keep) == (64, 5)


def test_every_retention_key() -> None:
    raw = tomllib.loads(
        """
        [log]
        max_mb = 0
        keep = 3
        [journal]
        segment_mb = 8
        retention_days = 0
        max_mb = 0
        [records]
        activity_retention_days = 90
        ledger_retention_days = 365.5
        """
    )
    config = parse_config(raw, "engine.toml")
    assert (config.log.max_mb, config.log.keep) == (0, 3)
    assert (config.journal.segment_mb, config.journal.retention_days, config.journal.max_mb) == (
        8,
        0,
        0,
    )
    assert config.records.activity_retention_days == 90
    assert config.records.ledger_retention_days == 365.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[journal]\nsegment_mb = 0",
            "journal.segment_mb: expected a value greater than or equal to 1",
        ),
        (
            "[journal]\nretention_days = -1",
            "journal.retention_days: expected a value greater than or equal to 0",
        ),
        ("[journal]\nkeep = 3", "journal.keep"),
        ("[records]\nactivity_retention_days = 'x'", "records.activity_retention_days"),
        ("[log]\nkeep = 0", "log.keep: expected a value greater than or equal to 1"),
    ],
)
def test_a_wrong_value_is_one_line_naming_its_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(tomllib.loads(text), "engine.toml")
    assert len(raised.value.errors) == 1
    assert message in str(raised.value)
