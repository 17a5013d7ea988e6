"""A login's state at Tradovate, read from ``user/syncrequest``: what the adapter learns when it
comes up, and the engine's ``Snapshot`` (positions, working orders, and every order of the day
by client order id, S2.6).

The request goes on the trading socket, so its answer is ordered with the fills pushed on it: a
snapshot is never older than a fill the engine already has, nor newer than one still to come.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from brokers.base import AccountSnapshot, PositionInfo, Snapshot
from brokers.tradovate import entities
from brokers.tradovate.entities import EntityError, SyncData
from brokers.tradovate.socket import SocketClosed, TradovateSocket

if TYPE_CHECKING:
    from brokers.tradovate.session import TradovateSession

log = structlog.get_logger("brokers.tradovate")


async def sync(session: TradovateSession, socket: TradovateSocket) -> SyncData:
    """Ask for the login's state; teach it to the order tracker, the positions to the stream and
    the held contracts to market data. A refused or malformed answer ends the socket."""
    body = (
        {"users": [session.user_id]}
        if session.user_id is not None
        else {"accounts": sorted(session.names)}
    )
    reply = await socket.request("user/syncrequest", body)
    if reply.status != 200:
        raise SocketClosed(f"user/syncrequest answered {reply.status}")
    try:
        data = entities.sync_data(reply.data)
    except EntityError as error:
        log.error("malformed sync answer", connection=session.connection, problem=str(error))
        raise SocketClosed(f"malformed sync answer: {error}") from None
    contracts = session.broker.contracts
    contracts.learn(data.contracts)
    orders = []
    for order in data.orders:
        name = session.names.get(order.account_id)
        if name is not None and order.contract_id is not None:
            symbol = await contracts.name_of(order.contract_id, session.rest)
            orders.append((order, name, symbol))
    session.tracker.load(orders, data.versions, data.commands, data.fills)
    mine = [p for p in data.positions if p.account_id in session.names]
    session.stream.start_from(mine)
    for position in mine:
        if position.net_pos:
            symbol = await contracts.name_of(position.contract_id, session.rest)
            session.broker.market_data.want(symbol)
    return data


async def snapshot(session: TradovateSession, request_id: str, data: SyncData) -> Snapshot:
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
