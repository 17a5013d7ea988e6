"""The control API's request and response bodies.

Requests forbid unknown fields and say which field is wrong (422). Money and ratios travel as
decimal strings (``"1.5"``) so nothing is rounded on the way; a request may also send a number.
The OpenAPI document (:mod:`engine.api.openapi`) is built from these models. The bodies of an
account's risk keys, the named profiles and the blackouts (S9) are :mod:`engine.api.risk_schemas`'s.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from brokers.instruments import SymbolError, split_symbol
from engine.api.risk_schemas import (
    AccountBlackout,
    BlackoutOut,
    Limits,
    LimitsChange,
    NewBlackout,
    ProfileChange,
    ProfileOut,
    RiskJson,
    RiskKeys,
)
from engine.api.schema_base import Id, Request, Response
from engine.app.config import check_symbol_map
from engine.domain.copying import CopyMode
from engine.domain.risk_rules import LIMIT_NAMES
from engine.domain.watching import OnDrift

Ratio = Annotated[
    Decimal,
    Field(gt=0, le=1000, allow_inf_nan=False, max_digits=12, decimal_places=6),
]
Money = Annotated[Decimal, Field(ge=0, le=10**12, allow_inf_nan=False, decimal_places=2)]
MaxQty = Annotated[int, Field(ge=1, le=100_000)]
LimitName = Literal[
    "daily_loss_limit",
    "daily_profit_target",
    "trailing_drawdown",
    "weekly_loss_limit",
    "weekly_profit_target",
]
assert set(LimitName.__args__) == set(LIMIT_NAMES)  # type: ignore[attr-defined]
# A follower's copy mode (S8.1). The JSON key is ``copy``; in the models it is ``copy_mode``
# (pydantic models have a ``copy`` method).
COPY_DESCRIPTION = (
    "fills: each leader fill becomes a market order (S2); orders: the leader's working orders"
    " and brackets are mirrored at the follower's broker (S8)"
)
ON_DRIFT_DESCRIPTION = (
    "S10.2, when a follower drifts from where its leader puts it: alert writes the drift entry"
    " and alerts; reduce also brings the follower toward that position flatten-only, once per"
    " episode"
)


# --- requests -----------------------------------------------------------------------------------


class NewAccount(Request):
    id: Id
    balance: Money = Decimal(50000)
    limits: RiskKeys = Field(
        default_factory=RiskKeys, description="the account's own risk keys (S5.2, S9)"
    )
    profile: Id | None = Field(None, description="the named profile it uses (S9.7)")


class NewConnection(Request):
    id: Id
    broker: str = Field("paper", min_length=1, max_length=32)
    accounts: list[NewAccount] = Field(default_factory=list, max_length=200)


class FollowerTerms(Request):
    ratio: Ratio = Decimal(1)
    max_qty: MaxQty | None = None
    symbol_map: dict[str, str] = Field(default_factory=dict, max_length=20)
    copy_mode: CopyMode = Field(default=CopyMode.FILLS, alias="copy", description=COPY_DESCRIPTION)

    @field_validator("symbol_map")
    @classmethod
    def _roots(cls, value: dict[str, str]) -> dict[str, str]:
        return check_symbol_map(value)


class NewFollower(FollowerTerms):
    account: Id


class FollowerChange(Request):
    """Only the fields given change."""

    ratio: Ratio | None = None
    max_qty: MaxQty | None = None
    clear_max_qty: bool = False
    symbol_map: dict[str, str] | None = Field(None, max_length=20)
    copy_mode: CopyMode | None = Field(default=None, alias="copy", description=COPY_DESCRIPTION)

    @field_validator("symbol_map")
    @classmethod
    def _roots(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else check_symbol_map(value)


class NewGroup(Request):
    id: Id
    leader: Id
    followers: list[NewFollower] = Field(default_factory=list, max_length=500)
    on_drift: OnDrift = Field(default=OnDrift.ALERT, description=ON_DRIFT_DESCRIPTION)


class GroupChange(Request):
    """Only the fields given change."""

    on_drift: OnDrift | None = Field(default=None, description=ON_DRIFT_DESCRIPTION)


# --- responses ----------------------------------------------------------------------------------


class Problem(Response):
    """Every error: ``error`` is a stable code, ``message`` says what and where."""

    error: str
    message: str
    field: str | None = None
    details: list[dict[str, str]] = Field(default_factory=list)


class Done(Response):
    """A command was accepted and told to the actors; its effects follow as events."""

    ok: bool = True
    message: str


class ConnectionOut(Response):
    id: str
    broker: str
    state: str
    offline: bool
    accounts: list[str]


class Membership(Response):
    model_config = ConfigDict(frozen=True, serialize_by_alias=True)

    group: str
    role: Literal["leader", "follower"]
    ratio: str | None = None
    max_qty: int | None = None
    symbol_map: dict[str, str] = Field(default_factory=dict)
    disable_reason: str = ""
    copy_mode: CopyMode | None = Field(
        default=None, alias="copy", description=f"a follower's copy mode: {COPY_DESCRIPTION}"
    )


class LimitDistanceOut(Response):
    limit: LimitName
    value: str = Field(description="the limit as set")
    distance: str = Field(
        description="money left before the limit is hit: more loss before a loss limit, more"
        " profit before a profit target, equity above the trailing drawdown's floor; 0 or less:"
        " hit"
    )
    standing: Literal["ok", "near", "breached", "halted", "off"] = Field(
        description="near: within 20 % of the limit; breached: at or past it; halted: the"
        " account is LIQUIDATE_ONLY or LOCKED; off: switched off until its reset by a manual"
        " unlock"
    )


class WorkingOrderOut(Response):
    """An order working at the broker (S8): a bracket's stop-loss is a ``stop``, its take-profit
    a ``limit``, a stop-limit has both ``stop`` and ``price``."""

    broker_order_id: str | None
    client_order_id: str | None
    symbol: str
    qty: int = Field(description="signed quantity still working: + buys, - sells")
    order_type: str = Field(description="market, liquidate, limit, stop or stop_limit")
    price: str | None = Field(description="the limit price")
    stop: str | None = Field(description="the stop price")
    role: Literal["stop", "target"] | None = Field(
        description="a bracket's or OCO pair's leg: stop-loss or take-profit"
    )
    active: bool = Field(description="false for a bracket leg waiting for its entry to fill")
    mirrors: str | None = Field(
        description="the leader's broker order id this order mirrors (orders mode, S8)"
    )


class StayingOrder(WorkingOrderOut):
    """A working order a deletion leaves at the broker: nothing is cancelled (S8.8)."""

    account: str


class AccountOut(Response):
    id: str
    connection: str
    connection_state: str
    positions: dict[str, int]
    working_orders: int
    balance: str
    realized_daily: str
    realized_weekly: str
    unrealized: str
    daily_pnl: str
    weekly_pnl: str
    equity: str
    high_water: str
    risk_status: str
    lock_reason: str
    flattening: bool
    supervisor_hold: bool
    drift: dict[str, int] = Field(
        description="S10.1: a follower's open drift episodes, symbol -> its position minus the"
        " position its leader puts it at; a drift still inside drift_grace is not shown"
    )
    profile: str | None = Field(description="the named profile it uses (S9.7)")
    limits: dict[str, RiskJson] = Field(description="the account's own risk keys")
    effective: dict[str, RiskJson] = Field(
        description="every risk key in force: its profile's, overridden by its own (S9.7)"
    )
    triggers_off: list[str]
    limit_distances: list[LimitDistanceOut] = Field(
        description="each limit set, in the order of docs/risk.md, and the distance to it"
    )
    membership: Membership | None
    copying: str = Field(description="copying, leader, paused: …, disabled: …, not in a group")
    orders: list[WorkingOrderOut] = Field(
        description="the account's working orders, each mirror with the leader order it mirrors"
    )
    missed_copies: list[str] = Field(
        description="S10.3: client order ids of market orders the engine sent that are still"
        " unfilled, unrejected and uncancelled past copy_fill_timeout"
    )
    stale_prices: list[str] = Field(
        description="S10.3: the symbols held while they have no prices (the risk guard cannot"
        " see the account's P&L there)"
    )
    threshold: str | None = Field(
        description="S9.3: the account max loss's threshold; null without max_loss"
    )
    threshold_distance: str | None = Field(
        description="equity above the threshold: 0 or less is a breach; null without max_loss"
    )
    start_balance: str | None = Field(description="S9.3: the evaluation's starting balance")
    contracts_in_use: str = Field(
        description="S9.2: the contracts held, micros weighted (0.1 unless contract_weights)"
    )
    max_contracts: str | None = Field(description="S9.2: the cap; null without max_contracts")
    next_session_close: str | None = Field(
        description="S9.4: the next instant flatten_at flattens and locks the account (ISO 8601)"
    )
    blackout: AccountBlackout | None = Field(
        description="S9.5: the blackout running now or the next one, for an account whose"
        " blackout key is block or flatten"
    )
    best_day_share: str | None = Field(
        description="S9.6: the best trading day's share of the total profit since the"
        " evaluation began, 0 to 1; null while that total is not positive"
    )
    commissions: str = Field(description="S9.1: every commission charged to the account")


class FollowerOut(Response):
    model_config = ConfigDict(frozen=True, serialize_by_alias=True)

    account: str
    ratio: str
    max_qty: int | None
    symbol_map: dict[str, str]
    disable_reason: str
    copy_mode: CopyMode = Field(alias="copy", description=COPY_DESCRIPTION)


class GroupOut(Response):
    id: str
    leader: str
    followers: list[FollowerOut]
    leader_positions: dict[str, int]
    on_drift: OnDrift = Field(description=ON_DRIFT_DESCRIPTION)


class ConnectionDeletion(Response):
    """What deleting a connection removes (S4.1, S4.2); with ``dry_run`` nothing is removed."""

    dry_run: bool
    connection: str
    accounts: list[str]
    groups: list[str]
    memberships: list[dict[str, str]]
    orphaned_followers: list[dict[str, str]]
    working_orders: list[StayingOrder] = Field(
        description="the working orders that stay at the broker: a deletion cancels nothing"
    )


class AccountDeletion(Response):
    """What deleting an account removes (S4.2); with ``dry_run`` nothing is removed."""

    dry_run: bool
    account: str
    connection: str
    groups: list[str]
    memberships: list[dict[str, str]]
    orphaned_followers: list[dict[str, str]]
    working_orders: list[StayingOrder] = Field(
        description="the working orders that stay at the broker: a deletion cancels nothing"
    )


class GroupDeletion(Response):
    dry_run: bool
    group: str
    leader: str
    followers: list[str]
    working_orders: list[StayingOrder] = Field(
        description="the working orders that stay at the broker: a deletion cancels nothing"
    )


class Authorize(Response):
    """Send the browser to ``authorize_url``; the broker returns it to ``/oauth/callback``."""

    connection: str
    authorize_url: str
    expires_at: str


class ActivityOut(Response):
    seq: int
    time: str
    level: str
    kind: str
    account: str | None
    connection: str | None
    message: str
    fill: str | None = Field(
        description="the leader fill the entry belongs to, LEADER:fill id (a copy order's cause)"
    )


class ReconciliationOut(Response):
    seq: int
    time: str
    account: str
    connection: str
    cause: str
    before: dict[str, int]
    target: dict[str, int]
    orders: dict[str, int]


class OrderOut(Response):
    client_order_id: str
    account: str
    connection: str
    symbol: str
    qty: int
    order_type: str
    kind: str
    cause: str
    status: str
    reason: str | None
    created_at: str
    updated_at: str


class ActivityPage(Response):
    items: list[ActivityOut]
    next_before: int | None


class ReconciliationPage(Response):
    items: list[ReconciliationOut]
    next_before: int | None


class OrderPage(Response):
    items: list[OrderOut]
    next_before: int | None


class Health(Response):
    """Whether the engine can make its state durable (decision 0014); if not, why (the first
    write that failed: the file and the error) and since when. While it cannot, new orders are
    held back and the process exits after ``engine.durability_timeout_seconds``."""

    ok: bool
    reason: str = ""
    since: str | None = None


class Status(Response):
    version: str
    started_at: str
    now: str
    stopping: bool
    health: Health
    connections: int
    accounts: int
    groups: int
    brokers: list[str]
    api_url: str


# --- sync (S6.2) --------------------------------------------------------------------------------

MAX_ORDER_QTY = 100_000
MAX_SYNC_SYMBOLS = 50
MAX_SYNC_FOLLOWERS = 500


def _symbols(orders: dict[str, int]) -> dict[str, int]:
    """Each key a futures symbol (``ESZ6``): the error names the symbol, in the field's line."""
    for symbol in orders:
        if len(symbol) > 16:
            raise ValueError(f"{symbol[:16]!r}...: a symbol has at most 16 characters")
        try:
            split_symbol(symbol)
        except SymbolError as error:
            raise ValueError(str(error)) from None
    return orders


