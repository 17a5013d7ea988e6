"""``[alerts]``: where the trader's alerts go and which ones (S10.4).

The targets are apprise URLs (``discord://…``, ``tgram://…``, ``mailtos://…``, ``ntfys://…``,
``json://…``), and a URL holds the target's secret (a webhook token, a bot token, a password):
they are never in the configuration file. ``urls_env`` names an environment variable holding
them, ``urls_file`` a file only its owner can read (mode 0600); this table says only where they
are, which kinds and levels go out, and how fast::

    [alerts]
    urls_file = "/etc/mimik/alerts.urls"   # or urls_env = "MIMIK_ALERT_URLS" (or both)
    kinds = ["breach", "lock", "flatten_failed", "drift", "missed_copy",
             "max_contracts_exceeded", "stale_prices", "supervisor_hold", "connection_down"]
    min_level = "warning"                  # info | warning | error
    rate = 6                               # messages a minute per target, the rest summed up
    connection_down_seconds = 60           # a connection away this long is an alert
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from engine.app.config_errors import SECRET_INPUT
from engine.app.config_setup import Section
from engine.domain.activity import Level
from engine.domain.alerting import ALERT_KINDS, DEFAULT_KINDS, AlertFilter, kinds_unknown

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ALLOWED_KEYS = ("urls_env", "urls_file", "kinds", "min_level", "rate", "connection_down_seconds")


class AlertsConfig(Section):
    urls_env: str = ""
    urls_file: str = ""
    kinds: tuple[str, ...] = DEFAULT_KINDS
    min_level: Literal["info", "warning", "error"] = "warning"
    rate: int = Field(default=6, ge=1, le=600)
    connection_down_seconds: float = Field(default=60.0, gt=0, le=86400)

    @model_validator(mode="before")
    @classmethod
    def _no_urls_here(cls, raw: Any) -> Any:
        """A key that would hold the URLs themselves gets an error saying where they go; its
        value (a secret) is never quoted."""
        if isinstance(raw, dict):
            for key in raw:
                if isinstance(key, str) and key not in ALLOWED_KEYS and "url" in key.lower():
                    raise PydanticCustomError(
                        SECRET_INPUT,
                        "{key}: alert URLs hold their target's secret and are never read from"
                        " the config file; put them in a 0600 file named by urls_file, or an"
                        " environment variable named by urls_env",
                        {"key": key},
                    )
        return raw

    @field_validator("urls_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if value and not ENV_NAME.fullmatch(value):
            raise PydanticCustomError(
                SECRET_INPUT,
                "expected the name of an environment variable (letters, digits, '_'), such as"
                ' "MIMIK_ALERT_URLS" - the URLs themselves go in that variable',
            )
        return value

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = kinds_unknown(value)
        if unknown:
            raise PydanticCustomError(
                "alert_kind",
                "unknown kind {unknown}; expected some of: {known}",
                {"unknown": ", ".join(repr(k) for k in unknown), "known": ", ".join(ALERT_KINDS)},
            )
        return tuple(dict.fromkeys(value))

    @property
    def enabled(self) -> bool:
        """Whether any target is configured (no key: no alerts, and nothing is started)."""
        return bool(self.urls_env or self.urls_file)

    def filter(self) -> AlertFilter:
        return AlertFilter(frozenset(self.kinds), Level(self.min_level))


__all__ = ["AlertsConfig"]
