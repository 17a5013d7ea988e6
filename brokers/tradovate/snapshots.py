"""A login's state at Tradovate, read from ``user/syncrequest``: what the adapter learns when it
comes up, and the engine's ``Snapshot`` (positions, working orders, and every order of the day
by client order id, S2.6).

The request goes on the trading socket, so its answer is ordered with the fills pushed on it: a
snapshot is never older than a fill the engine already has, nor newer than one still to come.
It asks ``{"users": [userId], "entityTypes": [...every type the adapter reads...],
"splitResponses": true}`` through the REST client (so a penalty ticket in the reply's ``d`` is
waited out and the request sent again with it, a captcha or ``{"s":429}`` locks the login out),
and takes the replies of a split answer together until every list it reads is there.

An answer that is not a complete sync — a ticket not waited out, an error, a non-200 status, a
string ``d``, a time-out, a list missing — raises :class:`SyncFailed`: it is *unknown*
(SEMANTICS S3.5), never an empty account. The session answers the engine's request with
``SnapshotFailed``; the socket stays up.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

import structlog

from brokers.base import AccountSnapshot, PositionInfo, Snapshot
from brokers.tradovate import entities
from brokers.tradovate.entities import SYNC_ENTITY_TYPES, EntityError, SyncData
from brokers.tradovate.orders import OrderTracker
from brokers.tradovate.rest import BrokerError, RestClient, business_error
from brokers.tradovate.socket import SocketTimeout, TradovateSocket
from brokers.tradovate.stream import PushStream, Shared
from brokers.tradovate.wire import Reply

log = structlog.get_logger("brokers.tradovate")


class SyncOwner(Protocol):
    """What a sync and a snapshot use of the login's session."""

    @property
    def connection(self) -> str: ...

    @property
    def accounts(self) -> tuple[str, ...]: ...

    @property
    def broker(self) -> Shared: ...

    @property
    def user_id(self) -> int | None: ...

    @property
    def names(self) -> dict[int, str]:
        """Account id -> name, of the session's accounts."""

    @property
    def account_ids(self) -> dict[str, int]: ...

    @property
    def rest(self) -> RestClient: ...

    @property
    def tracker(self) -> OrderTracker: ...

    @property
    def stream(self) -> PushStream: ...


class SyncFailed(BrokerError):
    """The sync answer is unknown (S3.5); the message says why."""


SYNC = "user/syncrequest"


def sync_body(session: SyncOwner) -> dict[str, Any]:
    body: dict[str, Any] = (
        {"users": [session.user_id]}
        if session.user_id is not None
        else {"accounts": sorted(session.names)}
    )
    body["entityTypes"] = list(SYNC_ENTITY_TYPES)
    body["splitResponses"] = True
    return body


def _complete(parts: list[Reply]) -> bool:
    """Enough replies: one that is not sync data ends it, as does every list being in."""
    last = parts[-1]
    if last.status != 200 or not isinstance(last.data, Mapping) or "p-ticket" in last.data:
        return True
    if business_error(last.data) is not None:
        return True
    seen: set[str] = set()
    for part in parts:
        if isinstance(part.data, Mapping):
            seen.update(part.data)
    return seen >= entities.SYNC_KEYS


async def fetch(session: SyncOwner, socket: TradovateSocket) -> SyncData:
    """The login's sync answer, complete, or :class:`SyncFailed` (or the REST client's errors:
    a lock-out, a refused token, the socket gone)."""

    async def on_socket(path: str, body: Any) -> Reply:
        try:
            parts = await socket.request_parts(path, body, complete=_complete)
        except SocketTimeout as timeout:
            if not timeout.parts:
                raise
            seen = {key for p in timeout.parts if isinstance(p.data, Mapping) for key in p.data}
            missing = ", ".join(sorted(entities.SYNC_KEYS - seen))
            raise SocketTimeout(f"{timeout}; missing {missing}") from None
        bad = next((p for p in parts if p.status != 200 or not isinstance(p.data, Mapping)), None)
        if bad is not None or len(parts) == 1:
            return bad or parts[0]
        try:
            merged = entities.merge_sync_parts([p.data for p in parts])
        except EntityError as error:
            raise SyncFailed(str(error)) from None
        return Reply(parts[0].request_id, 200, merged)

    answer = await session.rest.post(SYNC, sync_body(session), on_socket, http_fallback=False)
    if not isinstance(answer, Mapping):
        raise SyncFailed(f"{SYNC}: the answer is {type(answer).__name__}, not a sync")
    refused = business_error(answer)
    if refused is not None:
        raise SyncFailed(f"{SYNC}: refused ({refused})")
    try:
        return entities.sync_data(answer)
    except EntityError as error:
        log.warning("unusable sync answer", connection=session.connection, problem=str(error))
        raise SyncFailed(str(error)) from None


async def sync(session: SyncOwner, socket: TradovateSocket) -> SyncData:
    """Ask for the login's state; teach it to the order tracker, the positions to the stream and
    the held contracts to market data. An answer that is not a complete sync raises."""
    data = await fetch(session, socket)
    contracts = session.broker.contracts
    contracts.learn(data.contracts)
    orders = []
    for order in data.orders:
        name = session.names.get(order.account_id)
        if name is not None and order.contract_id is not None:
            symbol = await contracts.name_of(order.contract_id, session.rest)
            orders.append((order, name, symbol))
    ours = {order.id for order in data.orders if order.account_id in session.names}
    session.stream.learn_fills(f for f in data.fills if f.order_id in ours)
    session.tracker.load(orders, data.versions, data.commands, data.fills)
    mine = [p for p in data.positions if p.account_id in session.names]
    session.stream.start_from(mine)
    for position in mine:
        if position.net_pos:
            symbol = await contracts.name_of(position.contract_id, session.rest)
            session.broker.market_data.want(symbol)
    return data


async def snapshot(session: SyncOwner, request_id: str, data: SyncData) -> Snapshot:
    """The engine's view of every account of the session, from a sync answer."""
    accounts: dict[str, AccountSnapshot] = {}
    for name in session.accounts:
        account_id = session.account_ids.get(name)
        if account_id is None:
            continue
        positions: dict[str, PositionInfo] = {}
        for p in data.positions:
            if p.account_id == account_id and p.net_pos:
                symbol = await session.broker.contracts.name_of(p.contract_id, session.rest)
                positions[symbol] = PositionInfo(p.net_pos, p.net_price or Decimal(0))
        accounts[name] = AccountSnapshot(
            positions=dict(sorted(positions.items())),
            working=session.tracker.working_orders(name),
            orders=session.tracker.reports(name),
        )
    return Snapshot(session.connection, request_id, accounts)