OrderQty = Annotated[
    int,
    Field(strict=True, ge=-MAX_ORDER_QTY, le=MAX_ORDER_QTY, description="+ buys, - sells"),
]
SyncOrders = Annotated[
    dict[str, OrderQty],
    Field(max_length=MAX_SYNC_SYMBOLS, description='by symbol, e.g. {"ESZ6": 4}'),
    AfterValidator(_symbols),
]


class SyncExpect(Request):
    """The orders the user was shown (``{"ESZ6": 4}``); the follower sends nothing if its plan
    differs by the time it acts. Without it, the orders planned then go."""

    expect: SyncOrders | None = None


class SyncGroupExpect(Request):
    """The orders shown, by follower; a follower missing from it is expected to send nothing."""

    expect: Annotated[dict[Id, SyncOrders], Field(max_length=MAX_SYNC_FOLLOWERS)] | None = None


class SyncOut(Response):
    """What a sync of one follower sends (S6.2): its positions, its targets ``t(L)`` and the
    orders between them, or why nothing is sent."""

    account: str
    group: str
    connection: str
    connection_state: str
    risk_status: str
    positions: dict[str, int]
    targets: dict[str, int]
    orders: dict[str, int]
    skip: str = Field(description='"" when the orders go; else why nothing is sent')
    gate: str = Field(description='"" or what the risk gate would refuse (S5.4, S5.5)')
    dry_run: bool
    message: str


class SyncGroupOut(Response):
    group: str
    dry_run: bool
    followers: list[SyncOut]


__all__ = [
    "AccountBlackout",
    "AccountDeletion",
    "AccountOut",
    "ActivityOut",
    "ActivityPage",
    "Authorize",
    "BlackoutOut",
    "ConnectionDeletion",
    "ConnectionOut",
    "Done",
    "FollowerChange",
    "FollowerOut",
    "FollowerTerms",
    "GroupDeletion",
    "GroupOut",
    "Health",
    "Id",
    "LimitDistanceOut",
    "Limits",
    "LimitsChange",
    "Membership",
    "NewAccount",
    "NewBlackout",
    "NewConnection",
    "NewFollower",
    "NewGroup",
    "OrderOut",
    "OrderPage",
    "Problem",
    "ProfileChange",
    "ProfileOut",
    "ReconciliationOut",
    "ReconciliationPage",
    "Request",
    "Response",
    "RiskJson",
    "RiskKeys",
    "Status",
    "StayingOrder",
    "SyncExpect",
    "SyncGroupExpect",
    "SyncGroupOut",
    "SyncOut",
    "WorkingOrderOut",
]
