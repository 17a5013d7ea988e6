"""The engine's configuration: one TOML file, validated by pydantic, every error naming its key.

``python -m engine run`` works with no file at all: the defaults are the demo (paper broker,
simulated market, demo setup, API on 127.0.0.1:8765, data in ``./data``). A file changes what it
names and nothing else. Relative paths in a file are relative to the file's directory.

Secrets are never read from this file: a broker's client secret comes from an environment
variable or from a file in the data directory readable by its owner only (mode 0600). There is
no password anywhere — a connection is authorized on the broker's own OAuth page (S1.2).

The example below is the whole schema; ``docs/operations.md`` explains each key::

    data_dir = "data"

    [api]
    host = "127.0.0.1"
    port = 8765
    public_url = ""          # the URL a browser reaches the engine at (OAuth redirects)
    max_body_bytes = 65536
    tls_cert = ""            # PEM certificate chain and key: the API over https
    tls_key = ""
    insecure_http = false    # plain http on an address other than loopback, knowingly

    [log]
    terminal = "auto"        # auto | console | json
    level = "info"
    file = "engine.log"      # JSON lines, in the data directory
    max_mb = 64              # rotated past this size (0: never, leave it to logrotate)
    keep = 5                 # rotated files kept: engine.log.1 (newest) ... engine.log.5

    [engine]
    threads = 1
    max_copy_age_seconds = 10
    mirror_grace_seconds = 2 # how long a follower's mirror may fill after its leader (S8.4)
    drift_grace_seconds = 5  # how long a follower may differ from its leader (S10.1)
    drift_check_seconds = 10 # how often every follower's drift is checked (S10.1)
    copy_fill_timeout_seconds = 5    # an order unanswered this long is a missed copy (S10.3)
    stale_prices_after_seconds = 30  # an open position without prices this long (S10.3)
    settle_seconds = 1.5     # how long a stop waits for answers to orders already sent
    durability_timeout_seconds = 60

    [journal]                # every event, for replay --journal (decision 0013)
    segment_mb = 64          # a new segment past this size, and at each UTC day
    retention_days = 14      # whole segments older than this are deleted (0: kept)
    max_mb = 1024            # and the oldest while the journal is larger (0: no cap)

    [records]                # in the store; 0 keeps them for ever
    activity_retention_days = 0
    ledger_retention_days = 0   # answered orders only

    [alerts]                 # S10.4: apprise URLs, never in this file (0600 file or env)
    urls_file = "alerts.urls"
    min_level = "warning"    # kinds = [...], rate = 6, connection_down_seconds = 60

    [broker]
    kind = "paper"           # paper | tradovate | tradovate-sim (or: run --tradovate-sim)

    [demo]
    setup = true             # seed the demo setup into an empty store
    market = true            # simulated prices (paper broker or local Tradovate server)
    leader = "DEMO-LEAD"     # the account whose trades are simulated ("" for none)

    [[connections]]          # seed an empty store with your own setup instead of the demo
    id = "prop"

    [profiles.eval-50k]      # named risk profiles (S9.7): any key an account's limits take
    max_loss = 2000
    max_loss_mode = "eod_trailing"
    commissions = { ES = 2.10, MES = 0.60 }

    [[accounts]]
    id = "F1"
    connection = "prop"
    profile = "eval-50k"     # its own limits override the profile's, key by key
    limits = { daily_loss_limit = "1000", max_contracts = 2, flatten_at = "15:10" }

    [[blackout]]             # engine-wide intervals without opening orders (S9.5)
    start = 2026-11-25T07:29:00-06:00
    end = 2026-11-25T07:45:00-06:00
    label = "CPI"

    [[groups]]
    id = "main"
    leader = "LEAD"
    followers = [            # copy = "fills" (the default) or "orders" (S8.1)
        { account = "F1", ratio = "1", max_qty = 4, symbol_map = { ES = "MES" }, copy = "orders" },
    ]
    on_drift = "alert"       # or "reduce": a drifting follower is reduced flatten-only (S10.2)
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from engine.app.alerts_config import AlertsConfig
from engine.app.config_errors import (
    SECRET_INPUT,
    format_errors,
    key_name,
    one_line,
    unknown_key,
)
from engine.app.config_setup import (
    AccountSeed,
    BlackoutSeed,
    ConnectionSeed,
    FollowerSeed,
    GroupSeed,
    Section,
    check_profiles,
    check_symbol_map,
    risk_keys,
    setup_problems,
)
from engine.domain.risk_profile import RiskValue
from engine.domain.sessions import Blackout
from engine.domain.setup import ID_FORM, ID_PATTERN
from engine.domain.watching import WatchSettings

DEFAULT_PORT = 8765
# A key naming a secret is refused wherever it is (``token``, ``client_secret``, ``password``),
# unless it is a URL or says where a secret lives (``token_url``, ``client_secret_env``).
SECRET_WORDS = re.compile(
    r"password|passwd|passphrase|secret|token|api_?key|private_?key|credential", re.IGNORECASE
)
SECRET_PLACES = re.compile(r"[_-](?:url|env|file)$", re.IGNORECASE)
TRADOVATE_SIM = "tradovate-sim"
DEMO_BROKERS = ("paper", TRADOVATE_SIM)  # where the demo setup, market and leader can run


class ConfigError(Exception):
    """The configuration cannot be used; ``errors`` holds one line per problem."""

    def __init__(self, source: str, errors: Sequence[str]) -> None:
        self.source = source
        self.errors = [one_line(e) for e in errors]
        super().__init__("\n".join(f"{source}: {e}" for e in self.errors))


class ApiConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    public_url: str = ""
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # A host other than loopback needs TLS, or insecure_http (engine/app/listening.py).
    tls_cert: str = ""
    tls_key: str = ""
    insecure_http: bool = False

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", value):
            raise PydanticCustomError(
                "url", 'expected an http(s) URL such as "https://engine.example.com"'
            )
        return value.rstrip("/")


class LogConfig(Section):
    terminal: Literal["auto", "console", "json"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"
    file: str = "engine.log"
    max_mb: int = Field(default=64, ge=0, le=1024 * 1024)  # 0: never rotated by the engine
    keep: int = Field(default=5, ge=1, le=1000)

    @field_validator("file")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if value and (Path(value).name != value or value in (".", "..")):
            raise PydanticCustomError(
                "file_name", "expected a file name in the data directory (no '/'), or \"\""
            )
        return value


class EngineTuning(Section):
    threads: int = Field(default=1, ge=0, le=64)
    max_copy_age_seconds: float = Field(default=10.0, gt=0, le=3600)
    # S8.4: how long what a leader fill leaves owed is left to the follower's mirror still
    # working for it, before the mirror is cancelled and the rest sent at market.
    mirror_grace_seconds: float = Field(default=2.0, ge=0, le=300)
    # S10.1 and S10.3: how closely every follower is watched.
    drift_grace_seconds: float = Field(default=5.0, ge=0, le=3600)
    drift_check_seconds: float = Field(default=10.0, gt=0, le=3600)
    copy_fill_timeout_seconds: float = Field(default=5.0, gt=0, le=3600)
    stale_prices_after_seconds: float = Field(default=30.0, gt=0, le=86400)

    def watch(self) -> WatchSettings:
        return WatchSettings(
            timedelta(seconds=self.drift_grace_seconds),
            timedelta(seconds=self.drift_check_seconds),
            timedelta(seconds=self.copy_fill_timeout_seconds),
            timedelta(seconds=self.stale_prices_after_seconds),
        )

    # How long a stop waits for answers to the orders already sent; the rest are recorded as
    # unknown, for the next start to ask the broker about (S2.6).
    settle_seconds: float = Field(default=1.5, ge=0, le=300)
    # How long the engine may go on without making its state durable (a full disk, an I/O
    # error) before it exits for its service manager to restart it (decision 0014).
    durability_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)


class JournalConfig(Section):
    """The journal's segments and how long they are kept (decision 0013); 0: no limit."""

    segment_mb: int = Field(default=64, ge=1, le=1024 * 1024)
    retention_days: float = Field(default=14.0, ge=0, le=36500)
    max_mb: int = Field(default=1024, ge=0, le=1024 * 1024 * 1024)


