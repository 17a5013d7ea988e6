"""The Tradovate adapter's configuration: hosts, the app registration, and the tuning knobs.

``TradovateSettings.demo(...)`` and ``.live(...)`` fill in Tradovate's own hosts; tests and the
local server pass their 127.0.0.1 URLs instead (``brokers.tradovate.sim``). The client secret
is a :class:`~pydantic.SecretStr`: it never shows in a repr, a log or an error.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

DEMO_REST = "https://demo.tradovateapi.com/v1"
LIVE_REST = "https://live.tradovateapi.com/v1"
DEMO_WS = "wss://demo.tradovateapi.com/v1/websocket"
LIVE_WS = "wss://live.tradovateapi.com/v1/websocket"
MD_WS = "wss://md.tradovateapi.com/v1/websocket"
AUTHORIZE_PAGE = "https://trader.tradovate.com/oauth"


class TradovateSettings(BaseModel):
    """Where Tradovate is, who we are to it, and how hard we may push it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rest_url: str = DEMO_REST
    ws_url: str = DEMO_WS
    md_url: str = MD_WS
    auth_url: str = AUTHORIZE_PAGE
    # The token endpoint; by default the REST host without ``/v1`` (as Tradovate's own OAuth
    # sample posts it), falling back to the ``/v1`` form if that answers 404.
    token_url: str | None = None
    token_format: Literal["form", "json"] = "form"
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    token_dir: Path

    renew_ahead: timedelta = timedelta(minutes=15)
    request_timeout_s: float = Field(default=10.0, gt=0)
    heartbeat_s: float = Field(default=2.5, gt=0)
    dead_after_s: float = Field(default=10.0, gt=0)  # silence on a socket that means it is dead
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    rate_limit_cooldown: timedelta = timedelta(hours=1)  # after a captcha or an HTTP 429

    # The per-login request budget: a token bucket (``budget_burst`` at once, refilled at
    # ``budget_per_s``) and at most ``max_concurrent`` requests in flight. Tradovate allows about
    # 5,000 requests an hour per user; the defaults stay under it and let one fan-out of 20
    # orders leave at once, all in flight together (one round trip, not three).
    budget_burst: int = Field(default=25, ge=1)
    budget_per_s: float = Field(default=1.3, gt=0)
    max_concurrent: int = Field(default=25, ge=1)
    max_penalty_retries: int = Field(default=5, ge=0)
    # A penalty ticket asking for longer than this is not waited out by the request that met
    # it (an order sent that late would be stale): the request fails ("Throttled"), while the
    # login's budget still waits the ticket's time before anything else leaves.
    max_ticket_wait_s: float = Field(default=60.0, gt=0)
    # HTTP 423 (a lock-out is near): nothing of the login leaves for ``throttle_wait_s``, and its
    # budget runs at half its rate and burst (halved again at each further 423) for
    # ``throttle_period_s``. The request that met it is sent again once, after the wait.
    throttle_wait_s: float = Field(default=10.0, ge=0)
    throttle_period_s: float = Field(default=600.0, gt=0)

    # Per-host budgets for the endpoints Tradovate limits per IP address, shared by every login
    # of this process and counting successful requests only: ``user/syncrequest`` and
    # ``auth/renewaccesstoken``. A token bucket each: ``*_burst`` at once, refilled at
    # ``*_per_hour``.
    host_sync_burst: int = Field(default=30, ge=1)
    host_sync_per_hour: float = Field(default=600.0, gt=0)
    host_renewal_burst: int = Field(default=10, ge=1)
    host_renewal_per_hour: float = Field(default=120.0, gt=0)
    # Token renewals of the logins of this process are at least this far apart on the engine
    # clock (each moved later within the first half of its ``renew_ahead`` window), so 20
    # logins authorized together do not renew in the same minute.
    renewal_spacing: timedelta = timedelta(seconds=20)

    # A quote subscription the broker refuses (not entitled, an error, a captcha) is asked
    # again after ``quote_retry_initial_s``, doubling up to ``quote_retry_max_s``.
    quote_retry_initial_s: float = Field(default=1.0, gt=0)
    quote_retry_max_s: float = Field(default=300.0, gt=0)

    # Contracts to take quotes for even when nothing is held in them.
    quote_symbols: tuple[str, ...] = ()
    # Run token renewals and rate-limit cooldowns on their own (live). The replay harness turns
    # it off and calls ``TradovateBroker.run_due`` as it moves its virtual clock.
    autonomous_timers: bool = True

    @classmethod
    def demo(cls, client_id: str, client_secret: str, token_dir: Path) -> TradovateSettings:
        return cls(client_id=client_id, client_secret=SecretStr(client_secret), token_dir=token_dir)

    @classmethod
    def live(cls, client_id: str, client_secret: str, token_dir: Path) -> TradovateSettings:
        return cls(
            rest_url=LIVE_REST,
            ws_url=LIVE_WS,
            client_id=client_id,
            client_secret=SecretStr(client_secret),
            token_dir=token_dir,
        )

    def token_urls(self) -> tuple[str, ...]:
        """Where to exchange a code, in the order to try."""
        if self.token_url is not None:
            return (self.token_url,)
        rest = self.rest_url.rstrip("/")
        parts = urlsplit(rest)
        path = parts.path
        bare = path[: -len("/v1")] if path.endswith("/v1") else path
        host_only = urlunsplit((parts.scheme, parts.netloc, f"{bare}/auth/oauthtoken", "", ""))
        return (host_only, f"{rest}/auth/oauthtoken")
