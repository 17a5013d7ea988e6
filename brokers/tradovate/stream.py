"""The trading socket's ``props`` pushes of one login, in the order they came, into the order
tracker (:mod:`.orders`) and so into the engine's order events.

- A ``props`` event's ``entity`` is one object or an array of them; ``eventType`` is
  ``Created``, ``Updated`` or ``Deleted`` — an order's status moves through ``Updated``, a
  ``Deleted`` order is read for its last status like an update.
- ``command`` teaches the tracker which ``clOrdId`` an order carries; ``order``,
  ``orderVersion`` and ``fill`` tell an order's story — of the engine's orders and of those
  the account's owner placed by hand alike (a limit, a bracket, an OCO pair; modified, a leg
  made active, cancelled); an ``executionReport`` gives a known order's status again (a
  cancel, an expiry; an order is filled by its fills, never by a report); ``position``,
  ``cashBalance``, ``commandReport`` and the rest are accepted and not needed.
- Fills count once, by fill id, whatever the number of times they are pushed (``Updated``
  again, or already in a sync answer): never twice in a position, an order's filled quantity,
  or a liquidation's "flat" test. A fill pushed with ``active: false`` (or ``Deleted``) after it
  was counted is a correction: it is taken back out of those counts, logged as an error, and
  the engine gets ``FillCorrected`` for its account (it reconciles that account).
- An order not yet recognisable as the engine's (no ``clOrdId`` of ours, its answer not in) while
  the engine has requests of that account unanswered may be ours — on the socket its answer comes
  after its pushes. Its pieces are held back, and handled in order once the account's requests
  are answered (:meth:`PushStream.release`); the rest of the stream goes on meanwhile.
- A fill of an order never seen is looked up (``order/item``) before it is handled.
- The position a fill leaves is counted from the fills (a sync gives the starting point), so a
  liquidation is known to be done when its fill leaves the contract flat.

Malformed pushes raise :class:`~brokers.tradovate.socket.SocketClosed`: the stream can no longer
be trusted to be complete, the socket is dropped, and the engine reconciles once it is back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

import structlog

from brokers.base import BrokerEvent, FillCorrected
from brokers.tradovate import entities
from brokers.tradovate.contracts import ContractCache
from brokers.tradovate.entities import EntityError, TvFill, TvOrder, TvOrderVersion, TvPosition
from brokers.tradovate.orders import OrderTracker
from brokers.tradovate.rest import BrokerError, NotFound, RestClient
from brokers.tradovate.socket import SocketClosed
from brokers.tradovate.wire import Push

log = structlog.get_logger("brokers.tradovate")

Piece = TvOrder | TvOrderVersion | TvFill


class QuoteWants(Protocol):
    def want(self, symbol: str) -> None:
        """Quotes of ``symbol`` are needed (a contract held or traded)."""


class Shared(Protocol):
    """What a login's stream and sync use of the broker: the contract table, the counters, and
    the quotes wanted."""

    @property
    def contracts(self) -> ContractCache: ...

    @property
    def stats(self) -> Counter[str]: ...

    @property
    def market_data(self) -> QuoteWants: ...


class StreamOwner(Protocol):
    """What the stream uses of its login's session."""

    @property
    def connection(self) -> str: ...

    @property
    def broker(self) -> Shared: ...

    @property
    def tracker(self) -> OrderTracker: ...

    @property
    def names(self) -> dict[int, str]:
        """Account id -> name, of the session's accounts."""

    @property
    def account_ids(self) -> dict[str, int]: ...

    @property
    def in_flight(self) -> dict[str, int]:
        """Orders sent and not answered, by account."""

    @property
    def rest(self) -> RestClient: ...

    def emit(self, event: BrokerEvent) -> None: ...


