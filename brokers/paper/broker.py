"""The paper broker: an in-process broker that behaves like a remote one.

Every request returns at once; outcomes arrive as events through the session's sink. One
re-entrant lock guards all state, and sinks are called while it is held, so the events of a
session arrive in the order their effects happened. Ids are counters (``O1``... for orders,
``X1``... for fills, ``paper-token-1``... for tokens) and times come from the given clock, so the
same calls always give the same events.

Delivery: a session delivers only while it is open (not closed by the engine), its connection's
link is up (not dropped) and the connection's token is valid; events that happen meanwhile are
lost, as on a broker's websocket. ``TokenIssued`` and ``SessionRestored`` always reach the sink,
and so does the ``OrderRejected`` that answers an order sent on a session that is not delivering
(it is the reply to that request).

State file: given ``state_file``, the broker survives its process like a remote one. It loads
its book (positions with average prices, working and held orders, hold, reject_next and
fail_snapshot settings, id counters, the client order ids it accepted, the duplicate-id
rejections, last prices) from the file at construction and rewrites it after every change,
atomically and with the lock held, *before* the events of that change reach a sink
(:mod:`brokers.paper.state`). Events are then queued during a change and delivered, in order,
once the file has it; a sink that calls back into the broker has the events of its call
delivered after the ones already queued. Without a state file events go to the sinks at once,
as they happen.

Working orders (S8.10): limits, stops and stop-limits, brackets and OCO pairs rest in the book
and are matched against every tick of their symbol (:mod:`brokers.paper.matching`); an engine
request is judged whole (:mod:`brokers.paper.terms`): its orders are all accepted or each
rejected. The owner places, modifies and cancels them too (``place_working``, ``place_oco``,
``modify``, ``cancel``: :mod:`brokers.paper.desk`); ``fill_part`` lets the market take part of a
resting limit. The harness's controls (``hold``, ``reject_next``, ``drop``, ...) are
:mod:`brokers.paper.controls`. A held
connection's orders sent while held are neither filled nor matched until ``release``; cancels,
modifications and the owner's orders are never held.

Orders are remembered as a broker lists the day's orders (S2.6, :mod:`brokers.paper.ledger`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from decimal import Decimal
from pathlib import Path

from brokers.base import (
    AccountSnapshot,
    Broker,
    BrokerEvent,
    BrokerSession,
    EventSink,
    Fill,
    LegRole,
    ModifyRejected,
    ModifyRequest,
    OrderDone,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionInfo,
    Quote,
    SessionRestored,
    Snapshot,
    SnapshotFailed,
    TimeInForce,
    WorkingOrder,
)
from brokers.clock import Clock
from brokers.instruments import ContractTable, SymbolError
from brokers.paper import state as state_file_format
from brokers.paper.book import Book, PaperBrokerError, PaperOrder
from brokers.paper.checks import (
    DONE_CANCELLED,
    DONE_NOTHING_TO_LIQUIDATE,
    FILLS_KEPT,
    REJECT_DUPLICATE,
    REJECT_FORCED,
    REJECT_SESSION_CLOSED,
    REJECT_UNAUTHORIZED,
    REJECT_UNKNOWN_ORDER,
    SNAPSHOT_FORCED,
    check_id,
    check_qty,
    no_quote,
)
from brokers.paper.controls import HarnessControls
from brokers.paper.desk import OwnerDesk
from brokers.paper.ledger import OrderLedger
from brokers.paper.matching import Matcher, link_bracket, link_oco
from brokers.paper.state import DuplicateRejection, PaperState
from brokers.paper.terms import (
    Spec,
    invalid,
    request_problem,
    specs,
)


class PaperSession(BrokerSession):
    """One connection's session at the paper broker. Created by :meth:`PaperBroker.session`."""

    def __init__(
        self, broker: PaperBroker, connection: str, accounts: tuple[str, ...], sink: EventSink
    ) -> None:
        self._broker = broker
        self.connection = connection
        self.accounts = accounts
        self._sink = sink
        self._closed = False

    def place_order(self, order: OrderRequest) -> None:
        self._broker._place_order(self, order)

    def modify_order(self, request: ModifyRequest) -> None:
        self._broker._modify_order(self, request)

    def cancel_working(
        self, account: str, symbol: str | None, broker_order_ids: tuple[str, ...] = ()
    ) -> None:
        self._broker._cancel_working(self, account, symbol, broker_order_ids)

    def request_snapshot(self, request_id: str) -> None:
        self._broker._request_snapshot(self, request_id)

    def close(self) -> None:
        self._broker._close(self)

    def open(self) -> None:
        self._broker._open(self)

    @property
    def delivering(self) -> bool:
        """Whether events reach the sink now (open, link up, token valid, not replaced)."""
        return self._broker._delivering(self)