class RecordsConfig(Section):
    """How long activity entries and answered orders stay in the store; 0: for ever."""

    activity_retention_days: float = Field(default=0.0, ge=0, le=36500)
    ledger_retention_days: float = Field(default=0.0, ge=0, le=36500)


class PaperBrokerConfig(Section):
    kind: Literal["paper"] = "paper"
    state_file: str = ""


HOST_KEYS = ("rest_url", "ws_url", "md_url", "auth_url", "token_url")
SOCKET_KEYS = ("ws_url", "md_url")
_NO_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")
_USERINFO = re.compile(r"^[^:/?#]*://[^/?#]*@")


def check_host_url(value: str, key: str) -> str:
    """``value`` as the host URL ``key`` of ``[broker]``: https (wss for the sockets) anywhere,
    plain http (ws) only on a loopback address, where nothing leaves the machine."""
    secure, plain = ("wss", "ws") if key in SOCKET_KEYS else ("https", "http")
    article = "an" if secure == "https" else "a"
    expected = f"expected {article} {secure}:// URL, or {plain}:// on a loopback address"
    if _USERINFO.match(value):  # checked first: the message must not quote a password
        raise PydanticCustomError(
            SECRET_INPUT,
            "expected a URL without a user name or password (secrets and passwords are never"
            " read from the config file)",
        )
    if _NO_SPACE.search(value) or not value.startswith((f"{secure}://", f"{plain}://")):
        raise PydanticCustomError("host_url", expected)
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port
    except ValueError:  # a port out of range, an unclosed '['
        raise PydanticCustomError("host_url", "expected a URL with a valid host and port") from None
    if not host or (parts.scheme == plain and not _is_loopback(host)):
        raise PydanticCustomError("host_url", expected)
    if "#" in value:
        raise PydanticCustomError("host_url", "expected a URL without a '#' fragment")
    if key == "rest_url" and "?" in value:
        raise PydanticCustomError(
            "host_url", "expected a URL without a '?' query (the REST paths are appended to it)"
        )
    return value


PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
PositiveCount = Annotated[int, Field(ge=1, le=1_000_000)]


class TradovateBudgets(Section):
    """How hard the engine may push Tradovate (``[broker.budgets]``); a key left out keeps the
    adapter's default (``docs/tradovate.md`` lists them). Per login: a token bucket of
    ``login_burst`` requests refilled at ``login_per_s`` with at most ``max_concurrent`` in
    flight. Per host (shared by every login of this engine, for the endpoints Tradovate limits
    per IP address): ``host_sync_*`` for ``user/syncrequest``, ``host_renewal_*`` for
    ``auth/renewaccesstoken``. The rest are waits, in seconds."""

    login_burst: PositiveCount | None = None
    login_per_s: PositiveFloat | None = None
    max_concurrent: PositiveCount | None = None
    host_sync_burst: PositiveCount | None = None
    host_sync_per_hour: PositiveFloat | None = None
    host_renewal_burst: PositiveCount | None = None
    host_renewal_per_hour: PositiveFloat | None = None
    renewal_spacing_s: PositiveFloat | None = None
    max_ticket_wait_s: PositiveFloat | None = None
    throttle_wait_s: PositiveFloat | None = None
    throttle_period_s: PositiveFloat | None = None
    rate_limit_cooldown_s: PositiveFloat | None = None
    quote_retry_initial_s: PositiveFloat | None = None
    quote_retry_max_s: PositiveFloat | None = None

    def settings(self) -> dict[str, object]:
        """The keys set, as the adapter's ``TradovateSettings`` fields."""
        renamed = {
            "login_burst": "budget_burst",
            "login_per_s": "budget_per_s",
            "renewal_spacing_s": "renewal_spacing",
            "rate_limit_cooldown_s": "rate_limit_cooldown",
        }
        durations = {"renewal_spacing", "rate_limit_cooldown"}
        out: dict[str, object] = {}
        for key, value in self.model_dump(exclude_none=True).items():
            field = renamed.get(key, key)
            out[field] = timedelta(seconds=value) if field in durations else value
        return out


