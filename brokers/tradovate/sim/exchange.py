"""The local server's exchange: accounts, order matching at the quoted price, positions.

No I/O here: the HTTP and WebSocket layer (:mod:`brokers.tradovate.sim.server`) calls in and
listens for pushes. Market orders fill in full at the contract's last trade price; limit and
stop orders rest until a quote reaches them; a liquidation cancels the contract's working orders
and closes the position at the last price. Controls for tests and scenarios: ``trade`` (the
account owner trades by hand), ``hold``/``release`` (automated orders of a user stay working,
then fill in the order sent), ``reject_next`` (in any of Tradovate's refusal shapes),
``success_reason`` (answers that carry ``failureReason: "Success"``), ``push_fill_again`` (a fill
pushed again as ``Updated``) and ``withdraw_fill`` (a fill withdrawn: ``active: false``, the
position corrected). Time comes from the given clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from brokers.clock import Clock
from brokers.instruments import ContractTable, SymbolError
from brokers.tradovate.sim import working
from brokers.tradovate.sim.book import (
    SimAccount,
    SimContract,
    SimError,
    SimFill,
    SimOrder,
    SimPosition,
    SimUser,
    stamp,
)

PropsListener = Callable[[int, str, str, dict[str, Any]], None]  # user, entity, event, entity
QuoteListener = Callable[[SimContract, Decimal], None]

REJECT_FORCED = "Rejected by the local server (reject_next)"
ORDER_TYPES = working.ORDER_TYPES
# How a refusal is worded: Tradovate answers business errors in these shapes (HTTP 200).
REJECT_SHAPES = ("failureReason", "failureText", "errorText", "violations")
# The sync answer's lists, by the entity type that asks for them (``entityTypes``).
SYNC_LISTS = {
    "account": "accounts",
    "cashBalance": "cashBalances",
    "contract": "contracts",
    "position": "positions",
    "order": "orders",
    "orderVersion": "orderVersions",
    "command": "commands",
    "fill": "fills",
}


def failure(reason: str, text: str) -> dict[str, Any]:
    return {"failureReason": reason, "failureText": text}


def violation(description: str) -> dict[str, Any]:
    return {"violations": [{"constraint": "invalid", "description": description}]}


def refusal(shape: str, text: str) -> dict[str, Any]:
    """A refusal in one of Tradovate's shapes."""
    if shape == "failureReason":
        return failure("UnknownReason", text)
    if shape == "failureText":
        return {"failureText": text}
    if shape == "errorText":
        return {"errorText": text}
    if shape == "violations":
        return violation(text)
    raise SimError(f"unknown refusal shape {shape!r} (one of {', '.join(REJECT_SHAPES)})")