class _Venue:
    """The broker as its matcher sees it (called with the broker's lock held)."""

    def __init__(self, broker: PaperBroker) -> None:
        self._broker = broker

    def last(self, symbol: str) -> Decimal | None:
        return self._broker._prices.get(symbol)

    def held(self, order: PaperOrder) -> bool:
        return self._broker._is_held(order)

    def execute(self, order: PaperOrder, qty: int, price: Decimal, *, order_done: bool) -> Fill:
        return self._broker._execute(order, qty, price, order_done=order_done)

    def end(self, order: PaperOrder, reason: str, status: OrderStatus) -> None:
        self._broker._done(order, reason, status)

    def updated(self, order: PaperOrder) -> None:
        self._broker._emit_updated(order)


class _Change:
    """The context of one request at the broker (:meth:`PaperBroker._change`): the lock held,
    and when the outermost request ends the state saved (if it ``changes``) and the queued
    events delivered. Its state is the broker's, so the broker keeps one of each kind and
    enters it for every request; a class rather than a ``contextmanager`` generator, which
    costs a generator per order on the fill path."""

    __slots__ = ("_broker", "_changes")

    def __init__(self, broker: PaperBroker, *, changes: bool) -> None:
        self._broker = broker
        self._changes = changes

    def __enter__(self) -> None:
        broker = self._broker
        broker._lock.acquire()
        broker._depth += 1
        if self._changes:
            broker._unsaved = True

    def __exit__(self, *exc_info: object) -> None:
        broker = self._broker
        try:
            broker._depth -= 1
            if broker._depth == 0:
                broker._deliver()
        finally:
            broker._lock.release()