class TradovateConfig(Section):
    """Tradovate's real API; the client id and secret are read from the environment (or the
    secret from a 0600 file in the data directory) when the engine starts."""

    kind: Literal["tradovate"]
    environment: Literal["demo", "live"] = "demo"
    client_id_env: str = "TRADOVATE_CLIENT_ID"
    client_secret_env: str = "TRADOVATE_CLIENT_SECRET"
    client_secret_file: str = ""
    # Another Tradovate-compatible server than the environment's (a partner sandbox, a
    # conformance server); "" keeps the environment's own host.
    rest_url: str = ""
    ws_url: str = ""
    md_url: str = ""
    auth_url: str = ""
    token_url: str = ""
    budgets: TradovateBudgets = TradovateBudgets()

    @field_validator(*HOST_KEYS)
    @classmethod
    def _host(cls, value: str, info: ValidationInfo) -> str:
        return check_host_url(value, str(info.field_name)) if value else value

    @property
    def hosts(self) -> dict[str, str]:
        """The overridden hosts, by their ``TradovateSettings`` field (the same names)."""
        return {key: url for key in HOST_KEYS if (url := getattr(self, key))}


class TradovateSimConfig(Section):
    """The local Tradovate-compatible server the project ships for tests and demos, started by
    the engine in its own process. Loopback only: its authorize page signs in whoever asks."""

    kind: Literal["tradovate-sim"]
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)

    @field_validator("host")
    @classmethod
    def _loopback(cls, value: str) -> str:
        if not _is_loopback(value):
            raise PydanticCustomError(
                "loopback",
                'expected a loopback address ("127.0.0.1", "::1" or "localhost"): the local'
                " Tradovate server signs in whoever reaches it, so it serves this machine only",
            )
        return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


BrokerConfig = Annotated[
    PaperBrokerConfig | TradovateConfig | TradovateSimConfig, Field(discriminator="kind")
]


