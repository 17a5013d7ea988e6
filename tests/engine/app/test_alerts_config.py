"""``[alerts]`` (S10.4): where the targets' URLs are (never in the file), which kinds and levels
go out and how fast, each mistake one line naming the key; and the targets read from the
environment or a 0600 file of this user's, named by scheme and place, with no error that
quotes a URL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.app.alert_targets import AlertsError, load_targets, split_urls
from engine.app.alerts_config import AlertsConfig
from engine.app.config import ConfigError, load_config, parse_config
from engine.domain.activity import Level
from engine.domain.alerting import DEFAULT_KINDS, LEVEL_RANK

SECRET = "tok3nThatMustNotShow"


def _errors(raw: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "engine.toml")
    return caught.value.errors


def test_no_alerts_table_means_no_alerts() -> None:
    alerts = parse_config({}, "engine.toml").alerts
    assert not alerts.enabled
    assert alerts.kinds == DEFAULT_KINDS


def test_the_defaults_deliver_every_default_kind_as_the_engine_writes_it() -> None:
    """S10.4's defaults: the kinds it names, and a min_level each of them passes — every one
    is written at warning or error (a manual lock, a breach, a drift, stale prices ...)."""
    alerts = parse_config({"alerts": {"urls_env": "ALERTS"}}, "engine.toml").alerts
    assert set(alerts.kinds) == {
        "breach",
        "lock",
        "flatten_failed",
        "drift",
        "missed_copy",
        "max_contracts_exceeded",
        "stale_prices",
        "supervisor_hold",
        "connection_down",
    }
    assert alerts.min_level == "warning"
    assert LEVEL_RANK[Level.WARNING] <= LEVEL_RANK[Level(alerts.min_level)]
    assert alerts.rate == 6
    assert alerts.connection_down_seconds == 60


def test_every_key_is_read(tmp_path: Path) -> None:
    config = tmp_path / "engine.toml"
    config.write_text(
        "[alerts]\n"
        'urls_env = "MIMIK_ALERT_URLS"\n'
        'urls_file = "secrets/alerts.urls"\n'
        'kinds = ["drift", "connection_down", "drift"]\n'
        'min_level = "error"\n'
        "rate = 2\n"
        "connection_down_seconds = 120\n"
    )
    alerts = load_config(config).alerts
    assert alerts.enabled
    assert alerts.kinds == ("drift", "connection_down")
    assert alerts.filter().min_level is Level.ERROR
    assert (alerts.rate, alerts.connection_down_seconds) == (2, 120)
    assert load_config(config).path(alerts.urls_file) == tmp_path / "secrets" / "alerts.urls"


def test_an_unknown_kind_is_a_clear_error() -> None:
    (line,) = _errors({"alerts": {"urls_env": "A", "kinds": ["drift", "drfit"]}})
    assert line.startswith("alerts.kinds: unknown kind 'drfit'; expected some of: copy, skip,")
    assert "supervisor_hold, connection_down" in line


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"min_level": "debug"}, "alerts.min_level: expected 'info', 'warning' or 'error'"),
        ({"rate": 0}, "alerts.rate: expected a value greater than or equal to 1"),
        ({"connection_down_seconds": 0}, "alerts.connection_down_seconds: expected a value"),
        ({"sound": "loud"}, "alerts.sound: unknown key; expected one of: urls_env, urls_file"),
    ],
)
def test_a_bad_value_names_its_key(keys: dict[str, object], expected: str) -> None:
    (line,) = _errors({"alerts": {"urls_env": "A", **keys}})
    assert line.startswith(expected), line


@pytest.mark.parametrize("key", ["urls", "url", "webhook_url"])
def test_urls_in_the_file_are_refused_without_quoting_them(key: str) -> None:
    url = f"discord://1234/{SECRET}"
    (line,) = _errors({"alerts": {key: [url] if key == "urls" else url}})
    assert f"{key}: alert URLs hold their target's secret" in line
    assert "urls_file" in line and "urls_env" in line
    assert SECRET not in line


def test_urls_env_is_a_variable_name_not_a_url() -> None:
    (line,) = _errors({"alerts": {"urls_env": f"tgram://{SECRET}/42"}})
    assert line.startswith("alerts.urls_env: expected the name of an environment variable")
    assert SECRET not in line


# --- the targets ---------------------------------------------------------------------------------


def _secure(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_targets_come_from_the_variable_then_the_file_named_by_scheme_and_place(
    tmp_path: Path,
) -> None:
    _secure(
        tmp_path / "alerts.urls",
        f"# the trader's phone\ntgram://123456789:{SECRET}/42\n\nntfys://ntfy.sh/my-topic\n",
    )
    alerts = AlertsConfig(urls_env="ALERTS", urls_file="alerts.urls")
    env = {"ALERTS": f"json://127.0.0.1:9/hook  discord://1234/{SECRET}"}
    targets = load_targets(alerts, lambda p: tmp_path / p, env)
    assert [t.name for t in targets] == ["json#1", "discord#2", "tgram#3", "ntfys#4"]
    assert all(SECRET not in repr(t) for t in targets)


def test_split_urls_takes_spaces_newlines_and_comments() -> None:
    assert split_urls("a://1 b://2\n# c://3\n\n  d://4  \n") == ["a://1", "b://2", "d://4"]


def test_an_unset_variable_is_a_clear_error() -> None:
    with pytest.raises(AlertsError, match=r"^alerts.urls_env: environment variable ALERTS is not"):
        load_targets(AlertsConfig(urls_env="ALERTS"), Path, {})


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AlertsError, match=r"alerts.urls_file: .*alerts.urls does not exist"):
        load_targets(AlertsConfig(urls_file="alerts.urls"), lambda p: tmp_path / p, {})


def test_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    file = _secure(tmp_path / "alerts.urls", f"discord://1234/{SECRET}\n")
    file.chmod(0o644)
    with pytest.raises(AlertsError) as caught:
        load_targets(AlertsConfig(urls_file=str(file)), Path, {})
    message = str(caught.value)
    assert message == (
        f"alerts.urls_file: {file} is open to others (mode 0644); it holds secrets:"
        f" run chmod 600 {file}"
    )


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_a_file_of_another_user_is_refused(tmp_path: Path) -> None:
    file = _secure(tmp_path / "alerts.urls", f"discord://1234/{SECRET}\n")
    os.chown(file, 4242, -1)
    with pytest.raises(AlertsError, match="belongs to another user"):
        load_targets(AlertsConfig(urls_file=str(file)), Path, {})


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    file = _secure(tmp_path / "alerts.urls", "# nothing yet\n")
    with pytest.raises(AlertsError, match="holds no URL"):
        load_targets(AlertsConfig(urls_file=str(file)), Path, {})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (SECRET, "alert URL #1: not an apprise URL (expected scheme://"),
        (f"nosuchservice://{SECRET}", "nosuchservice#1: apprise does not take this URL"),
    ],
)
def test_a_url_apprise_cannot_use_is_refused_without_quoting_it(url: str, expected: str) -> None:
    with pytest.raises(AlertsError) as caught:
        load_targets(AlertsConfig(urls_env="ALERTS"), Path, {"ALERTS": url})
    assert str(caught.value).startswith(expected)
    assert SECRET not in str(caught.value)


def test_a_target_scrubs_its_url_from_a_reason() -> None:
    alerts = AlertsConfig(urls_env="ALERTS")
    (target,) = load_targets(alerts, Path, {"ALERTS": f"json://hooks.example.com/x/{SECRET}"})
    text = target.scrub(f"could not reach json://hooks.example.com/x/{SECRET} ({SECRET})")
    assert SECRET not in text