class PaperBroker(OwnerDesk, HarnessControls, Broker):
    """The embedded default broker and the scenario broker."""

    def __init__(
        self,
        clock: Clock,
        contracts: ContractTable,
        id_prefix: str = "",
        state_file: Path | None = None,
    ) -> None:
        """``id_prefix`` keeps broker ids unique across runs of a process-local broker (a live
        ``make run`` after a restart); replays leave it empty so ids are deterministic.

        ``state_file`` keeps the broker's state in that file across processes (see the module
        docstring); it is read here if it exists and written at the first change."""
        self._clock = clock
        self._contracts = contracts
        self._lock = threading.RLock()
        self._sessions: dict[str, PaperSession] = {}  # the current session of each connection
        self._account_connection: dict[str, str] = {}
        self._links_down: set[str] = set()
        self._tokens_invalid: set[str] = set()
        self._held: set[str] = set()
        self._held_queue: dict[str, list[str]] = {}  # connection -> broker order ids, as sent
        self._reject_next: dict[str, int] = {}
        self._fail_snapshot: dict[str, int] = {}
        # Fills reported by this process, by id, for correct_fill (the newest FILLS_KEPT).
        self._fills: OrderedDict[str, Fill] = OrderedDict()
        self._prices: dict[str, Decimal] = {}
        self._book = Book()
        self._matcher = Matcher(self._book, _Venue(self))
        # Client order ids accepted, in order, with the day each was (of two days: above).
        self._ledger = OrderLedger(clock.now().date())
        self._duplicates: list[DuplicateRejection] = []
        self._order_seq = 0
        self._fill_seq = 0
        self._id_prefix = id_prefix
        self._token_seq = 0
        self._codes: dict[str, str] = {}  # OAuth codes handed out, not yet exchanged
        # The state file, and the events of the change in progress waiting for it.
        self._state_file = state_file
        self._pending: deque[tuple[PaperSession, BrokerEvent]] = deque()
        self._depth = 0
        self._changing = _Change(self, changes=True)
        self._reading = _Change(self, changes=False)
        self._unsaved = False
        self._draining = False
        if state_file is not None:
            loaded = state_file_format.read(state_file)
            if loaded is not None:
                self._restore(loaded)

    @property
    def state_file(self) -> Path | None:
        return self._state_file

    @property
    def accepted_client_order_ids(self) -> tuple[str, ...]:
        """The client order ids the broker accepted, in order (across reloads of a state
        file), of this day and the one before."""
        with self._lock:
            return self._ledger.accepted

    @property
    def duplicate_rejections(self) -> tuple[DuplicateRejection, ...]:
        """Every order refused as ``DuplicateClOrdId`` (across reloads of a state file)."""
        with self._lock:
            return tuple(self._duplicates)

    # --- sessions and accounts --------------------------------------------------------------------

    def session(self, connection: str, accounts: tuple[str, ...], sink: EventSink) -> PaperSession:
        """Register the session of ``connection``, replacing any earlier one (which goes inert).

        The broker's own state (positions, orders, held/dropped/token state) is kept.
        """
        check_id(connection, "connection")
        accounts = tuple(accounts)
        for account in accounts:
            check_id(account, f"connection {connection!r}: account")
        if len(set(accounts)) != len(accounts):
            raise PaperBrokerError(f"connection {connection!r}: an account is listed twice")
        with self._change():
            session = PaperSession(self, connection, accounts, sink)
            self._sessions[connection] = session
            for account in accounts:
                self._account_connection[account] = connection
            return session

    def add_accounts(self, connection: str, accounts: tuple[str, ...]) -> None:
        """Declare accounts of ``connection`` before (or without) any session of it."""
        check_id(connection, "connection")
        with self._change():
            for account in accounts:
                self._account_connection[check_id(account, "account")] = connection

    def account_of(self, account: str) -> str | None:
        """The connection ``account`` belongs to, or ``None`` if the broker does not know it."""
        with self._lock:
            return self._account_connection.get(account)

    def is_delivering(self, connection: str) -> bool:
        with self._lock:
            session = self._sessions.get(connection)
            return session is not None and self._delivering(session)

    # --- market and harness controls --------------------------------------------------------------

    def set_price(self, symbol: str, last: Decimal) -> None:
        """A market tick: sets ``last`` and sends a ``Quote`` to every delivering session."""
        self._parse_symbol(symbol)
        if isinstance(last, int) and not isinstance(last, bool):
            last = Decimal(last)
        if not isinstance(last, Decimal) or not last.is_finite() or last <= 0:
            raise PaperBrokerError(f"price of {symbol}: {last!r} is not a positive Decimal")
        with self._change():
            self._prices[symbol] = last
            quote = Quote(symbol, last, self._clock.now())
            for session in list(self._sessions.values()):
                if self._delivering(session):
                    self._send(session, quote)
            self._matcher.tick(symbol)  # the quote goes out before the fills it causes

    def last_price(self, symbol: str) -> Decimal | None:
        with self._lock:
            return self._prices.get(symbol)

    def prices(self) -> dict[str, Decimal]:
        """The last price of every symbol that has one."""
        with self._lock:
            return dict(self._prices)

    def positions(self, account: str) -> dict[str, PositionInfo]:
        """Non-zero positions of ``account`` by symbol."""
        with self._lock:
            return self._book.positions(account)

    def working_orders(self, account: str) -> list[WorkingOrder]:
        with self._lock:
            return [order.working() for order in self._book.working_of(account)]

    # --- session requests (called by PaperSession) ------------------------------------------------

    def _place_order(self, session: PaperSession, request: OrderRequest) -> None:
        if not isinstance(request, OrderRequest):
            raise PaperBrokerError(f"place_order needs an OrderRequest, got {request!r}")
        client_order_id = check_id(request.client_order_id, "client_order_id")
        ids = request.client_order_ids()
        for leg_id in ids[1:]:  # its own id (the first) is checked above
            check_id(leg_id, f"order {client_order_id}: client_order_id")
        account, symbol = request.account, request.symbol
        self._check_session_account(session, account)
        if not isinstance(request.order_type, OrderType):
            raise PaperBrokerError(f"order {client_order_id}: unknown type {request.order_type!r}")
        if not isinstance(request.tif, TimeInForce):
            raise PaperBrokerError(f"order {client_order_id}: unknown time in force")
        qty = 0
        if request.order_type is not OrderType.LIQUIDATE:
            qty = check_qty(request.qty, f"order {client_order_id}")
        problem = request_problem(request) or self._symbol_problem(symbol)
        connection = session.connection
        with self._change():
            reason = refusal = self._refusal(session)
            if reason is None and self._reject_next.get(connection, 0) > 0:
                self._reject_next[connection] -= 1  # one request, however many orders
                reason = REJECT_FORCED
            self._ledger.new_day(self._clock.now().date())
            if reason is None and problem is not None:
                reason = invalid(problem)
            duplicates = self._ledger.accepted_among(ids) if reason is None else []
            if duplicates:
                reason = REJECT_DUPLICATE
                now = self._clock.now().isoformat()
                self._duplicates.extend(
                    DuplicateRejection(coid, account, connection, now) for coid in duplicates
                )
            if (
                reason is None
                and request.order_type is OrderType.MARKET
                and symbol not in self._prices
            ):
                reason = no_quote(symbol)
            if reason is not None:
                for coid in dict.fromkeys(ids):
                    # A request that reached the broker is known to it, rejected or not (a
                    # duplicate keeps its original's report).
                    if refusal is None and not self._ledger.is_known(coid):
                        self._ledger.report(coid, account, None, OrderStatus.REJECTED)
                    self._send(session, OrderRejected(connection, account, coid, reason))
                return
            main, others = specs(request)
            orders = self._open_orders(
                connection, account, symbol, qty, request.tif, main, others, oco=bool(request.oco)
            )
            if connection in self._held:
                for order in orders:
                    self._book.add_working(order)
                    self._held_queue.setdefault(connection, []).append(order.broker_order_id)
            elif request.order_type.working:
                for order in orders:
                    self._matcher.check(order.broker_order_id)
            else:
                self._fill_engine_order(orders[0])

    def _modify_order(self, session: PaperSession, request: ModifyRequest) -> None:
        if not isinstance(request, ModifyRequest):
            raise PaperBrokerError(f"modify_order needs a ModifyRequest, got {request!r}")
        account, broker_order_id = request.account, request.broker_order_id
        self._check_session_account(session, account)
        with self._change():
            reason = self._refusal(session)
            order = self._book.get_working(broker_order_id)
            if reason is None and (order is None or order.account != account):
                reason = f"{REJECT_UNKNOWN_ORDER}: no working order {broker_order_id}"
            if reason is None and order is not None:
                problem = self._matcher.modify(order, request.qty, request.price, request.stop)
                reason = None if problem is None else invalid(problem)
            if reason is not None:
                rejected = ModifyRejected(
                    session.connection, account, broker_order_id, request.client_order_id, reason
                )
                self._send(session, rejected)

    def _cancel_working(
        self,
        session: PaperSession,
        account: str,
        symbol: str | None,
        broker_order_ids: tuple[str, ...],
    ) -> None:
        self._check_session_account(session, account)
        wanted = set(broker_order_ids)
        with self._change():
            if self._refusal(session) is not None:
                return  # the request does not reach the broker
            for order in self._book.working_of(account, symbol):
                if wanted and order.broker_order_id not in wanted:
                    continue
                if self._book.get_working(order.broker_order_id) is not None:  # not ended by a link
                    self._matcher.cancel(order, DONE_CANCELLED)

    def _request_snapshot(self, session: PaperSession, request_id: str) -> None:
        connection = session.connection
        with self._change(changes=False):
            if self._refusal(session) is not None:
                return  # the request does not reach the broker
            if self._fail_snapshot.get(connection, 0) > 0:
                self._fail_snapshot[connection] -= 1
                self._unsaved = True  # one fewer to fail: the state file must have it
                self._send(session, SnapshotFailed(connection, request_id, SNAPSHOT_FORCED))
                return
            accounts = {
                account: AccountSnapshot(
                    positions=self._book.positions(account),
                    working=tuple(order.working() for order in self._book.working_of(account)),
                    orders=self._ledger.reports_of(account),
                )
                for account in session.accounts
                if self._account_connection.get(account) == session.connection
            }
            # A (re)subscribed session first gets the current price of every contract, as a
            # market-data subscription answers with the last trade before any new one.
            now = self._clock.now()
            for symbol, last in sorted(self._prices.items()):
                self._send(session, Quote(symbol, last, now))
            self._send(session, Snapshot(session.connection, request_id, accounts))

    def _close(self, session: PaperSession) -> None:
        with self._lock:
            session._closed = True

    def _open(self, session: PaperSession) -> None:
        with self._change():
            if self._sessions.get(session.connection) is not session:
                return  # replaced by a newer session: inert
            session._closed = False
            self._links_down.discard(session.connection)
            self._send(session, SessionRestored(session.connection))

    # --- changes, events and the state file -------------------------------------------------------

    def _change(self, *, changes: bool = True) -> _Change:
        """Hold the lock for one request; with a state file, when the outermost one ends, save
        the state (if ``changes``) and only then deliver the events it queued."""
        return self._changing if changes else self._reading

    def _tell_session(self, connection: str, event: BrokerEvent) -> None:
        session = self._sessions.get(connection)
        if session is not None:
            self._send(session, event)

    def _send(self, session: PaperSession, event: BrokerEvent) -> None:
        """Give ``event`` to the session's sink: now, or once the state file has its change."""
        if self._state_file is None:
            session._sink(event)
        else:
            self._pending.append((session, event))

    def _deliver(self) -> None:
        """Save, then deliver the queued events in order (lock held, no change in progress).

        A sink that calls back into the broker queues its events behind the rest; they go out
        from this same loop, after their own save."""
        if self._state_file is None or self._draining:
            return
        self._draining = True
        try:
            while True:
                if self._unsaved:
                    state_file_format.write(self._state_file, self._capture())
                    self._unsaved = False
                if not self._pending:
                    return
                session, event = self._pending.popleft()
                session._sink(event)
        finally:
            self._draining = False

    def _capture(self) -> PaperState:
        return PaperState(
            order_seq=self._order_seq,
            fill_seq=self._fill_seq,
            token_seq=self._token_seq,
            accounts=dict(self._account_connection),
            prices=dict(self._prices),
            positions=self._book.all_positions(),
            working=self._book.all_working(),
            held=sorted(self._held),
            held_queue={c: list(ids) for c, ids in self._held_queue.items()},
            reject_next=dict(self._reject_next),
            fail_snapshot=dict(self._fail_snapshot),
            links_down=sorted(self._links_down),
            tokens_invalid=sorted(self._tokens_invalid),
            client_order_ids=list(self._ledger.accepted),
            duplicate_rejections=self._duplicates,
            orders=self._ledger.reports(),
        )

    def _restore(self, state: PaperState) -> None:
        self._order_seq = state.order_seq
        self._fill_seq = state.fill_seq
        self._token_seq = state.token_seq
        self._account_connection = dict(state.accounts)
        self._prices = dict(state.prices)
        for account, held in state.positions.items():
            for symbol, pos in held.items():
                self._book.set_position(account, symbol, pos.qty, pos.avg_price)
        for order in state.working:
            self._book.add_working(order)
        self._held = set(state.held)
        self._held_queue = {c: list(ids) for c, ids in state.held_queue.items()}
        self._reject_next = dict(state.reject_next)
        self._fail_snapshot = dict(state.fail_snapshot)
        self._links_down = set(state.links_down)
        self._tokens_invalid = set(state.tokens_invalid)
        self._duplicates = list(state.duplicate_rejections)
        self._ledger.restore(state.client_order_ids, state.orders)

    # --- internals (call with the lock held) ------------------------------------------------------

    def _refusal(self, session: PaperSession) -> str | None:
        """Why a request on ``session`` cannot reach the broker now, or ``None``."""
        connection = session.connection
        if (
            session._closed
            or self._sessions.get(connection) is not session
            or connection in self._links_down
        ):
            return REJECT_SESSION_CLOSED
        if connection in self._tokens_invalid:
            return REJECT_UNAUTHORIZED
        return None

    def _delivering(self, session: PaperSession) -> bool:
        with self._lock:
            return self._refusal(session) is None

    def _emit(self, connection: str, event: BrokerEvent) -> None:
        session = self._sessions.get(connection)
        if session is not None and self._refusal(session) is None:
            self._send(session, event)

    def _emit_accepted(self, order: PaperOrder, legs: tuple[str, ...] = ()) -> None:
        self._emit(order.connection, order.accepted(legs))

    def _emit_updated(self, order: PaperOrder) -> None:
        self._emit(order.connection, order.updated())

    def _new_order(
        self,
        client_order_id: str | None,
        connection: str,
        account: str,
        symbol: str,
        *,
        qty: int,
        order_type: OrderType,
        price: Decimal | None = None,
        stop: Decimal | None = None,
        tif: TimeInForce = TimeInForce.DAY,
        role: LegRole | None = None,
    ) -> PaperOrder:
        self._order_seq += 1
        return PaperOrder(
            f"{self._id_prefix}O{self._order_seq}",
            client_order_id,
            connection,
            account,
            symbol,
            qty,
            order_type,
            price=price,
            stop=stop,
            tif=tif,
            role=role,
        )

    def _open_orders(
        self,
        connection: str,
        account: str,
        symbol: str,
        qty: int,
        tif: TimeInForce,
        main: Spec,
        others: list[Spec],
        *,
        oco: bool,
    ) -> list[PaperOrder]:
        """Accept one request's orders: ``main`` with its bracket's legs (``others``), or with
        its OCO sibling (``oco``). Working ones join the book; an ``OrderAccepted`` each."""
        orders = [
            self._new_order(
                spec.client_order_id,
                connection,
                account,
                symbol,
                qty=qty,
                order_type=spec.order_type,
                price=spec.price,
                stop=spec.stop,
                tif=tif,
                role=spec.role,
            )
            for spec in (main, *others)
        ]
        first, placed_with = orders[0], orders[1:]
        if oco:
            link_oco(first, placed_with[0])
        else:
            link_bracket(first, placed_with)
        legs = tuple([order.broker_order_id for order in placed_with])  # named by the first
        for order in orders:
            if order.order_type.working:
                self._book.add_working(order)
            if order.client_order_id is not None:
                self._ledger.accept(order.client_order_id)
                self._ledger.report(
                    order.client_order_id, account, order.broker_order_id, OrderStatus.WORKING
                )
            self._emit_accepted(order, legs if order is first else ())
        return orders

    def _fill_engine_order(self, order: PaperOrder) -> None:
        """Execute a market order in full now (a liquidation closes what is open now)."""
        qty = order.qty
        if order.order_type is OrderType.LIQUIDATE:
            qty = -self._book.position(order.account, order.symbol)
            if qty == 0:
                self._done(order, DONE_NOTHING_TO_LIQUIDATE)
                return
        price = self._prices.get(order.symbol)
        if price is None:  # a liquidation of a symbol that never had a price
            self._done(order, no_quote(order.symbol))
            return
        order.qty = qty
        self._matcher.fill(order, qty, price)

    def _execute(self, order: PaperOrder, qty: int, price: Decimal, *, order_done: bool) -> Fill:
        self._book.fill(order.account, order.symbol, qty, price)
        order.filled += abs(qty)
        self._fill_seq += 1
        fill = Fill(
            connection=order.connection,
            account=order.account,
            fill_id=f"{self._id_prefix}X{self._fill_seq}",
            broker_order_id=order.broker_order_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            qty=qty,
            price=price,
            time=self._clock.now(),
            order_done=order_done,
        )
        self._ledger.settle(order, OrderStatus.FILLED if order_done else OrderStatus.WORKING)
        self._fills[fill.fill_id] = fill
        if len(self._fills) > FILLS_KEPT:
            self._fills.popitem(last=False)
        self._emit(order.connection, fill)
        return fill

    def _done(
        self, order: PaperOrder, reason: str, status: OrderStatus = OrderStatus.CANCELLED
    ) -> None:
        self._ledger.settle(order, status)
        self._emit(
            order.connection,
            OrderDone(
                order.connection,
                order.account,
                order.client_order_id,
                order.broker_order_id,
                reason,
            ),
        )

    def _is_held(self, order: PaperOrder) -> bool:
        """Whether ``order`` was sent on a held connection and is not released yet."""
        return order.broker_order_id in self._held_queue.get(order.connection, ())

    def _known_account(self, account: str) -> str:
        connection = self._account_connection.get(account)
        if connection is None:
            raise PaperBrokerError(
                f"unknown account {account!r}: open a session listing it or call add_accounts()"
            )
        return connection

    def _check_session_account(self, session: PaperSession, account: str) -> None:
        if account not in session.accounts:
            raise PaperBrokerError(
                f"account {account!r} is not an account of connection {session.connection!r}"
            )

    def _parse_symbol(self, symbol: str) -> None:
        problem = self._symbol_problem(symbol)
        if problem is not None:
            raise PaperBrokerError(problem)

    def _symbol_problem(self, symbol: str) -> str | None:
        try:
            self._contracts.parse(symbol)
        except SymbolError as exc:
            return str(exc)
        return None
