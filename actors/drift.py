"""S10.1, S10.2: a follower's drift from where its leader puts it, watched in its own account
actor. Part of ``AccountActor``, which owns it.

The follower has its book (broker-confirmed positions, the engine's orders in flight), its
connection's state and whether its flatten is in flight; its group tells it the rest
(``DriftWatch``: the membership's terms and whether it is enabled, the group's ``on_drift``,
the leader's confirmed positions), and it keeps the leader's positions current from each copy
offer's ``after`` — every member is offered every leader fill, a disabled one too. So a check
costs no message: it runs after each message the account handles (for a fill or a copy offer,
in that symbol only), and on the watch's one timer.

``drift = P − expected`` in each symbol the leader holds or has traded since this follower
joined, mapped (S2.3), ``expected = t(L)`` (``engine.domain.drift``). ``P`` is the confirmed
position with the engine's orders in flight counted as done: an order of the engine's (copy,
reconciliation, sync, max-contracts reduction) counts while it is younger than
``copy_fill_timeout`` — past it S10.3 calls it missed, and what it has not filled is drift (a
copy the broker holds unfilled drifts). A drift reduction counts once it fills: it is what
ends its episode, which stays open (and is not reduced again) while it works. For a follower
copying orders (S8), the share a mirror still owes of a leader fill counts as done too: within
``mirror_grace`` it is filled by the mirror or sent at market, so it is the engine's in flight
like a copy; a mirror resting for a leader order that has not filled counts as nothing, as in
S2.2's P.

Watched only while the membership is enabled, the follower's connection is ``connected``, its
positions and its leader's are confirmed (S3.5) and no flatten of it is in flight. A drift
lasting ``drift_grace`` opens an episode exactly then (a timer), with one ``drift`` warning;
while open it is shown in the account's view and kept in the store (a restart neither writes
it again nor forgets to clear it); back at 0 it ends with one ``drift_cleared`` entry. While a
drift is pending or open the check also runs every ``drift_check``; otherwise no timer runs
(docs/decisions/0025-drift-checks-on-events.md). With ``on_drift = "reduce"`` an episode's
opening sends, once, the flatten-only order toward ``expected`` (S3.2), with its S3.3 record
written also when nothing is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from actors.book import Book
from actors.messages.account import CopyOffer, DriftDue, DriftWatch
from actors.mirrors import Mirrors
from actors.missed_copies import MissedCopies
from brokers.base import Fill
from engine.domain.activity import Kind, Level
from engine.domain.connections import ConnectionState
from engine.domain.copy_rule import reconciliation_quantity
from engine.domain.copying import Role
from engine.domain.drift import expected, mapped
from engine.domain.order_ids import OrderKind
from engine.domain.watching import OnDrift, WatchSettings
from engine.host.base import ActorContext

# Orders the drift's P does not count until they fill: a liquidation (a flatten is not watched),
# resting mirrors (as in S2.2's P), and a drift reduction — the episode's remedy, which ends it
# when it fills, not when it is sent.
_NOT_IN_FLIGHT = frozenset({OrderKind.LIQUIDATE, OrderKind.MIRROR, OrderKind.DRIFT})


class DriftHost(Protocol):
    """What of its account actor the drift watch reads."""

    ctx: ActorContext
    id: str
    connection: str
    connection_state: ConnectionState
    role: Role
    book: Book
    mirrors: Mirrors
    missed: MissedCopies
    synced: bool
    flattening: bool

    def send_drift(self, cause: str, symbol: str, qty: int) -> None: ...

    def save(self) -> None: ...


class Drift:
    def __init__(
        self, host: DriftHost, settings: WatchSettings, episodes: Mapping[str, int]
    ) -> None:
        self.host = host
        self.settings = settings
        self.watch: DriftWatch | None = None  # the group's last word
        self.leader: dict[str, int] = {}  # the leader's confirmed positions, by its symbol
        self.traded: set[str] = set()  # leader symbols traded since this follower joined
        self.symbols: set[str] = set()  # ... mapped: the follower's symbols watched
        self.pending: dict[str, datetime] = {}  # symbol -> since when it drifts (in grace)
        # The open episodes, symbol -> drift: what the view shows, replaced (never changed in
        # place) at each change, and what the store keeps.
        self.shown: Mapping[str, int] = dict(episodes)
        self.armed: datetime | None = None  # the one timer's instant
        # ``expected`` by follower symbol for the leader's positions and the terms as they
        # stand: made again once either changes, not at each check.
        self.goals: dict[str, int] = {}

    # -- what the account tells it ---------------------------------------------------------------

    def receive(self, message: DriftWatch | DriftDue) -> None:
        if isinstance(message, DriftWatch):
            if self.watch is None or self.watch.group != message.group:
                self.leader, self.traded = {}, set()  # joined (or rebuilt): from now on
            self.watch = message
            if message.leader_positions is not None:
                self.leader = {s: q for s, q in message.leader_positions.items() if q}
                self.traded |= set(self.leader)
            self.symbols = mapped(self.traded, message.terms)
            self.goals = {}
            return  # the check after every message follows
        if message.at == self.armed:
            self.armed = None

    def after(self, message: object) -> None:
        """After each message the account handled: a copy offer keeps the leader's position
        current, then the drift is checked — in the one symbol of a copy offer or a fill."""
        if isinstance(message, CopyOffer):
            watch = self.watch
            if watch is not None and message.group == watch.group and not message.completion:
                if message.after:
                    self.leader[message.leader_symbol] = message.after
                else:
                    self.leader.pop(message.leader_symbol, None)
                self.goals = {}
                if message.leader_symbol not in self.traded:
                    self.traded.add(message.leader_symbol)
                    self.symbols.add(message.symbol)
            self.check(message.symbol)
        elif isinstance(message, Fill):
            self.check(message.symbol)
        else:
            self.check()

    # -- the check -------------------------------------------------------------------------------

    def watching(self) -> bool:
        host, watch = self.host, self.watch
        return (
            watch is not None
            and host.role.group == watch.group
            and not host.role.leader
            and watch.enabled
            and watch.leader_positions is not None
            and host.connection_state is ConnectionState.CONNECTED
            and host.synced
            and not host.flattening
            and not host.book.liquidating()
        )

    def check(self, symbol: str | None = None) -> None:
        role = self.host.role
        if role.group is None or role.leader:
            if self.shown:
                self._end_all("it no longer follows a group")
            self.pending.clear()
            return
        if not self.watching():
            self.pending.clear()  # its grace starts again once it is watched
            return
        watch = self.watch
        assert watch is not None
        if symbol is None:
            symbols = sorted(self.symbols | set(self.shown) | set(self.pending))
        elif symbol in self.symbols or symbol in self.shown or symbol in self.pending:
            symbols = [symbol]
        else:
            symbols = []
        now: datetime | None = None  # read once, when a drift or its timer needs it
        for each in symbols:
            goal = self._goal(each, watch)
            drift = self.position(each) - goal
            if drift == 0 and each not in self.pending and each not in self.shown:
                continue  # in line as it was: nothing to do, the common case
            if now is None:
                now = self.host.ctx.now()
            self._check_symbol(each, drift, goal, now, watch)
        if self.pending or self.shown:
            self._arm(self.host.ctx.now() if now is None else now)

    def _goal(self, symbol: str, watch: DriftWatch) -> int:
        """``expected`` in ``symbol``, made once per change of the leader's positions or of
        the terms."""
        goal = self.goals.get(symbol)
        if goal is None:
            goal = self.goals[symbol] = expected(self.leader, symbol, watch.terms)
        return goal

    def _check_symbol(
        self, symbol: str, drift: int, goal: int, now: datetime, watch: DriftWatch
    ) -> None:
        if drift == 0:
            self.pending.pop(symbol, None)
            if symbol in self.shown:
                self._end(symbol)
            return
        if symbol in self.shown:
            if self.shown[symbol] != drift:
                self._show(symbol, drift)
            return
        since = self.pending.setdefault(symbol, now)
        if now - since >= self.settings.drift_grace:
            del self.pending[symbol]
            self._open(symbol, drift, goal, now, watch)

    def position(self, symbol: str) -> int:
        """``P`` of the drift: the confirmed position, the engine's orders in flight (those
        S10.3 has not judged missed) and a mirror's owed shares counted as done."""
        book = self.host.book
        total = book.position(symbol)
        missed = self.host.missed
        for key, order in book.working.items():
            if order.symbol != symbol or order.kind is None or order.kind in _NOT_IN_FLIGHT:
                continue
            if not missed.judged(key):
                total += order.qty
        mirrors = self.host.mirrors
        if mirrors.by_leader:
            total += sum(m.owed for m in mirrors.by_leader.values() if m.symbol == symbol)
        return total

    # -- episodes --------------------------------------------------------------------------------

    def _open(self, symbol: str, drift: int, goal: int, now: datetime, watch: DriftWatch) -> None:
        host = self.host
        held = drift + goal
        leader = ", ".join(
            f"{q:+d} {s}" for s, q in sorted(self.leader.items()) if s in self._sources(symbol)
        )
        host.ctx.storage.activity(
            Level.WARNING,
            Kind.DRIFT,
            f"{host.id} drifts {drift:+d} {symbol} from leader {watch.leader}: it holds "
            f"{held:+d} (the engine's orders in flight counted), expected {goal:+d} "
            f"(leader holds {leader or 'nothing'}; group {watch.group}, on_drift "
            f"{watch.on_drift})",
            account=host.id,
        )
        self._show(symbol, drift)
        if watch.on_drift is OnDrift.REDUCE:
            self._reduce(symbol, goal, now)

    def _sources(self, symbol: str) -> set[str]:
        """The leader symbols that map to the follower's ``symbol``."""
        assert self.watch is not None
        return {s for s in self.leader if mapped((s,), self.watch.terms) == {symbol}}

    def _reduce(self, symbol: str, goal: int, now: datetime) -> None:
        """S10.2, once per episode: flatten-only toward ``expected`` (S3.2), sized on every
        order the engine has working however old (a held order that fills later must not
        take the follower through its target); one S3.3 record, also when nothing is sent."""
        host = self.host
        book = host.book
        cause = f"drift:{symbol}:{now.isoformat()}"
        qty = reconciliation_quantity(book.projected(symbol), goal)
        orders = {symbol: qty} if qty else {}
        host.ctx.storage.reconciliation(
            host.id, host.connection, cause, {symbol: book.position(symbol)}, {symbol: goal}, orders
        )
        host.ctx.storage.activity(
            Level.INFO,
            Kind.RECONCILIATION,
            f"drift reduction toward the expected position ({goal:+d} {symbol}), flatten-only: "
            + (f"{symbol} {qty:+d}" if qty else "nothing sent — it never opens or adds"),
            account=host.id,
        )
        if qty:
            host.send_drift(cause, symbol, qty)

    def _end(self, symbol: str, why: str = "") -> None:
        host = self.host
        host.ctx.storage.activity(
            Level.INFO,
            Kind.DRIFT_CLEARED,
            f"{host.id} no longer drifts in {symbol}" + (f": {why}" if why else ""),
            account=host.id,
        )
        self.shown = {s: q for s, q in self.shown.items() if s != symbol}
        host.save()

    def _end_all(self, why: str) -> None:
        for symbol in sorted(self.shown):
            self._end(symbol, why)

    def _show(self, symbol: str, drift: int) -> None:
        self.shown = {**self.shown, symbol: drift}
        self.host.save()

    # -- the one timer ---------------------------------------------------------------------------

    def _arm(self, now: datetime) -> None:
        """The next instant a check can find something new without a message: a pending
        drift's grace ends, and — while a drift is pending or open — the periodic
        ``drift_check``. An order reaching ``copy_fill_timeout`` is the missed-copies timer's
        message, and every message the account handles is followed by a check. Called only
        while a drift is pending or open."""
        due = [since + self.settings.drift_grace for since in self.pending.values()]
        at = min([*due, now + self.settings.drift_check])
        if self.armed is not None and self.armed <= at:
            return
        self.armed = at
        ctx = self.host.ctx
        ctx.services.timers.schedule(at, ctx.address, DriftDue(at))


__all__ = ["Drift", "DriftHost"]