class DemoConfig(Section):
    setup: bool | None = None  # default: on when no [[connections]] are given
    market: bool | None = None  # default: on with the paper broker
    leader: str | None = None  # default: the demo leader when the demo setup is on
    seed: int | None = None
    leader_interval_seconds: tuple[float, float] = (3.0, 8.0)

    @field_validator("leader_interval_seconds")
    @classmethod
    def _interval(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not (0 < low <= high <= 3600):
            raise PydanticCustomError(
                "interval", "expected [low, high] seconds with 0 < low <= high <= 3600"
            )
        return value


class Config(Section):
    data_dir: str = "data"
    api: ApiConfig = ApiConfig()
    log: LogConfig = LogConfig()
    engine: EngineTuning = EngineTuning()
    journal: JournalConfig = JournalConfig()
    records: RecordsConfig = RecordsConfig()
    alerts: AlertsConfig = AlertsConfig()
    broker: BrokerConfig = PaperBrokerConfig()
    demo: DemoConfig = DemoConfig()
    connections: list[ConnectionSeed] = Field(default_factory=list)
    accounts: list[AccountSeed] = Field(default_factory=list)
    groups: list[GroupSeed] = Field(default_factory=list)
    # Named risk profiles (S9.7): [profiles.NAME] tables of risk keys.
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)
    blackout: list[BlackoutSeed] = Field(default_factory=list)  # [[blackout]] (S9.5)
    # Where relative paths are taken from (the file's directory); not a key of the file.
    base_dir: Path = Field(default=Path(), exclude=True)

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return check_profiles(value)

    @property
    def profile_keys(self) -> dict[str, dict[str, RiskValue]]:
        """The named profiles' keys, as the engine keeps them."""
        return {name: dict(keys) for name, keys in self.profiles.items()}

    @property
    def blackouts(self) -> list[Blackout]:
        """The [[blackout]] intervals, by start."""
        return sorted(b.blackout() for b in self.blackout)

    def problems(self) -> list[str]:
        """What is wrong across keys (pydantic checks each key by itself)."""
        demo_broker = self.broker.kind in DEMO_BROKERS
        demo = self.demo
        problems: list[str] = []
        if bool(self.api.tls_cert) != bool(self.api.tls_key):
            given, missing = (
                ("tls_cert", "tls_key") if self.api.tls_cert else ("tls_key", "tls_cert")
            )
            problems.append(
                f"api.{missing}: expected a file with api.{given} (the certificate and its key:"
                " both, or neither)"
            )
        if demo.setup and self.connections:
            problems.append(
                "demo.setup: expected false when [[connections]] describe the setup"
                " (both would seed the store; choose one)"
            )
        for key, value in (("setup", demo.setup), ("market", demo.market), ("leader", demo.leader)):
            if value and not demo_broker:
                problems.append(
                    f'demo.{key}: needs broker.kind = "paper" or "{TRADOVATE_SIM}" (it is'
                    f' "{self.broker.kind}"); set it to false or ""'
                )
        problems += setup_problems(
            self.connections,
            self.accounts,
            self.groups,
            self.profiles,
            self.blackout,
            self.broker.kind,
        )
        return problems

    # -- what the defaults come to ----------------------------------------------------------------

    @property
    def demo_setup(self) -> bool:
        if self.demo.setup is not None:
            return self.demo.setup
        return self.broker.kind in DEMO_BROKERS and not self.connections

    @property
    def demo_market(self) -> bool:
        if self.demo.market is not None:
            return self.demo.market
        return self.broker.kind in DEMO_BROKERS

    def demo_leader(self, default: str) -> str:
        if self.demo.leader is not None:
            return self.demo.leader
        return default if self.demo_setup else ""

    def path(self, value: str) -> Path:
        """A path of the file, relative to the file's directory."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def data_path(self) -> Path:
        return self.path(self.data_dir)


# --- loading --------------------------------------------------------------------------------


def load_config(path: Path | None, *, broker: str | None = None) -> Config:
    """The configuration in ``path`` (or the defaults); raises :class:`ConfigError`.

    ``broker`` is a ``broker.kind`` given on the command line (``run --tradovate-sim``): it
    replaces the file's ``[broker]``, keeping its keys when the kind is the same."""
    if path is None:
        return parse_config({}, "(command line)", broker=broker) if broker else Config()
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["no such file"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(source, [f"cannot read it: {error}"]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(source, [f"not valid TOML: {error}"]) from None
    return parse_config(raw, source, base_dir=path.resolve().parent, broker=broker)


def parse_config(
    raw: Mapping[str, Any],
    source: str,
    *,
    base_dir: Path = Path(),
    broker: str | None = None,
) -> Config:
    if broker is not None:
        given = raw.get("broker")
        kept = given if isinstance(given, Mapping) and given.get("kind") == broker else {}
        raw = {**raw, "broker": {**kept, "kind": broker}}
    secrets = list(_secret_keys(raw, ""))
    if secrets:
        raise ConfigError(
            source,
            [
                f"{key}: secrets and passwords are never read from the config file; a broker"
                " secret comes from an environment variable or a 0600 file in the data"
                " directory (see broker.client_secret_env)"
                for key in secrets
            ],
        )
    if "base_dir" in raw:
        raise ConfigError(source, [f"base_dir: {unknown_key(Config)}"])
    try:
        config = Config.model_validate({**raw, "base_dir": base_dir})
    except ValidationError as error:
        raise ConfigError(source, format_errors(error, Config)) from None
    problems = config.problems()
    if problems:
        raise ConfigError(source, problems)
    return config


def is_secret_key(key: str) -> bool:
    """Whether ``key`` names a secret (``token``, ``refresh_token``, ``client_secret``), not a
    URL or the place a secret is kept (``token_url``, ``client_secret_env``, ``..._file``)."""
    return bool(SECRET_WORDS.search(key)) and not SECRET_PLACES.search(key)


def _secret_keys(raw: Any, prefix: str) -> list[str]:
    found: list[str] = []
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            name = f"{prefix}.{key_name(key)}" if prefix else key_name(key)
            if isinstance(key, str) and is_secret_key(key):
                found.append(name)
            found.extend(_secret_keys(value, name))
    elif isinstance(raw, list):
        for index, value in enumerate(raw):
            found.extend(_secret_keys(value, f"{prefix}[{index}]"))
    return found


__all__ = [
    "DEFAULT_PORT",
    "DEMO_BROKERS",
    "HOST_KEYS",
    "ID_FORM",
    "ID_PATTERN",
    "TRADOVATE_SIM",
    "AccountSeed",
    "AlertsConfig",
    "ApiConfig",
    "BlackoutSeed",
    "BrokerConfig",
    "Config",
    "ConfigError",
    "ConnectionSeed",
    "DemoConfig",
    "EngineTuning",
    "FollowerSeed",
    "GroupSeed",
    "JournalConfig",
    "LogConfig",
    "PaperBrokerConfig",
    "RecordsConfig",
    "TradovateConfig",
    "TradovateSimConfig",
    "check_host_url",
    "check_symbol_map",
    "is_secret_key",
    "load_config",
    "parse_config",
    "risk_keys",
]
