"""S10.5: what a follower's trading day is made of, read from the store by the time indexes —
its copy orders (the ledger), their fills and the leader fills they copy (the fills table), and
its skips, rejections, drift episodes and missed copies (the activity log).

The figures are ``engine.domain.reports``'s; this module only gathers the rows. Every read first
waits for the writes queued before it, so a report shows what the engine has done so far.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.domain.reports import CopyFill, CopyTrace, FollowerDay, day_window, follower_day
from engine.storage.store import Store

TickSize = Callable[[str], Decimal | None]  # a symbol's tick size; None: not in the table
COPY_KINDS = ("copy", "mirror")  # the ledger's labels of the orders a report counts as copies
COUNTED = ("skip", "rejection", "drift", "missed_copy")  # activity kinds a report counts
# How long before a copy order its leader fill may have come (a copy that waited for a
# snapshot, a closing copy retried): the leader fills read reach back this far.
LEADER_LOOKBACK = timedelta(days=1)
LOOKUP_CHUNK = 500


def _account(account: str | None) -> tuple[str, list[Any]]:
    return ("", []) if account is None else (" AND account = ?", [account])


class Reports:
    """The reports of one store, read-only."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self._store.query(sql, params)

    def known(self, account: str) -> bool:
        """Whether the store has any order, fill or activity entry of ``account`` (a deleted
        account's records stay)."""
        return any(
            self._query(f"SELECT 1 FROM {table} WHERE account = ? LIMIT 1", [account])
            # fills last: they are read by time, an account's by scanning (an account with
            # fills has orders or entries almost always)
            for table in ("orders", "activity", "fills")
        )

    def day(
        self,
        day: date,
        tick: TickSize,
        *,
        account: str | None = None,
        followers: Iterable[str] = (),
    ) -> list[FollowerDay]:
        """Trading day ``day`` of every follower with a copy order or a counted entry in it,
        and of each of ``followers`` (all zero where nothing happened), by account id; with
        ``account``, that account's only. :class:`~engine.domain.reports.NotATradingDay` for
        a Saturday."""
        start, end = day_window(day)
        self._store.caught_up()  # while the disk refuses writes: what is committed so far
        counts = self._counts(start, end, account)
        orders = self._orders(start, end, account)
        fills = self._fills_of([str(o["client_order_id"]) for o in orders])
        leaders = self._leader_fills(
            {name for o in orders if o["kind"] == "copy" and (name := _leader(str(o["cause"])))},
            start - LEADER_LOOKBACK,
            end,
        )
        by_account: dict[str, list[Any]] = defaultdict(list)
        for order in orders:
            by_account[str(order["account"])].append(order)
        names = set(by_account) | {a for a, kinds in counts.items() if kinds}
        names |= set(followers) if account is None else {account}
        if account is not None:
            names &= {account}
        out = []
        for name in sorted(names):
            mine = by_account.get(name, [])
            traces = [
                _trace(order, fills.get(str(order["client_order_id"]), ()), leaders, tick)
                for order in mine
                if order["kind"] == "copy"
            ]
            out.append(
                follower_day(
                    name,
                    day,
                    copies=len(mine),
                    filled=sum(1 for o in mine if str(o["client_order_id"]) in fills),
                    counts=counts.get(name, {}),
                    traces=traces,
                )
            )
        return out

    def _counts(
        self, start: datetime, end: datetime, account: str | None
    ) -> dict[str, dict[str, int]]:
        where, params = _account(account)
        marks = ", ".join("?" * len(COUNTED))
        rows = self._query(
            "SELECT account, kind, count(*) FROM activity WHERE time >= ? AND time < ?"
            f" AND kind IN ({marks}) AND account IS NOT NULL{where} GROUP BY account, kind",
            [start.isoformat(), end.isoformat(), *COUNTED, *params],
        )
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for name, kind, count in rows:
            out[str(name)][str(kind)] = int(count)
        return out

    def _orders(self, start: datetime, end: datetime, account: str | None) -> list[Any]:
        where, params = _account(account)
        return self._query(
            "SELECT client_order_id, account, symbol, kind, cause, created_at FROM orders"
            " WHERE created_at >= ? AND created_at < ? AND kind IN (?, ?)"
            f" AND status != 'not_sent'{where} ORDER BY created_at",
            [start.isoformat(), end.isoformat(), *COPY_KINDS, *params],
        )

    def _fills_of(self, orders: list[str]) -> dict[str, list[CopyFill]]:
        """The fills of each of ``orders`` (client order ids), in the order they came."""
        out: dict[str, list[CopyFill]] = defaultdict(list)
        for first in range(0, len(orders), LOOKUP_CHUNK):
            chunk = orders[first : first + LOOKUP_CHUNK]
            rows = self._query(
                "SELECT client_order_id, time, qty, price FROM fills"
                f" WHERE client_order_id IN ({', '.join('?' * len(chunk))}) ORDER BY seq",
                chunk,
            )
            for coid, time, qty, price in rows:
                out[str(coid)].append(
                    CopyFill(datetime.fromisoformat(time), int(qty), Decimal(price))
                )
        return out

    def _leader_fills(
        self, leaders: set[str], since: datetime, until: datetime
    ) -> dict[str, tuple[datetime, Decimal]]:
        """By cause (``LEADER:fill id``): when each leader fill came and its price."""
        out: dict[str, tuple[datetime, Decimal]] = {}
        for leader in sorted(leaders):
            rows = self._query(
                "SELECT fill_id, time, price FROM fills"
                " WHERE account = ? AND time >= ? AND time < ? ORDER BY seq",
                [leader, since.isoformat(), until.isoformat()],
            )
            for fill_id, time, price in rows:
                out.setdefault(
                    f"{leader}:{fill_id}", (datetime.fromisoformat(time), Decimal(price))
                )
        return out


def _leader(cause: str) -> str | None:
    """The leader account a copy's cause names (``LEADER:fill id``; ids hold no colon)."""
    leader, colon, _ = cause.partition(":")
    return leader if colon else None


def _trace(
    order: Any,
    fills: Sequence[CopyFill],
    leaders: dict[str, tuple[datetime, Decimal]],
    tick: TickSize,
) -> CopyTrace:
    leader = leaders.get(str(order["cause"]))
    return CopyTrace(
        sent=datetime.fromisoformat(order["created_at"]),
        fills=tuple(fills),
        leader_received=None if leader is None else leader[0],
        leader_price=None if leader is None else leader[1],
        tick=tick(str(order["symbol"])),
    )


__all__ = ["COPY_KINDS", "Reports", "TickSize"]