class PushStream:
    def __init__(self, session: StreamOwner) -> None:
        self.session = session
        self._net: dict[tuple[int, int], int] = {}  # (account id, contract id) -> position
        self._held: dict[int, list[Piece]] = {}  # pieces of orders held back, by order id
        self._held_of: dict[str, list[int]] = {}  # those orders, by account, in order
        self._counted: dict[int, TvFill] = {}  # fills counted, by fill id
        self._withdrawn: set[int] = set()  # fill ids the broker withdrew

    def start_from(self, positions: Iterable[TvPosition]) -> None:
        for position in positions:
            self._net[(position.account_id, position.contract_id)] = position.net_pos

    def learn_fills(self, fills: Iterable[TvFill]) -> None:
        """A sync's fills: counted already (by the broker's positions); one counted earlier
        and withdrawn since is a correction."""
        for fill in fills:
            if fill.active:
                if fill.id not in self._withdrawn:
                    self._counted.setdefault(fill.id, fill)
            elif fill.id in self._counted:
                self._withdraw(fill, adjust_net=False)
            else:
                self._withdrawn.add(fill.id)  # withdrawn before we ever counted it

    async def on_push(self, push: Push) -> None:
        session = self.session
        if push.event != "props":
            return
        try:
            events = push.data if isinstance(push.data, list) else [push.data]
            for data in events:
                await self._props(entities.props(data))
        except EntityError as error:
            session.broker.stats["malformed"] += 1
            log.error("malformed props event", connection=session.connection, problem=str(error))
            raise SocketClosed(f"malformed props event: {error}") from None
        except BrokerError as error:
            log.error(
                "cannot follow a props event", connection=session.connection, problem=str(error)
            )
            raise SocketClosed(str(error)) from None

    async def _props(self, props: entities.Props) -> None:
        kind = props.entity_type
        for entity in props.entities:
            if kind == "command":
                self.session.tracker.on_command(entities.command(entity))
            elif kind == "order":
                order = entities.order(entity)
                if not self._hold(order.id, order):
                    await self._order(order)
            elif kind == "orderVersion":
                version = entities.order_version(entity)
                if not self._hold(version.order_id, version):
                    self.session.tracker.on_version(version)
            elif kind == "executionReport":
                report = entities.execution_report(entity)
                if report is not None:
                    self._report(report)
            elif kind == "fill":
                fill = entities.fill(entity)
                if props.event_type == "Deleted":
                    fill = replace(fill, active=False)
                if not self._hold(fill.order_id, fill):
                    await self._fill(fill)

    def _report(self, report: entities.TvExecutionReport) -> None:
        if report.order_id in self._held or report.status in ("Filled", "Completed"):
            return
        if self.session.tracker.is_known(report.order_id):
            self.session.tracker.on_status(report.order_id, report.status)

    def _hold(self, order_id: int, piece: Piece) -> bool:
        """Hold a piece of an order already held back."""
        held = self._held.get(order_id)
        if held is None:
            return False
        held.append(piece)
        return True

    async def _order(self, order: TvOrder) -> None:
        session = self.session
        name = session.names.get(order.account_id)
        if name is None or order.contract_id is None:
            return
        if not session.tracker.recognises(order.id) and session.in_flight.get(name):
            self._held[order.id] = [order]
            self._held_of.setdefault(name, []).append(order.id)
            return
        symbol = await session.broker.contracts.name_of(order.contract_id, session.rest)
        session.tracker.on_order(order, name, symbol)

    async def release(self, account: str) -> None:
        """The engine's requests of ``account`` are answered: handle what was held, in order."""
        session = self.session
        for order_id in self._held_of.pop(account, []):
            held = self._held.get(order_id, [])
            while held:  # pieces pushed meanwhile join the list, in order
                piece = held.pop(0)
                if isinstance(piece, TvOrder):
                    contract = piece.contract_id or 0
                    symbol = await session.broker.contracts.name_of(contract, session.rest)
                    session.tracker.on_order(piece, account, symbol)
                elif isinstance(piece, TvOrderVersion):
                    session.tracker.on_version(piece)
                else:
                    await self._fill(piece)
            self._held.pop(order_id, None)

    async def _fill(self, fill: TvFill) -> None:
        session = self.session
        tracker = session.tracker
        if fill.id in self._withdrawn:
            log.info("a withdrawn fill pushed again", connection=session.connection, fill=fill.id)
            return
        if not fill.active:
            self._withdraw(fill, adjust_net=True)
            return
        if fill.id in self._counted:
            log.debug("a fill pushed again", connection=session.connection, fill=fill.id)
            return
        if not tracker.is_known(fill.order_id):
            try:
                order = entities.order(await session.rest.get("order/item", {"id": fill.order_id}))
            except NotFound:
                return
            await self._order(order)
            if self._hold(fill.order_id, fill):
                return
            if not tracker.is_known(fill.order_id):
                return  # another login's account
        tracked = tracker.orders[fill.order_id]
        self._counted[fill.id] = fill
        key = (session.account_ids[tracked.account], fill.contract_id)
        self._net[key] = self._net.get(key, 0) + fill.qty
        session.broker.contracts.learn([entities.TvContract(fill.contract_id, tracked.symbol)])
        tracker.on_fill(fill, self._net[key])
        session.broker.market_data.want(tracked.symbol)

    def _withdraw(self, fill: TvFill, *, adjust_net: bool) -> None:
        """The broker withdrew ``fill``: take it back out of what was counted, and tell."""
        session = self.session
        self._withdrawn.add(fill.id)
        counted = self._counted.pop(fill.id, None)
        if counted is None:
            log.warning(
                "a fill withdrawn before it was counted",
                connection=session.connection,
                fill=fill.id,
                order=fill.order_id,
            )
            return
        account = session.tracker.withdraw(counted)
        if account is None:
            return
        if adjust_net:
            key = (session.account_ids[account], counted.contract_id)
            self._net[key] = self._net.get(key, 0) - counted.qty
        session.broker.stats["fills_withdrawn"] += 1
        log.error(
            "fill withdrawn by Tradovate",
            connection=session.connection,
            account=account,
            fill=fill.id,
            order=fill.order_id,
            qty=counted.qty,
            price=str(counted.price),
        )
        reason = (
            f"Tradovate withdrew fill {fill.id} ({counted.qty:+d} @ {counted.price}) of order "
            f"{fill.order_id}; the account's book no longer matches the broker's"
        )
        session.emit(FillCorrected(session.connection, account, str(fill.id), reason))
