"""An account's book: positions and average prices, the engine's working orders, the projected
position (S2.2's P), fills applied to both, and realized and unrealized P&L (S5.1, S5.8).

A plain class the AccountActor owns; it tells nobody and writes nothing. Prices come from the
caller, as a function of the symbol (the market's last price, else the last fill's).

What is read of the positions after every message (the account's view, the risk actor's
figures) is made once per change of them: only the book changes its positions (a fill, the
broker's snapshot, a reset's mark), and each of those starts a new generation. The working
orders are changed by the account's parts too, so nothing made of them is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from actors.messages.risk import AccountChanged, Holding
from brokers.base import AccountSnapshot, Fill
from brokers.instruments import ContractTable
from engine.domain.max_contracts import worst_case
from engine.domain.order_ids import OrderKind, kind_of
from engine.domain.positions import ZERO, Position
from engine.domain.risk_profile import RiskRules
from engine.domain.state import AccountState

Prices = Callable[[str], Decimal | None]
Exposure = tuple[tuple[str, int], ...]  # symbol, worst-case signed quantity
# Orders S2.2's P does not count: a liquidation (it takes the position to zero) and the resting
# mirrors (S8.3).
_RESTING = frozenset({OrderKind.LIQUIDATE, OrderKind.MIRROR})
_LIQUIDATE = OrderKind.LIQUIDATE


@dataclass(slots=True)
class Working:
    """An order working at the broker (or on its way there) for this account."""

    symbol: str
    qty: int  # signed remaining; 0 for a liquidation
    client_order_id: str | None
    broker_order_id: str | None = None
    kind: OrderKind | None = None
    cause: str = ""
    attempt: int = 1
    # A working order's terms (S8): shown beside the position, with the leader order a
    # mirror mirrors.
    order_type: str = "market"
    price: Decimal | None = None
    stop: Decimal | None = None
    role: str | None = None
    active: bool = True
    # Its links at the broker (broker order ids): a bracket leg's entry, an OCO sibling.
    parent: str | None = None
    oco: str | None = None


class Book:
    def __init__(
        self,
        contracts: ContractTable,
        balance: Decimal,
        state: AccountState | None = None,
        rules: RiskRules | None = None,
    ) -> None:
        self.contracts = contracts
        self.rules = rules if rules is not None else RiskRules()
        self.commissions = ZERO  # S9.1: every commission charged
        self.positions: dict[str, Position] = {}
        self.last_fill: dict[str, Decimal] = {}  # a price for P&L before any quote arrives
        self.working: dict[str, Working] = {}  # by client order id, else broker order id
        self.balance = balance
        self.realized_daily = ZERO
        self.realized_weekly = ZERO
        if state is not None:  # rebuilt from the store, never from memory (S7.2)
            self.balance = state.balance
            self.realized_daily = state.realized_daily
            self.realized_weekly = state.realized_weekly
            self.positions = {s: Position(q, r) for s, (q, r) in state.positions.items() if q}
            self.commissions = state.commissions
        # What is shown of the positions, made once per generation of them and shared by every
        # view and message until they change (never changed in place): the open quantities in
        # symbol order, and the holdings (S5.1). ``None``: to be made again.
        self._shown: dict[str, int] | None = None
        self._holdings: dict[str, Holding] = {}

    def _made(self) -> dict[str, int]:
        shown = self._shown
        if shown is None:
            point_value, last_fill = self.contracts.point_value, self.last_fill
            self._holdings = {
                s: Holding(p.qty, p.reference, point_value(s), last_fill.get(s))
                for s, p in self.positions.items()
                if p.qty
            }
            shown = self._shown = {s: h.qty for s, h in sorted(self._holdings.items())}
        return shown

    # -- positions ---------------------------------------------------------------------------

    def position(self, symbol: str) -> int:
        pos = self.positions.get(symbol)
        return pos.qty if pos else 0

    def held(self) -> dict[str, int]:
        """Every open position's quantity, by symbol."""
        return {s: p.qty for s, p in self.positions.items() if p.qty}

    def shown(self) -> Mapping[str, int]:
        """Every open position's quantity, in symbol order: what the account's view shows
        (shared until the positions change; not to be changed)."""
        return self._made()

    def projected(self, symbol: str) -> int:
        """P of S2.2: the position once the engine's working orders in ``symbol`` have filled.
        A working liquidation takes the position to zero whatever it is when it fills."""
        base = self.position(symbol)
        extra = 0
        for order in self.working.values():
            if order.symbol != symbol or order.kind is None or order.kind is OrderKind.MIRROR:
                continue
            if order.kind is OrderKind.LIQUIDATE:
                base = 0
            else:
                extra += order.qty
        return base + extra

    def in_flight(self, symbol: str, but: str) -> tuple[tuple[str, int], ...]:
        """The engine's orders in ``symbol`` counted in :meth:`projected` that the broker has not
        answered yet (all but ``but``), by client order id: the gate may still refuse or clip
        them, and an order sized on them is then judged on what of them went (S5.4)."""
        return tuple(
            (w.client_order_id, w.qty)
            for w in self.working.values()
            if w.symbol == symbol
            and w.broker_order_id is None
            and w.client_order_id
            and w.client_order_id != but
            and w.kind is not None
            and w.kind not in _RESTING
        )

    def projection(self) -> dict[str, int]:
        """:meth:`projected` of every symbol held or with a working order, in one pass (the
        held positions themselves while nothing works)."""
        projected = self.held()
        for order in self.working.values():
            if order.kind is None:
                continue
            if order.kind is OrderKind.LIQUIDATE:
                projected[order.symbol] = 0
        for order in self.working.values():
            if order.kind is not None and order.kind not in _RESTING:
                projected[order.symbol] = projected.get(order.symbol, 0) + order.qty
        return projected

    def apply(self, fill: Fill) -> int:
        """Apply a fill to its position, the period's realized P&L and the working order it
        fills; returns the position in its symbol before it."""
        symbol = fill.symbol
        before = self.position(symbol)
        self._shown = None
        pos = self.positions.setdefault(symbol, Position())
        realized = pos.apply(fill.qty, fill.price, self.contracts.point_value(symbol))
        if self.rules.charges:  # S9.1: per contract per side, at the fill
            charge = abs(fill.qty) * self.rules.commission_for(symbol)
            realized -= charge
            self.commissions += charge
        self.realized_daily += realized
        self.realized_weekly += realized
        self.last_fill[symbol] = fill.price
        if pos.qty == 0:
            del self.positions[symbol]
        key = fill.client_order_id or fill.broker_order_id
        order = self.working.get(key)
        if order is not None:
            order.qty -= 0 if order.kind is OrderKind.LIQUIDATE else fill.qty
            if fill.order_done:
                del self.working[key]
        return before

    def confirm(self, snapshot: AccountSnapshot, unanswered: Mapping[str, Working]) -> None:
        """The broker's word replaces the book: its positions, and its working orders beside
        ``unanswered`` (orders sent that it has not answered yet)."""
        self._shown = None
        self.positions = {
            symbol: Position(info.qty, info.avg_price)
            for symbol, info in snapshot.positions.items()
            if info.qty
        }
        working = dict(unanswered)
        for order in snapshot.working:
            key = order.client_order_id or order.broker_order_id
            working[key] = Working(
                order.symbol,
                order.qty,
                order.client_order_id,
                order.broker_order_id,
                kind_of(order.client_order_id),
                order_type=order.order_type.value,
                price=order.price,
                stop=order.stop,
                role=None if order.role is None else order.role.value,
                active=order.active,
                parent=order.parent,
                oco=order.oco,
            )
        self.working = working

    # -- working orders ------------------------------------------------------------------------

    def liquidating(self) -> bool:
        working = self.working
        return bool(working) and any(w.kind is _LIQUIDATE for w in working.values())

    def leftovers(self, symbol: str) -> tuple[str, ...]:
        """Orders in ``symbol`` the engine did not send (a trader's stop, a target), by broker
        order id: cancelled once the position is flat (S2.10)."""
        return tuple(
            w.broker_order_id
            for w in self.working.values()
            if w.symbol == symbol and w.kind is None and w.broker_order_id
        )

    # -- P&L (S5.1) and resets (S5.8) ----------------------------------------------------------

    def unrealized(self, last_price: Prices) -> Decimal:
        total = ZERO
        for symbol, pos in self.positions.items():
            total += pos.unrealized(last_price(symbol), self.contracts.point_value(symbol))
        return total

    def reset(self, kind: str, last_price: Prices) -> None:
        """Mark open positions to the last price (futures settle daily), roll realized into
        the balance, and zero the period's figures."""
        self._shown = None
        for symbol, pos in self.positions.items():
            last = last_price(symbol)
            if last is None or not pos.qty:
                continue
            marked = pos.unrealized(last, self.contracts.point_value(symbol))
            self.realized_daily += marked
            self.realized_weekly += marked
            pos.reference = last
        self.balance += self.realized_daily
        self.realized_daily = ZERO
        if kind == "weekly":
            self.realized_weekly = ZERO

    # -- what others are told ------------------------------------------------------------------

    def state(self, drift: Mapping[str, int] | None = None) -> AccountState:
        """What is durable of the book (S7.2), with the follower's open drift episodes
        (S10.1), which the account's drift watch keeps."""
        return AccountState(
            self.balance,
            self.realized_daily,
            self.realized_weekly,
            {s: (p.qty, p.reference) for s, p in self.positions.items() if p.qty},
            self.commissions,
            {} if drift is None else drift,
        )

    def holdings(self) -> Mapping[str, Holding]:
        """Every open position with what pricing it takes (S5.1), in the positions' order
        (shared until the positions change; not to be changed)."""
        self._made()
        return self._holdings

    def figures(self, *, confirmed: bool) -> AccountChanged:
        """Everything the risk actor's S5.1 figures need."""
        working = self.working  # none (between copies, mostly): P is what is held
        return AccountChanged(
            positions=self.holdings(),
            realized_daily=self.realized_daily,
            realized_weekly=self.realized_weekly,
            balance=self.balance,
            liquidations={
                w.symbol: w.client_order_id
                for w in working.values()
                if w.kind is _LIQUIDATE and w.client_order_id
            },
            confirmed=confirmed,
            working=sum(1 for w in working.values() if w.kind is not _LIQUIDATE) if working else 0,
            projection=self.projection() if working else self.held(),
            resting=self.resting() if working else {},
            commissions=self.commissions,
        )

    def exposure(
        self, symbol: str, but: str
    ) -> tuple[tuple[int, int], tuple[tuple[str, int], ...]]:
        """S9.2, for an order in ``symbol`` (client order id ``but``) the gate judges against
        max contracts: the resting orders in its symbol beside it, and every other symbol's
        worst case (P plus the resting orders on the side that adds to it)."""
        resting = self.resting(but)
        projection = self.projection()
        others: list[tuple[str, int]] = []
        for other in sorted((projection.keys() | resting.keys()) - {symbol}):
            worst = worst_case(projection.get(other, 0), resting.get(other, (0, 0)))
            if worst:
                others.append((other, worst))
        return resting.get(symbol, (0, 0)), tuple(others)

    def resting(self, but: str | None = None) -> dict[str, tuple[int, int]]:
        """S9.2: the working orders S2.2's P does not count (resting mirrors, the trader's own)
        that could still open, by symbol: (buy qty, sell qty), all but the order ``but``. A
        bracket's exit legs close; of an OCO pair on one side only one can fill, so the pair
        counts as its larger order."""
        out: dict[str, tuple[int, int]] = {}
        by_broker = {w.broker_order_id: w for w in self.working.values() if w.broker_order_id}
        for key, order in self.working.items():
            if order.kind not in (None, OrderKind.MIRROR) or order.parent is not None:
                continue
            if (but is not None and key == but) or not order.qty or not order.active:
                continue
            qty = order.qty
            sibling = by_broker.get(order.oco) if order.oco else None
            if sibling is not None and (sibling.qty > 0) == (qty > 0):
                if (sibling.broker_order_id or "") < (order.broker_order_id or ""):
                    continue  # the pair was counted at its first order
                qty = max(qty, sibling.qty, key=abs)
            buys, sells = out.get(order.symbol, (0, 0))
            if qty > 0:
                buys += qty
            else:
                sells -= qty
            out[order.symbol] = (buys, sells)
        return out
