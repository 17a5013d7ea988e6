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
"""

from __future__ import annotations

import threading
from decimal import Decimal

from brokers.base import (
    AccountSnapshot,
    Broker,
    BrokerEvent,
    BrokerSession,
    EventSink,
    Fill,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderRequest,
    OrderType,
    PositionInfo,
    Quote,
    SessionLost,
    SessionRestored,
    Snapshot,
    TokenExpired,
    TokenIssued,
    WorkingOrder,
)
from brokers.paper.book import Book, PaperBrokerError, PaperOrder
from engine.clock import Clock
from engine.instruments import ContractTable, SymbolError

REJECT_SESSION_CLOSED = "SessionClosed"
REJECT_UNAUTHORIZED = "Unauthorized"
REJECT_DUPLICATE = "DuplicateClOrdId"
REJECT_FORCED = "Rejected by the paper broker (reject_next)"
DONE_CANCELLED = "cancelled"
DONE_NOTHING_TO_LIQUIDATE = "nothing to liquidate"


def no_quote(symbol: str) -> str:
    return f"NoQuote: no price for {symbol}"


def _check_qty(qty: object, what: str) -> int:
    if isinstance(qty, bool) or not isinstance(qty, int):
        raise PaperBrokerError(f"{what}: quantity must be an int, got {qty!r}")
    if qty == 0:
        raise PaperBrokerError(f"{what}: quantity must not be 0")
    return qty


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise PaperBrokerError(f"{what} must be a non-empty string, got {value!r}")
    return value


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


class PaperBroker(Broker):
    """The embedded default broker and the scenario broker."""

    def __init__(self, clock: Clock, contracts: ContractTable, id_prefix: str = "") -> None:
        """``id_prefix`` keeps broker ids unique across runs of a process-local broker (a live
        ``make run`` after a restart); replays leave it empty so ids are deterministic."""
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
        self._prices: dict[str, Decimal] = {}
        self._book = Book()
        self._client_order_ids: set[str] = set()  # of every order the broker accepted
        self._order_seq = 0
        self._fill_seq = 0
        self._id_prefix = id_prefix
        self._token_seq = 0

    # --- sessions and accounts --------------------------------------------------------------------

    def session(self, connection: str, accounts: tuple[str, ...], sink: EventSink) -> PaperSession:
        """Register the session of ``connection``, replacing any earlier one (which goes inert).

        The broker's own state (positions, orders, held/dropped/token state) is kept.
        """
        _check_id(connection, "connection")
        accounts = tuple(accounts)
        for account in accounts:
            _check_id(account, f"connection {connection!r}: account")
        if len(set(accounts)) != len(accounts):
            raise PaperBrokerError(f"connection {connection!r}: an account is listed twice")
        with self._lock:
            session = PaperSession(self, connection, accounts, sink)
            self._sessions[connection] = session
            for account in accounts:
                self._account_connection[account] = connection
            return session

    def add_accounts(self, connection: str, accounts: tuple[str, ...]) -> None:
        """Declare accounts of ``connection`` before (or without) any session of it."""
        _check_id(connection, "connection")
        with self._lock:
            for account in accounts:
                self._account_connection[_check_id(account, "account")] = connection

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
        with self._lock:
            self._prices[symbol] = last
            quote = Quote(symbol, last, self._clock.now())
            for session in list(self._sessions.values()):
                if self._delivering(session):
                    session._sink(quote)

    def last_price(self, symbol: str) -> Decimal | None:
        with self._lock:
            return self._prices.get(symbol)

    def trade(
        self, account: str, symbol: str, qty: int, fills: tuple[int, ...] | None = None
    ) -> None:
        """The account's owner trades at the broker: a market order filled at ``last``.

        ``fills`` splits it into parts (positive, or signed like ``qty``; summing to ``|qty|``),
        one ``Fill`` each. The position changes whether or not the session is delivering.
        """
        qty = _check_qty(qty, f"trade {account} {symbol}")
        parts = self._split(qty, fills)
        self._parse_symbol(symbol)
        with self._lock:
            connection = self._known_account(account)
            price = self._prices.get(symbol)
            if price is None:
                raise PaperBrokerError(no_quote(symbol))
            order = self._new_order(
                None, connection, account, symbol, qty=qty, order_type=OrderType.MARKET
            )
            self._emit_accepted(order)
            for index, part in enumerate(parts):
                self._execute(order, part, price, order_done=index == len(parts) - 1)

    def place_manual_working(self, account: str, symbol: str, qty: int) -> str:
        """A resting order the trader placed by hand (a stop, say); it never fills by itself."""
        qty = _check_qty(qty, f"manual order {account} {symbol}")
        self._parse_symbol(symbol)
        with self._lock:
            connection = self._known_account(account)
            order = self._new_order(
                None, connection, account, symbol, qty=qty, order_type=OrderType.MARKET
            )
            self._book.add_working(order)
            self._emit_accepted(order)
            return order.broker_order_id

    def hold(self, connection: str) -> None:
        """Engine orders of ``connection`` stay working (accepted, unfilled) until release."""
        with self._lock:
            self._held.add(_check_id(connection, "connection"))

    def release(self, connection: str) -> None:
        """Every held order fills at its symbol's current last, in the order sent."""
        with self._lock:
            queue = self._held_queue.setdefault(connection, [])
            # Orders placed by a sink while releasing join the queue, so order sent is kept.
            while queue:
                order = self._book.remove_working(queue.pop(0))
                if order is not None:
                    self._fill_engine_order(order)
            self._held.discard(connection)
            self._held_queue.pop(connection, None)

    def reject_next(self, connection: str, count: int = 1) -> None:
        """The next ``count`` engine orders of ``connection`` are rejected (adds to any left)."""
        count = _check_qty(count, f"reject_next {connection}")
        if count < 0:
            raise PaperBrokerError(f"reject_next {connection}: count must be positive")
        with self._lock:
            self._reject_next[connection] = self._reject_next.get(connection, 0) + count

    def drop(self, connection: str, reason: str = "network outage") -> None:
        """An outage: ``SessionLost``, then nothing is delivered until the session is reopened."""
        with self._lock:
            if connection in self._links_down:
                return
            self._emit(connection, SessionLost(connection, reason))
            self._links_down.add(connection)

    def expire_token(self, connection: str) -> None:
        """``TokenExpired``; then nothing is delivered and orders are rejected until reauthorize.

        The expiry always reaches the session's sink, even with the link down: an engine knows
        its token's lifetime and tracks the expiry itself (S1.1), it does not need the broker's
        word over a live link."""
        with self._lock:
            if connection in self._tokens_invalid:
                return
            self._tokens_invalid.add(connection)
            session = self._sessions.get(connection)
            if session is not None:
                session._sink(TokenExpired(connection))

    def reauthorize(self, connection: str) -> None:
        """A fresh token: valid again; ``TokenIssued`` always reaches the session's sink."""
        with self._lock:
            self._tokens_invalid.discard(connection)
            self._token_seq += 1
            session = self._sessions.get(connection)
            if session is not None:
                session._sink(TokenIssued(connection, token=f"paper-token-{self._token_seq}"))

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
        client_order_id = _check_id(request.client_order_id, "client_order_id")
        account, symbol = request.account, request.symbol
        self._check_session_account(session, account)
        if not isinstance(request.order_type, OrderType):
            raise PaperBrokerError(f"order {client_order_id}: unknown type {request.order_type!r}")
        qty = 0
        if request.order_type is OrderType.MARKET:
            qty = _check_qty(request.qty, f"order {client_order_id}")
        self._parse_symbol(symbol)
        connection = session.connection
        with self._lock:
            reason = self._refusal(session)
            if reason is None and self._reject_next.get(connection, 0) > 0:
                self._reject_next[connection] -= 1
                reason = REJECT_FORCED
            if reason is None and client_order_id in self._client_order_ids:
                reason = REJECT_DUPLICATE
            if reason is None and qty != 0 and symbol not in self._prices:
                reason = no_quote(symbol)
            if reason is not None:
                session._sink(OrderRejected(connection, account, client_order_id, reason))
                return
            self._client_order_ids.add(client_order_id)
            order = self._new_order(
                client_order_id, connection, account, symbol, qty=qty, order_type=request.order_type
            )
            self._emit_accepted(order)
            if connection in self._held:
                self._book.add_working(order)
                self._held_queue.setdefault(connection, []).append(order.broker_order_id)
            else:
                self._fill_engine_order(order)

    def _cancel_working(
        self,
        session: PaperSession,
        account: str,
        symbol: str | None,
        broker_order_ids: tuple[str, ...],
    ) -> None:
        self._check_session_account(session, account)
        wanted = set(broker_order_ids)
        with self._lock:
            if self._refusal(session) is not None:
                return  # the request does not reach the broker
            for order in self._book.working_of(account, symbol):
                if wanted and order.broker_order_id not in wanted:
                    continue
                self._book.remove_working(order.broker_order_id)
                self._emit(
                    order.connection,
                    OrderDone(
                        order.connection,
                        order.account,
                        order.client_order_id,
                        order.broker_order_id,
                        DONE_CANCELLED,
                    ),
                )

    def _request_snapshot(self, session: PaperSession, request_id: str) -> None:
        with self._lock:
            if self._refusal(session) is not None:
                return  # the request does not reach the broker
            accounts = {
                account: AccountSnapshot(
                    positions=self._book.positions(account),
                    working=tuple(order.working() for order in self._book.working_of(account)),
                )
                for account in session.accounts
                if self._account_connection.get(account) == session.connection
            }
            session._sink(Snapshot(session.connection, request_id, accounts))

    def _close(self, session: PaperSession) -> None:
        with self._lock:
            session._closed = True

    def _open(self, session: PaperSession) -> None:
        with self._lock:
            if self._sessions.get(session.connection) is not session:
                return  # replaced by a newer session: inert
            session._closed = False
            self._links_down.discard(session.connection)
            session._sink(SessionRestored(session.connection))

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
            session._sink(event)

    def _emit_accepted(self, order: PaperOrder) -> None:
        self._emit(
            order.connection,
            OrderAccepted(
                order.connection,
                order.account,
                order.client_order_id,
                order.broker_order_id,
                order.symbol,
                order.qty,
                order.order_type,
            ),
        )

    def _new_order(
        self,
        client_order_id: str | None,
        connection: str,
        account: str,
        symbol: str,
        *,
        qty: int,
        order_type: OrderType,
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
        )

    def _fill_engine_order(self, order: PaperOrder) -> None:
        """Execute an engine order in full now (a liquidation closes what is open now)."""
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
        self._execute(order, qty, price, order_done=True)

    def _execute(self, order: PaperOrder, qty: int, price: Decimal, *, order_done: bool) -> None:
        self._book.fill(order.account, order.symbol, qty, price)
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
        self._emit(order.connection, fill)

    def _done(self, order: PaperOrder, reason: str) -> None:
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
        try:
            self._contracts.parse(symbol)
        except SymbolError as exc:
            raise PaperBrokerError(str(exc)) from None

    @staticmethod
    def _split(qty: int, fills: tuple[int, ...] | None) -> list[int]:
        if fills is None:
            return [qty]
        parts = [_check_qty(part, "trade fill part") for part in fills]
        sign = 1 if qty > 0 else -1
        if not parts or not (
            all(part > 0 for part in parts) or all(part * sign > 0 for part in parts)
        ):
            raise PaperBrokerError(f"trade fills {fills!r}: parts must be positive")
        signed = [abs(part) * sign for part in parts]
        if sum(signed) != qty:
            raise PaperBrokerError(f"trade fills {fills!r} do not sum to |{qty}|")
        return signed