class SimExchange:
    def __init__(
        self,
        clock: Clock,
        contracts: ContractTable | None = None,
        balance: Decimal = Decimal(50000),
    ) -> None:
        self.clock = clock
        self.table = contracts if contracts is not None else ContractTable()
        self.balance = balance
        self.users: dict[int, SimUser] = {}
        self.accounts: dict[int, SimAccount] = {}
        self.contracts: dict[int, SimContract] = {}
        self.orders: dict[int, SimOrder] = {}
        self.fills: list[SimFill] = []
        self.positions: dict[tuple[int, int], SimPosition] = {}
        self.prices: dict[int, Decimal] = {}
        self.held: set[int] = set()  # users whose automated orders stay working
        self.held_queue: list[int] = []  # order ids, as sent
        self.reject_next: dict[int, list[str]] = {}  # user -> shapes of the next refusals
        self.success_reason: set[int] = set()  # users whose answers say failureReason: Success
        self.props_listeners: list[PropsListener] = []
        self.quote_listeners: list[QuoteListener] = []
        self._ids = {
            kind: itertools.count(start)
            for kind, start in (
                ("user", 1),
                ("account", 100),
                ("contract", 3000),
                ("product", 900),
                ("order", 10_000),
                ("fill", 50_000),
                ("command", 70_000),
                ("position", 90_000),
                ("version", 200_000),
                ("report", 300_000),
            )
        }

    def _next(self, kind: str) -> int:
        return next(self._ids[kind])

    # -- setup -------------------------------------------------------------------------------------

    def add_user(
        self, name: str, accounts: Iterable[str] = (), balance: Decimal | None = None
    ) -> SimUser:
        """A login with its accounts (idempotent: adds the accounts it does not have yet)."""
        user = next((u for u in self.users.values() if u.name == name), None)
        if user is None:
            user = SimUser(self._next("user"), name)
            self.users[user.id] = user
        for account in accounts:
            found = self.find_account(account)
            if found is None:
                created = SimAccount(
                    self._next("account"),
                    account,
                    user.id,
                    self.balance if balance is None else balance,
                )
                self.accounts[created.id] = created
            elif found.user_id != user.id:
                raise SimError(f"account {account!r} belongs to another user")
        return user

    def user(self, name: str) -> SimUser:
        found = next((u for u in self.users.values() if u.name == name), None)
        if found is None:
            raise SimError(f"no user {name!r} at the local server")
        return found

    def find_account(self, name: str) -> SimAccount | None:
        return next((a for a in self.accounts.values() if a.name == name), None)

    def account(self, name: str) -> SimAccount:
        found = self.find_account(name)
        if found is None:
            raise SimError(f"no account {name!r} at the local server")
        return found

    def accounts_of(self, user_id: int) -> list[SimAccount]:
        return [a for a in self.accounts.values() if a.user_id == user_id]

    def contract(self, name: str) -> SimContract | None:
        """The contract named ``name``, listed on first use when its root is known."""
        found = next((c for c in self.contracts.values() if c.name == name), None)
        if found is not None:
            return found
        try:
            root = self.table.parse(name).root
        except SymbolError:
            return None
        known = self.table.contract(root)
        product_id = next(
            (c.product_id for c in self.contracts.values() if c.root == root), None
        ) or self._next("product")
        created = SimContract(
            self._next("contract"), name, root, product_id, known.point_value, known.tick_size
        )
        self.contracts[created.id] = created
        return created

    def product(self, root: str) -> dict[str, Any] | None:
        if root not in self.table:
            return None
        existing = next((c for c in self.contracts.values() if c.root == root), None)
        if existing is not None:
            return existing.product_entity()
        known = self.table.contract(root)
        return {
            "id": 0,
            "name": root,
            "valuePerPoint": known.point_value,
            "tickSize": known.tick_size,
            "productType": "Futures",
        }

    # -- market ------------------------------------------------------------------------------------

    def set_price(self, symbol: str, price: Decimal) -> None:
        contract = self.contract(symbol)
        if contract is None:
            raise SimError(f"unknown contract {symbol!r}")
        if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
            raise SimError(f"price of {symbol}: {price!r} is not a positive Decimal")
        self.prices[contract.id] = price
        for listener in list(self.quote_listeners):
            listener(contract, price)
        for order in list(self.orders.values()):
            if (
                order.contract_id == contract.id
                and order.working
                and order.id not in self.held_queue
            ):
                self._maybe_trigger(order, price)

    def last(self, symbol: str) -> Decimal | None:
        contract = self.contract(symbol)
        return None if contract is None else self.prices.get(contract.id)

    # -- REST commands (answers are Tradovate's JSON) ----------------------------------------------

    def place_order(self, user_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        return working.place(self, user_id, body)

    def place_oso_order(self, user_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """An entry with its bracket (``bracket1``, ``bracket2``), suspended until it fills."""
        return working.place(self, user_id, body, "oso")

    def place_oco_order(self, user_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """Two orders (the body's and ``other``): the first to fill cancels the other."""
        return working.place(self, user_id, body, "oco")

    def modify_order(self, user_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        return working.modify(self, user_id, body)

    def liquidate_position(self, user_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        account = self._body_account(user_id, body)
        if isinstance(account, dict):
            return account
        contract_id = body.get("contractId")
        contract = self.contracts.get(contract_id) if isinstance(contract_id, int) else None
        if contract is None:
            return failure("UnknownReason", f"Unknown contract id {contract_id!r}")
        forced = self._forced_refusal(user_id)
        if forced is not None:
            return forced
        for order in list(self.orders.values()):
            same = order.account_id == account.id and order.contract_id == contract.id
            if same and order.live and not order.liquidation:
                self._cancel(order)
        net = self._position(account.id, contract.id).net_pos
        if net and contract.id not in self.prices and user_id not in self.held:
            return failure("NoQuote", f"No quote for {contract.name}")
        order = self._new_order(
            account,
            contract,
            -1 if net > 0 else 1,
            abs(net),
            "Market",
            automated=bool(body.get("isAutomated")),
            liquidation=True,
        )
        self._announce(order)
        self._start(order)
        return self._accepted(user_id, order)

    def cancel_order(self, user_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        order_id = body.get("orderId")
        order = self.orders.get(order_id) if isinstance(order_id, int) else None
        if order is None or self.accounts[order.account_id].user_id != user_id:
            return failure("UnknownReason", f"Unknown order {order_id!r}")
        if not order.live:
            return failure("UnknownReason", f"Order {order.id} is {order.status}, not working")
        self._cancel(order)
        answer: dict[str, Any] = {"commandId": self._next("command")}
        if user_id in self.success_reason:
            answer["failureReason"] = "Success"
        return answer

    def _accepted(self, user_id: int, order: SimOrder) -> dict[str, Any]:
        if user_id in self.success_reason:
            return {"orderId": order.id, "failureReason": "Success", "failureText": ""}
        return {"orderId": order.id}

    def _forced_refusal(self, user_id: int) -> dict[str, Any] | None:
        shapes = self.reject_next.get(user_id)
        if not shapes:
            return None
        return refusal(shapes.pop(0), REJECT_FORCED)

    # -- controls ----------------------------------------------------------------------------------

    def trade(
        self, account_name: str, symbol: str, qty: int, fills: tuple[int, ...] | None = None
    ) -> int:
        """The account's owner trades by hand: a market order at the last price (in parts)."""
        account = self.account(account_name)
        contract = self.contract(symbol)
        if contract is None:
            raise SimError(f"unknown contract {symbol!r}")
        price = self.prices.get(contract.id)
        if price is None:
            raise SimError(f"no price for {symbol}")
        if isinstance(qty, bool) or not isinstance(qty, int) or qty == 0:
            raise SimError(f"trade {account_name} {symbol}: quantity must be a non-zero int")
        parts = [abs(part) for part in (fills or (qty,))]
        if sum(parts) != abs(qty) or any(part <= 0 for part in parts):
            raise SimError(f"trade fills {fills!r} do not sum to |{qty}|")
        order = self._new_order(account, contract, 1 if qty > 0 else -1, abs(qty), "Market")
        self._announce(order)
        for part in parts:
            self._execute(order, part, price)
        return order.id

    def place_manual_working(self, account_name: str, symbol: str, qty: int) -> int:
        """A resting order the trader placed by hand, far from the market: it never fills."""
        account = self.account(account_name)
        contract = self.contract(symbol)
        if contract is None:
            raise SimError(f"unknown contract {symbol!r}")
        far = Decimal(1) if qty > 0 else Decimal(10) ** 7
        order = self._new_order(
            account, contract, 1 if qty > 0 else -1, abs(qty), "Limit", price=far
        )
        self._announce(order)
        return order.id

    def hold(self, user_name: str) -> None:
        self.held.add(self.user(user_name).id)

    def release(self, user_name: str) -> None:
        user = self.user(user_name)
        self.held.discard(user.id)
        queue = [
            i
            for i in self.held_queue
            if self.accounts[self.orders[i].account_id].user_id == user.id
        ]
        self.held_queue = [i for i in self.held_queue if i not in queue]
        for order_id in queue:
            order = self.orders[order_id]
            if order.working:
                self._run(order)

    def set_reject_next(self, user_name: str, count: int, shape: str = "failureReason") -> None:
        if shape not in REJECT_SHAPES:
            raise SimError(f"unknown refusal shape {shape!r} (one of {', '.join(REJECT_SHAPES)})")
        user = self.user(user_name)
        self.reject_next.setdefault(user.id, []).extend([shape] * count)

    def set_success_reason(self, user_name: str, on: bool = True) -> None:
        user = self.user(user_name)
        if on:
            self.success_reason.add(user.id)
        else:
            self.success_reason.discard(user.id)

    def push_fill_again(self, *fill_ids: int) -> None:
        """Fills pushed again, unchanged, as ``Updated``, one after the other (they must count
        once each)."""
        for fill_id in fill_ids:
            fill = self._fill(fill_id)
            self._push(self.orders[fill.order_id], "fill", "Updated", fill.entity())

    def withdraw_fill(self, fill_id: int) -> None:
        """The broker withdraws a fill: ``Updated`` with ``active: false``, and the position
        without it."""
        fill = self._fill(fill_id)
        if not fill.active:
            raise SimError(f"fill {fill_id} is withdrawn already")
        fill.active = False
        order = self.orders[fill.order_id]
        contract = self.contracts[fill.contract_id]
        position = self._position(fill.account_id, fill.contract_id)
        position.apply(-fill.side * fill.qty, fill.price, contract.value_per_point)
        position.timestamp = self.clock.now()
        order.filled -= fill.qty
        self._push(order, "fill", "Updated", fill.entity())
        self._push(order, "position", "Updated", position.entity())

    def _fill(self, fill_id: int) -> SimFill:
        found = next((f for f in self.fills if f.id == fill_id), None)
        if found is None:
            raise SimError(f"no fill {fill_id} at the local server")
        return found

    # -- reads -------------------------------------------------------------------------------------

    def position(self, account_name: str, symbol: str) -> int:
        contract = self.contract(symbol)
        account = self.account(account_name)
        if contract is None:
            return 0
        found = self.positions.get((account.id, contract.id))
        return found.net_pos if found else 0

    def orders_of(self, user_id: int) -> list[SimOrder]:
        mine = {a.id for a in self.accounts_of(user_id)}
        return [o for o in self.orders.values() if o.account_id in mine]

    def fills_of(self, user_id: int) -> list[SimFill]:
        mine = {a.id for a in self.accounts_of(user_id)}
        return [f for f in self.fills if f.account_id in mine]

    def positions_of(self, user_id: int) -> list[SimPosition]:
        mine = {a.id for a in self.accounts_of(user_id)}
        return [p for p in self.positions.values() if p.account_id in mine]

    def open_pnl(self, account_id: int) -> Decimal:
        total = Decimal(0)
        for p in self.positions.values():
            last = self.prices.get(p.contract_id)
            if p.account_id == account_id and p.net_pos and last is not None:
                value = self.contracts[p.contract_id].value_per_point
                total += (last - p.net_price) * p.net_pos * value
        return total

    def sync(self, user_id: int, entity_types: Iterable[str] | None = None) -> dict[str, Any]:
        """The answer to ``user/syncrequest``: everything the user's accounts hold today — only
        the lists of ``entity_types`` when the request names them (``users`` always)."""
        user = self.users[user_id]
        accounts = self.accounts_of(user_id)
        orders = self.orders_of(user_id)
        positions = self.positions_of(user_id)
        fills = self.fills_of(user_id)
        used = {o.contract_id for o in orders} | {p.contract_id for p in positions}
        lists = {
            "accounts": lambda: [a.entity() for a in accounts],
            "cashBalances": lambda: [a.cash_entity(self.open_pnl(a.id)) for a in accounts],
            "contracts": lambda: [self.contracts[c].entity() for c in sorted(used)],
            "positions": lambda: [p.entity() for p in positions],
            "orders": lambda: [o.entity() for o in orders],
            "orderVersions": lambda: [o.version_entity() for o in orders],
            "commands": lambda: [o.command_entity() for o in orders],
            "fills": lambda: [f.entity() for f in fills],
        }
        keys = (
            list(lists)
            if entity_types is None
            else [SYNC_LISTS[t] for t in entity_types if t in SYNC_LISTS]
        )
        answer: dict[str, Any] = {"users": [user.entity()]}
        for key in keys:
            answer[key] = lists[key]()
        return answer

    # -- internals ---------------------------------------------------------------------------------

    def _body_account(self, user_id: int, body: Mapping[str, Any]) -> SimAccount | dict[str, Any]:
        account_id = body.get("accountId")
        spec = body.get("accountSpec")
        account = None
        if isinstance(account_id, int) and not isinstance(account_id, bool):
            account = self.accounts.get(account_id)
        elif isinstance(spec, str):
            account = self.find_account(spec)
        else:
            return violation("accountId or accountSpec is required")
        if account is None or account.user_id != user_id:
            return failure("UnknownReason", "Access is denied to this account")
        return account

    def _new_order(
        self,
        account: SimAccount,
        contract: SimContract,
        side: int,
        qty: int,
        order_type: str,
        *,
        cl_ord_id: str | None = None,
        automated: bool = False,
        liquidation: bool = False,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        tif: str = "Day",
    ) -> SimOrder:
        order = SimOrder(
            self._next("order"),
            account.id,
            contract.id,
            side,
            qty,
            order_type,
            self.clock.now(),
            cl_ord_id=cl_ord_id,
            automated=automated,
            liquidation=liquidation,
            price=price,
            stop_price=stop_price,
            command_id=self._next("command"),
            tif=tif,
            version_id=self._next("version"),
        )
        self.orders[order.id] = order
        return order

    def _user_of(self, order: SimOrder) -> int:
        return self.accounts[order.account_id].user_id

    def _push(self, order: SimOrder, entity_type: str, event: str, entity: dict[str, Any]) -> None:
        user = self._user_of(order)
        for listener in list(self.props_listeners):
            listener(user, entity_type, event, entity)

    def _announce(self, *orders: SimOrder) -> None:
        """New orders, placed together: their commands, then the orders (linked by ``parentId``
        and ``ocoId``), their versions and their execution reports."""
        for order in orders:
            self._push(order, "command", "Created", order.command_entity())
        for order in orders:
            self._push(order, "order", "Created", order.entity())
        for order in orders:
            self._push(order, "orderVersion", "Created", order.version_entity())
        for order in orders:
            self._report(order, "New")

    def _report(self, order: SimOrder, exec_type: str) -> None:
        report = order.execution_entity(self._next("report"), exec_type, self.clock.now())
        self._push(order, "executionReport", "Created", report)

    def _start(self, order: SimOrder) -> None:
        """A new engine order: rest it (held user, limit, stop) or execute it now."""
        if order.automated and self._user_of(order) in self.held:
            self.held_queue.append(order.id)
            return
        self._run(order)

    def _run(self, order: SimOrder) -> None:
        if order.liquidation:
            net = self._position(order.account_id, order.contract_id).net_pos
            order.side, order.qty = (-1 if net > 0 else 1), abs(net)
            if net == 0:
                order.text = "Nothing to liquidate"
                self._set_status(order, "Canceled")
                return
        price = self.prices.get(order.contract_id)
        if order.order_type == "Market":
            if price is None:
                order.text = "No quote"
                self._set_status(order, "Rejected")
                return
            self._execute(order, order.remaining, price)
        elif price is not None:
            self._maybe_trigger(order, price)

    def _maybe_trigger(self, order: SimOrder, price: Decimal) -> None:
        """Work ``order`` against ``price`` (the last trade), as S8.10 says: a market order and
        a triggered stop fill at it; a limit — a triggered stop-limit too — fills at its own
        price once the market reaches it."""
        if order.order_type == "Market":
            self._execute(order, order.remaining, price)
            return
        if order.order_type in ("Stop", "StopLimit") and not order.triggered:
            assert order.stop_price is not None
            reached = price >= order.stop_price if order.side > 0 else price <= order.stop_price
            if not reached:
                return
            if order.order_type == "Stop":
                self._execute(order, order.remaining, price)
                return
            order.triggered = True
        assert order.price is not None
        if (order.side > 0 and price <= order.price) or (order.side < 0 and price >= order.price):
            self._execute(order, order.remaining, order.price)

    def _execute(self, order: SimOrder, qty: int, price: Decimal) -> None:
        contract = self.contracts[order.contract_id]
        account = self.accounts[order.account_id]
        now = self.clock.now()
        fill = SimFill(
            self._next("fill"), order.id, account.id, contract.id, order.side, qty, price, now
        )
        self.fills.append(fill)
        position = self._position(account.id, contract.id)
        realized = position.apply(order.side * qty, price, contract.value_per_point)
        position.timestamp = now
        account.realized += realized
        account.week_realized += realized
        order.filled += qty
        self._push(order, "fill", "Created", fill.entity())
        self._push(order, "position", "Updated", position.entity())
        if order.remaining <= 0:
            self._set_status(order, "Filled")
        if realized:
            self._push(
                order, "cashBalance", "Updated", account.cash_entity(self.open_pnl(account.id))
            )
        working.after_fill(self, order)

    def _cancel(self, order: SimOrder) -> None:
        if order.id in self.held_queue:
            self.held_queue.remove(order.id)
        self._set_status(order, "Canceled")
        working.after_cancel(self, order)

    def _set_status(self, order: SimOrder, status: str) -> None:
        order.status = status
        self._push(order, "order", "Updated", order.entity())
        self._report(order, {"Working": "Triggered", "Filled": "Trade"}.get(status, status))

    def _position(self, account_id: int, contract_id: int) -> SimPosition:
        key = (account_id, contract_id)
        found = self.positions.get(key)
        if found is None:
            found = SimPosition(self._next("position"), account_id, contract_id)
            self.positions[key] = found
        return found

    def timestamp(self) -> str:
        return stamp(self.clock.now())
