"""The engine: builds the actor tree from the store and is the one door commands come through.

Commands (from the replay harness, the CLI, the control API) are checked against the topology,
made durable, and then told to the actors; nothing outside the actors touches their state.
Reads return the view each actor published after its last batch of messages
(``engine/host/views.py``): they never wait behind an actor's mailbox, and are exact once the
engine is idle.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Concatenate, ParamSpec, TypeVar

import structlog

from actors import addresses, schedule
from actors.account import AccountActor, AccountSettings, AccountView
from actors.connection import ConnectionActor, ConnectionSettings, ConnectionView, SessionInbox
from actors.failure import InjectedFailure
from actors.group import CopyGroupActor, GroupView
from actors.messages.account import SetRole
from actors.messages.connection import (
    DurabilityRestored,
    EventsPending,
    Reconnect,
    StartSession,
    TakeOffline,
)
from actors.messages.group import AddMember, RemoveMember, SyncMember
from actors.messages.risk import Flatten, Lock, SetMembership, Unlock
from actors.risk import RiskActor, RiskSettings, RiskView
from brokers.base import (
    Broker,
    BrokerEvent,
    BrokerSession,
    Fill,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    Quote,
)
from brokers.clock import Clock, VirtualClock
from brokers.instruments import ContractTable
from engine.core import risk_changes, setup_changes, sync_preview
from engine.core import topology as topo
from engine.core.children import child_specs
from engine.core.supervisor import Supervisor
from engine.core.topology import (
    AccountConfig,
    CommandRefused,
    ConnectionConfig,
    GroupConfig,
    Topology,
)
from engine.core.tree import ActorTree
from engine.domain.activity import Kind, Level
from engine.domain.connections import ConnectionState
from engine.domain.copying import Membership, PendingFill, Role
from engine.domain.ledger import UnresolvedOrder
from engine.domain.risk_profile import RiskRules, RiskValue
from engine.domain.risk_status import LockReason, RiskStatus
from engine.domain.sessions import Blackout
from engine.domain.watching import OnDrift, WatchSettings
from engine.host import Runtime, Services, make_runtime
from engine.host.address import Address
from engine.host.base import ActorContext, Behaviour, Factory
from engine.host.market import Market
from engine.storage import compaction, durable, setup_rows
from engine.storage.durability import Health
from engine.storage.fanouts import decided_copies, pending_fills
from engine.storage.journal import JOURNAL_VERSION, Journal
from engine.storage.queries import Queries
from engine.storage.records import DecidedCopies, RecordedFills, Records
from engine.storage.recovery import advance_counters
from engine.storage.store import SCHEMA_VERSION, Store

log = structlog.get_logger("engine")
P = ParamSpec("P")
R = TypeVar("R")


def _one_batch(command: Callable[Concatenate[Engine, P], R]) -> Callable[Concatenate[Engine, P], R]:
    """A command's tells reach the actors as one batch (``Runtime.batch``): every actor it
    tells has its message queued before any consequence of the first runs (decision 0005)."""

    @functools.wraps(command)
    def run(engine: Engine, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with engine.runtime.batch():
            return command(engine, *args, **kwargs)

    return run


ORDER_EVENTS = (Fill, OrderAccepted, OrderRejected, OrderDone)
# What a journal's setup frame carries: everything an engine is built from.
# In an order the store's references allow restoring them in (profiles before accounts).
JOURNALED_TABLES = (
    "connections",
    "profiles",
    "profile_keys",
    "accounts",
    "risk_limits",
    "blackouts",
    "groups",
    "memberships",
    "account_state",
    "positions",
    "risk_state",
    "markers",
    "counters",
)


@dataclass(frozen=True)
class EngineSettings:
    runtime: str = "deterministic"
    max_copy_age: timedelta = timedelta(seconds=10)
    mirror_grace: timedelta = timedelta(seconds=2)  # S8.4: how long a mirror may fill late
    # S10.1, S10.3: drift, missed copies, blind prices
    watch: WatchSettings = field(default_factory=WatchSettings)
    # Threads runtime: connections are dealt to this many threads (0: one thread each). With
    # one interpreter lock, more threads add hand-offs, not parallelism: one thread places a
    # fan-out before it turns to the fills that come back (decision 0001).
    threads: int = 1
    # How long activity entries and answered orders are kept in the store (0: for ever).
    activity_retention: timedelta | None = None
    ledger_retention: timedelta | None = None


PRUNE_EVERY = timedelta(hours=1)  # engine time between two prunings of the records
# How far back a start looks for the fills already written: a broker reports a fill again
# within its trading day or the next, a weekend between them (S10.5).
RECENT_FILLS = timedelta(days=4)


class Engine:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        brokers: Mapping[str, Broker],
        contracts: ContractTable,
        settings: EngineSettings = EngineSettings(),
        journal: Journal | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.brokers = dict(brokers)
        self.contracts = contracts
        self.settings = settings
        self.records = Records(store, clock)
        # Whether state can be made durable (decision 0014): the store's, shared by its logs.
        self.durability = store.durability
        self.durability.clock = clock
        self.durability.listeners.append(self._durability_changed)
        if journal is not None and journal.durability is None:
            journal.durability = self.durability
        self.services = Services(clock, self.records)
        self.runtime: Runtime = make_runtime(settings.runtime, self.services, settings.threads)
        self.queries = Queries(store)
        self.tree = ActorTree(self.runtime, self.factory)
        self.supervisor = Supervisor(
            self.tree, clock, self.records, child_specs(self.tree, lambda: self.topology)
        )
        self.runtime.failure_hook = self.supervisor.on_failure
        self.market = Market(self.runtime.tell)
        self.services.market = self.market
        self.topology: Topology = topo.load(store)
        self.sessions: dict[str, BrokerSession] = {}
        self.inboxes: dict[str, SessionInbox] = {}
        self.journal = journal
        if journal is not None:
            journal.checkpoint = self._journal_checkpoint
        self.started = False
        self._compacted = (0, 0, 0)  # the logs' sizes after their last compaction
        self._pruned: datetime | None = None
        # What this start found unfinished (S2.6, S2.9), handed to the actors as they are
        # first built; a restart by the supervisor later never sees it.
        self._unresolved: dict[str, tuple[UnresolvedOrder, ...]] = {}
        self._pending: dict[str, list[PendingFill]] = {}

    # -- setup -----------------------------------------------------------------------------------

    def seed(
        self,
        connections: Iterable[ConnectionConfig],
        accounts: Iterable[AccountConfig],
        groups: Iterable[GroupConfig],
        *,
        profiles: Mapping[str, Mapping[str, RiskValue]] | None = None,
        blackouts: Iterable[Blackout] = (),
    ) -> None:
        """Write an initial setup into an empty store (checked as a whole first): connections,
        accounts with their own risk keys and profile, groups, the named profiles (S9.7) and
        the blackouts (S9.5)."""
        if self.started:
            raise CommandRefused("the engine is running: add things with commands")
        staged = Topology()
        connections, accounts, groups = list(connections), list(accounts), list(groups)
        profile_keys, blackout_list = risk_changes.check_seed(staged, profiles or {}, blackouts)
        for connection in connections:
            staged.check_new_connection(connection)
            staged.connections[connection.id] = connection
        for account in accounts:
            staged.check_new_account(account)
            account.limits = risk_changes.checked(account.limits, f"account {account.id!r}")
            staged.accounts[account.id] = account
        for group in groups:
            staged.check_new_group(group)
            for member in group.members:
                setup_changes.check_terms(self.contracts, member)
            staged.groups[group.id] = group

        def write(conn: sqlite3.Connection) -> None:
            risk_changes.write_seed(conn, profile_keys, blackout_list)
            for c in connections:
                setup_rows.insert_connection(conn, c)
            for a in accounts:
                setup_rows.insert_account(conn, a)
            for g in groups:
                setup_rows.insert_group(conn, g)

        self.store.write(write, wait=True)
        for g in groups:  # a group id used before may have logged fills: none are theirs
            self.records.fanouts.joined(g.id, [m.account for m in g.members])
        self.topology = topo.load(self.store)

    def start(self, *, reconcile: bool = False) -> None:
        """Spawn the tree from the store and open every broker session.

        ``reconcile`` makes the start count as every connection returning (S3.1): true for an
        engine restart, false for the very first start of a fresh store."""
        self._adopt_logged_statuses()
        recovered = self.records.recover_intents()
        if recovered:
            log.warning("orders of unknown outcome recovered from the intent log", count=recovered)
        advance_counters(self.store, self.records.intents)
        self.topology = topo.load(self.store)
        self._recover_fan_outs(reconcile)
        self.compact()  # what the recovery read, a restart no longer needs
        if self.journal is not None:
            self.journal.record("setup", self._journal_setup(reconcile))
        for connection in self.topology.connections:
            self._spawn(addresses.connection(connection), connection)
        for account in self.topology.accounts.values():
            # The risk actor first: a rebuilt account tells it the remembered book at once.
            self._spawn(addresses.risk(account.id), account.connection)
            self._spawn(addresses.account(account.id), account.connection)
        for group in self.topology.groups.values():
            self._spawn(addresses.group(group.id), self._placement(group.leader))
        accounts = list(self.topology.accounts)
        last_reset = self.records.marker(schedule.LAST_RESET)
        self.runtime.spawn(
            schedule.ADDRESS,
            lambda ctx: schedule.ResetScheduleActor(ctx, accounts, last_reset),
            "schedule",
        )
        self.started = True
        self._unresolved, self._pending = {}, {}
        for connection_id in self.topology.connections:
            self.runtime.tell(addresses.connection(connection_id), StartSession(reconcile))
        self.runtime.wait_idle()

    def _adopt_logged_statuses(self) -> None:
        """Risk status changes the store may have lost with its last commits come back from
        the status log (``engine/status_log.py``): per account, the newer version wins. Once
        the store has them, the log is emptied."""
        logged = self.records.statuses.latest()
        if not logged:
            return
        accounts = topo.load(self.store).accounts
        for account, state in logged.items():
            if account not in accounts:
                continue  # deleted since (S4): nothing to restore
            stored = durable.load_risk(self.store, account)
            if stored is None or stored.version < state.version:
                log.warning(
                    "risk status restored from the status log",
                    account=account,
                    status=state.status,
                    lock_reason=state.lock_reason,
                )
                durable.save_risk(self.store, account, state)
        self.store.flush()
        self.records.statuses.truncate()

    def _recover_fan_outs(self, reconcile: bool) -> None:
        """Which copy decisions are durable, which orders have an unknown outcome, and which
        fan-outs a crash cut short (``engine/fanouts.py``)."""
        logged = self.records.fanouts.read()
        statuses = self.records.ledger_statuses()
        self.records.decided = DecidedCopies(
            self.clock, decided_copies(logged.settled, self.records.intents, statuses)
        )
        # The fills written in the last days: one the broker reports again after this start
        # is not written twice (S10.5).
        recent = self.records.recent_fills(self.clock.now() - RECENT_FILLS)
        self.records.recorded_fills = RecordedFills(self.clock, recent)
        if not reconcile:
            return  # a first start: nothing was sent before
        self._unresolved = self.records.unresolved_orders()
        followers = {
            g.id: tuple(m.account for m in g.members) for g in self.topology.groups.values()
        }
        self._pending = pending_fills(logged.fills, self.records.decided, followers, logged.joined)
        for group, pending in self._pending.items():
            log.warning(
                "fan-outs cut short by the stop, to complete",
                group=group,
                fills=[p.fill.fill.fill_id for p in pending],
            )

    def _journal_setup(self, reconcile: bool) -> dict[str, Any]:
        return {
            "version": JOURNAL_VERSION,
            "schema": SCHEMA_VERSION,
            "reconcile": reconcile,
            "store": self.store.dump(JOURNALED_TABLES),
        }

    def _journal_checkpoint(self) -> dict[str, Any]:
        """What a journal segment begins with when the journal rotates while the engine runs:
        the store as it is now, for a replay of the segments from there on."""
        return {**self._journal_setup(False), "checkpoint": True}

    # -- keeping it bounded: log compaction and record retention (decision 0013) ----------------

    def compact(self) -> compaction.Compacted:
        """Rewrite the intent, fan-out and status logs to what a restart still needs."""
        groups = self.topology.snapshot().groups.values()
        followers = {g.id: tuple(m.account for m in g.members) for g in groups}
        done = compaction.compact(self.records, followers)
        self._compacted = (done.intents[1], done.fanouts[1], done.statuses[1])
        return done

    def maintain(self) -> None:
        """Compact the logs once one has grown past its threshold, and prune the records
        past their retention (once an hour of engine time). Called by the live process every
        few seconds, off the actors' threads; a long run on the virtual clock calls it too."""
        if not self.started or not self.durability.ok:
            return  # nothing is rewritten or deleted while the disk refuses writes
        if compaction.due(zip(self.records.log_sizes(), self._compacted, strict=True)):
            self.compact()
        now = self.clock.now()
        if self._pruned is not None and now - self._pruned < PRUNE_EVERY:
            return
        self._pruned = now
        for table, keep in (
            ("activity", self.settings.activity_retention),
            ("orders", self.settings.ledger_retention),
            ("fills", self.settings.ledger_retention),  # with the orders they filled
        ):
            if keep:
                removed = self.records.prune(table, now - keep)
                if removed:
                    log.info("records past their retention deleted", table=table, rows=removed)

    def stop(self) -> None:
        """Close every session and stop the actors (no graceful settling: see the live runner)."""
        for session in self.sessions.values():
            session.close()
        self.runtime.shutdown()
        if not self.store.caught_up():
            log.error("stopping with state not durable", reason=self.durability.health().reason)
        self.records.close()
        if self.journal is not None:
            self.journal.close()
        self.started = False

    def _placement(self, account: str) -> str:
        return self.topology.accounts[account].connection

    def _open_session(self, connection: str, accounts: tuple[str, ...]) -> BrokerSession:
        config = self.topology.connections[connection]
        broker = self.brokers.get(config.broker)
        if broker is None:
            raise CommandRefused(
                f"connection {connection!r}: no broker {config.broker!r} configured"
            )
        market, journal, inbox = self.market, self.journal, self.inbox(connection)

        def sink(event: BrokerEvent) -> None:
            if isinstance(event, Quote):
                if market.on_quote(event.symbol, event.last, event.time) and journal is not None:
                    journal.record("quote", [event.symbol, event.last])
                return  # prices are coalesced, never a message per tick (decision 0003)
            if journal is not None:
                journal.record("broker", [connection, event])
            inbox.push(event)  # one ordered stream per login

        session = broker.session(connection, accounts, sink)
        self.sessions[connection] = session
        return session

    def inbox(self, connection: str) -> SessionInbox:
        """The connection's ordered event stream; it outlives restarts of the actor."""
        inbox = self.inboxes.get(connection)
        if inbox is None:
            address, tell = addresses.connection(connection), self.runtime.tell
            inbox = SessionInbox(lambda: tell(address, EventsPending()))
            self.inboxes[connection] = inbox
        return inbox

    # -- building actors: always from the store, at spawn and at every restart -------------------

    def factory(self, address: Address) -> Factory:
        """How to (re)build the actor at ``address`` from durable state (S7.2)."""
        kind, ident = address
        builders: dict[str, Callable[[ActorContext, str], Behaviour]] = {
            "connection": self._build_connection,
            "account": self._build_account,
            "risk": self._build_risk,
            "group": self._build_group,
        }
        build = builders[kind]
        return lambda ctx: build(ctx, ident)

    def _current(self) -> Topology:
        """The topology as the store has it now (memberships' disable reasons, connection
        states: the actors keep them there). While the tree is being built at start, that is
        the topology just loaded; a restart reads the store again."""
        if not self.started:
            return self.topology
        self.store.caught_up()  # while the disk refuses writes: what is committed
        return topo.load(self.store)

    def _build_connection(self, ctx: ActorContext, connection: str) -> ConnectionActor:
        current = self._current()
        c = current.connections[connection]
        settings = ConnectionSettings(
            c.id, ConnectionState(c.state), c.offline, c.token_expired, c.reconnects
        )
        return ConnectionActor(
            ctx, settings, current.accounts_of(c.id), self._open_session, self.inbox(c.id)
        )

    def _build_account(self, ctx: ActorContext, account: str) -> AccountActor:
        current = self._current()
        a = current.accounts[account]
        settings = AccountSettings(
            a.id,
            a.connection,
            a.balance,
            self.settings.max_copy_age,
            self.settings.mirror_grace,
            watch=self.settings.watch,
            rules=RiskRules.of(current.effective(account)),
        )
        state = ConnectionState(current.connections[a.connection].state)
        found = current.group_of(account)
        role = Role() if found is None else Role(found[0], found[1])
        return AccountActor(
            ctx,
            settings,
            self.contracts,
            state,
            role,
            durable.load_account(self.store, account),
            unresolved=() if self.started else self._unresolved.get(account, ()),
        )

    def _build_risk(self, ctx: ActorContext, account: str) -> RiskActor:
        current = self._current()
        a = current.accounts[account]
        found = current.group_of(account)
        follows = None if found is None or found[1] else found[0]
        settings = RiskSettings(
            a.id,
            a.connection,
            a.balance,
            limits=current.effective(account),
            blackouts=tuple(sorted(current.blackouts)),
        )
        actor = RiskActor(ctx, settings, follows, durable.load_risk(self.store, account))
        actor.connected = current.connections[a.connection].state == "connected"
        return actor

    def _build_group(self, ctx: ActorContext, group: str) -> CopyGroupActor:
        current = self._current()
        g = current.groups[group]
        leader_connection = current.accounts[g.leader].connection
        pending = () if self.started else tuple(self._pending.get(group, ()))
        return CopyGroupActor(
            ctx, g.id, g.leader, leader_connection, list(g.members), pending, g.on_drift
        )

    def _spawn(self, address: Address, placement: str) -> None:
        self.runtime.spawn(address, self.factory(address), placement)

    def _record(self, command: str, *args: object) -> None:
        if self.journal is not None:
            self.journal.record("command", [command, list(args)])

    # -- time --------------------------------------------------------------------------------------

    def advance_to(self, instant: datetime) -> None:
        """Virtual time: fire every timer due up to ``instant``, each at its own instant."""
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise TypeError("only a virtual clock can be advanced")
        while True:
            due = self.services.timers.next_due()
            if due is None or due > instant:
                break
            clock.set(max(due, clock.now()))
            self.fire_due_timers()
            self.runtime.wait_idle()
        clock.set(instant)
        self.runtime.wait_idle()

    def fire_due_timers(self) -> int:
        """Fire the timers due at the clock's now (resets, retries); journaled as a clock step."""
        if self.journal is not None and self.services.timers.next_due() is not None:
            due = self.services.timers.next_due()
            if due is not None and due <= self.clock.now():
                self.journal.record("clock", None)
        return self.runtime.fire_due_timers()

    def wait_idle(self) -> None:
        self.runtime.wait_idle()

    # -- commands: connections ------------------------------------------------------------------

    @_one_batch
    def take_offline(self, connection: str) -> None:
        self._record("take_offline", connection)
        self.topology.require_connection(connection)
        self.runtime.tell(addresses.connection(connection), TakeOffline())

    @_one_batch
    def reconnect(self, connection: str) -> None:
        self._record("reconnect", connection)
        self.topology.require_connection(connection)
        self.runtime.tell(addresses.connection(connection), Reconnect())

    @_one_batch
    def delete_connection(self, connection: str) -> topo.DeletionPlan:
        """S4: immediate, cascading, no order sent, records kept."""
        self._record("delete_connection", connection)
        return setup_changes.delete_connection(self._setup(), connection)

    # -- commands: groups ------------------------------------------------------------------------

    @_one_batch
    def add_follower(self, group: str, member: Membership) -> None:
        self._record("add_follower", group, member)
        self.topology.check_add_follower(group, member)
        setup_changes.check_terms(self.contracts, member)
        # Earlier fills are not its: said first, so a refused write leaves nothing half done
        # (a join logged for a membership that was not made is harmless).
        self.records.fanouts.joined(group, [member.account])
        self.store.write(lambda conn: setup_rows.insert_membership(conn, group, member), wait=True)
        self.topology.groups[group].members.append(member)
        self.runtime.tell(addresses.group(group), AddMember(member))
        self.runtime.tell(addresses.account(member.account), SetRole(Role(group, False)))
        self.runtime.tell(addresses.risk(member.account), SetMembership(group))

    @_one_batch
    def remove_follower(self, group: str, account: str) -> None:
        self._record("remove_follower", group, account)
        config = self.topology.require_group(group)
        if not any(m.account == account for m in config.members):
            raise CommandRefused(f"account {account!r} does not follow group {group!r}")
        self.store.write(lambda conn: setup_rows.delete_membership(conn, group, account), wait=True)
        config.members = [m for m in config.members if m.account != account]
        self.runtime.tell(addresses.group(group), RemoveMember(account))
        self.runtime.tell(addresses.account(account), SetRole(Role()))
        self.runtime.tell(addresses.risk(account), SetMembership(None))

    # -- commands: risk and flatten --------------------------------------------------------------

    @_one_batch
    def lock(self, account: str) -> None:
        self._record("lock", account)
        self.topology.require_account(account)
        self.runtime.tell(addresses.risk(account), Lock())

    @_one_batch
    def unlock(self, account: str) -> None:
        self._record("unlock", account)
        self.topology.require_account(account)
        self.runtime.tell(addresses.risk(account), Unlock())

    # -- commands: risk keys, profiles and blackouts (engine/core/risk_changes.py) ---------------

    @_one_batch
    def set_risk(self, account: str, values: Mapping[str, RiskValue]) -> None:
        """The account's own keys given are set (S5.2, S9); ``0`` turns a number off."""
        self._record("set_risk", account, dict(values))
        risk_changes.set_risk(self._setup(), account, values)

    @_one_batch
    def unset_risk(self, account: str, names: Iterable[str]) -> tuple[str, ...]:
        """The account's own keys named are removed: its profile's value, or none, applies."""
        names = [names] if isinstance(names, str) else list(names)
        self._record("unset_risk", account, names)
        return risk_changes.unset_risk(self._setup(), account, names)

    @_one_batch
    def set_profile(self, name: str, values: Mapping[str, RiskValue]) -> None:
        """Makes the named profile (S9.7) or changes its keys given."""
        self._record("set_profile", name, dict(values))
        risk_changes.set_profile(self._setup(), name, values)

    @_one_batch
    def unset_profile_keys(self, name: str, names: Iterable[str]) -> tuple[str, ...]:
        names = [names] if isinstance(names, str) else list(names)
        self._record("unset_profile_keys", name, names)
        return risk_changes.unset_profile_keys(self._setup(), name, names)

    @_one_batch
    def delete_profile(self, name: str) -> None:
        """Refused while an account uses it."""
        self._record("delete_profile", name)
        risk_changes.delete_profile(self._setup(), name)

    @_one_batch
    def set_account_profile(self, account: str, name: str | None) -> None:
        self._record("set_account_profile", account, name)
        risk_changes.set_account_profile(self._setup(), account, name)

    @_one_batch
    def add_blackout(self, blackout: Blackout) -> None:
        """An engine-wide blackout interval (S9.5)."""
        self._record("add_blackout", blackout)
        risk_changes.add_blackout(self._setup(), blackout)

    @_one_batch
    def remove_blackout(self, key: str) -> Blackout:
        """The blackout whose ``Blackout.key()`` is ``key``."""
        self._record("remove_blackout", key)
        return risk_changes.remove_blackout(self._setup(), key)

    @_one_batch
    def flatten_account(self, account: str) -> None:
        self._record("flatten_account", account)
        self.topology.require_account(account)
        self._flatten([account])

    @_one_batch
    def flatten_group(self, group: str) -> None:
        self._record("flatten_group", group)
        config = self.topology.require_group(group)
        self._flatten([config.leader, *(m.account for m in config.members)])

    @_one_batch
    def flatten_all(self) -> None:
        self._record("flatten_all")
        self._flatten(list(self.topology.accounts))

    def _flatten(self, accounts: list[str]) -> None:
        number = self.records.next_number("flatten_command")
        cause = f"flatten:{number}"
        for account in accounts:
            self.runtime.tell(addresses.risk(account), Flatten(cause))

    # -- commands: sync (S6.2), shown first by engine/core/sync_preview.py -----------------------

    @_one_batch
    def sync(self, account: str, expect: Mapping[str, int] | None = None) -> None:
        """Bring a follower to its leader's target; ``expect``: the orders the user was shown
        (the follower sends nothing if its plan differs by then)."""
        self._record("sync", account, None if expect is None else dict(expect))
        group = sync_preview.group_of(self.topology, account)
        cause = f"sync:{self.records.next_number('sync_command')}"
        self.runtime.tell(addresses.group(group), SyncMember(account, cause, expect))

    @_one_batch
    def sync_group(self, group: str, expect: Mapping[str, Mapping[str, int]] | None = None) -> None:
        """Every follower of the group; ``expect`` by follower (one missing from it was not
        shown, and is expected to send nothing)."""
        shown = None if expect is None else {a: dict(o) for a, o in expect.items()}
        self._record("sync_group", group, shown)
        config = self.topology.require_group(group)
        cause = f"sync:{self.records.next_number('sync_command')}"
        for member in config.members:
            orders = None if shown is None else shown.get(member.account, {})
            self.runtime.tell(addresses.group(group), SyncMember(member.account, cause, orders))

    def plan_sync(self, account: str) -> sync_preview.SyncPreview:
        """What ``sync`` would send now, from the actors' last published views."""
        topology = self.topology_snapshot()
        group = sync_preview.group_of(topology, account)
        return self._preview(topology, group, self.group_view(group), account)

    def plan_sync_group(self, group: str) -> list[sync_preview.SyncPreview]:
        """``plan_sync`` of every follower, on one copy of the setup and of the group's view."""
        topology = self.topology_snapshot()
        members = topology.require_group(group).members
        view = self.group_view(group)
        return [self._preview(topology, group, view, m.account) for m in members]

    def _preview(
        self, topology: Topology, group: str, view: GroupView | None, account: str
    ) -> sync_preview.SyncPreview:
        return sync_preview.preview(
            topology, account, group, self.account_view(account), self.risk_view(account), view
        )

    # -- commands: changing the setup while running (engine/core/setup_changes.py) ---------------

    def _setup(self) -> setup_changes.Setup:
        return setup_changes.Setup(
            self.topology,
            self.store,
            self.records,
            self.tree,
            tuple(self.brokers),
            self.started,
            self._close_session,
            self.contracts,
        )

    def _close_session(self, connection: str) -> None:
        session = self.sessions.pop(connection, None)
        if session is not None:
            session.close()

    @_one_batch
    def add_connection(self, connection: str, broker: str, accounts: Mapping[str, Decimal]) -> None:
        """A new login with its accounts (id → starting balance); limits come by ``set_risk``."""
        self._record("add_connection", connection, broker, dict(accounts))
        setup_changes.add_connection(self._setup(), connection, broker, accounts)

    @_one_batch
    def delete_account(self, account: str) -> topo.AccountDeletion:
        """S4.2: immediate, cascading, no order sent, records kept."""
        self._record("delete_account", account)
        return setup_changes.delete_account(self._setup(), account)

    @_one_batch
    def add_group(
        self,
        group: str,
        leader: str,
        members: Iterable[Membership] = (),
        on_drift: OnDrift = OnDrift.ALERT,
    ) -> None:
        members = list(members)
        on_drift = OnDrift(on_drift)  # a journal's replay gives it as its text
        self._record("add_group", group, leader, members, on_drift)
        setup_changes.add_group(self._setup(), group, leader, members, on_drift)

    @_one_batch
    def set_on_drift(self, group: str, on_drift: OnDrift) -> GroupConfig:
        """S10.2: what the group does when one of its followers drifts."""
        on_drift = OnDrift(on_drift)  # a journal's replay gives it as its text
        self._record("set_on_drift", group, on_drift)
        return setup_changes.set_on_drift(self._setup(), group, on_drift)

    @_one_batch
    def delete_group(self, group: str) -> GroupConfig:
        self._record("delete_group", group)
        return setup_changes.delete_group(self._setup(), group)

    @_one_batch
    def update_follower(self, group: str, member: Membership) -> Membership:
        """New ratio, max_qty, symbol_map and copy mode for a follower, from its next copy on."""
        self._record("update_follower", group, member)
        return setup_changes.update_follower(self._setup(), group, member)

    # -- failure injection (the crash scenario step) ----------------------------------------------

    @_one_batch
    def inject_failure(self, kind: str, ident: str) -> None:
        """Make the actor raise inside a message handler; the supervisor restarts it."""
        self._record("inject_failure", kind, ident)
        address = (kind, ident)
        if not self.runtime.exists(address):
            raise CommandRefused(f"no {kind} actor {ident!r}")
        self.runtime.tell(address, InjectedFailure())

    # -- reads -----------------------------------------------------------------------------------
    # Each actor's last published view: a lookup, answered whatever the actors have queued or a
    # handler is blocked on. ``runtime.inspect`` reads an actor between its messages instead.

    def account_view(self, account: str) -> AccountView | None:
        """The account as of its last batch of messages, priced at the market's prices now."""
        view: AccountView | None = self.runtime.view(addresses.account(account))
        return None if view is None else view.priced(self.market.last)

    def risk_view(self, account: str) -> RiskView | None:
        view: RiskView | None = self.runtime.view(addresses.risk(account))
        return view

    def group_view(self, group: str) -> GroupView | None:
        view: GroupView | None = self.runtime.view(addresses.group(group))
        return view

    def connection_state(self, connection: str) -> str | None:
        view: ConnectionView | None = self.runtime.view(addresses.connection(connection))
        return None if view is None else view.state

    def connection_status(self, connection: str) -> tuple[str, bool] | None:
        """The connection actor's state and whether it was taken offline (None: no actor)."""
        view: ConnectionView | None = self.runtime.view(addresses.connection(connection))
        return None if view is None else (view.state, view.offline)

    # The setup, copied: a reader on another thread (the API's) walks it while commands change
    # the engine's own. ``connection``, ``account`` and ``group`` raise ``UnknownId``.

    def topology_snapshot(self) -> Topology:
        return self.topology.snapshot()

    def connections(self) -> list[ConnectionConfig]:
        return list(self.topology_snapshot().connections.values())

    def connection(self, connection: str) -> ConnectionConfig:
        return replace(self.topology.require_connection(connection))

    def account(self, account: str) -> AccountConfig:
        config = self.topology.require_account(account)
        return replace(config, limits=dict(config.limits))

    def effective_risk(self, account: str) -> dict[str, RiskValue]:
        """The account's keys in effect: its profile's overridden by its own (S9.7)."""
        return self.topology.effective(account)

    def profiles(self) -> dict[str, dict[str, RiskValue]]:
        """Every named profile with its keys (S9.7)."""
        return self.topology_snapshot().profiles

    def blackouts(self) -> list[Blackout]:
        """The engine-wide blackouts (S9.5), by start."""
        return list(self.topology.blackouts)

    def group(self, group: str) -> GroupConfig:
        config = self.topology.require_group(group)
        return replace(config, members=list(config.members))

    # -- stopping (the live process's stop sequence: engine/live/runner.py) -----------------------

    def stop_placing(self) -> None:
        """The first step of a stop: from now on no order is placed. An order decided after
        this is recorded as not sent, and none whose intent is written after it is sent."""
        self.services.stopping.set()

    @property
    def stopping(self) -> bool:
        return self.services.stopping.is_set()

    def unanswered_unknown(self) -> None:
        """The last step before the actors stop: orders sent whose answer has not come are
        recorded ``unknown`` in the ledger; the next start asks the broker (S2.6)."""
        self.records.unanswered_unknown("no answer before the engine stopped")

    # -- health (metrics) --------------------------------------------------------------------------

    def restarts(self) -> int:
        """Actor restarts by the supervisor since this engine was built."""
        return self.supervisor.total

    def mailbox_depths(self) -> dict[str, int]:
        """Messages queued or being handled, per actor thread."""
        return self.runtime.mailbox_depths()

    def dead_letters(self) -> int:
        """Messages told to an actor that no longer existed."""
        return self.runtime.dead_letters

    def health(self) -> Health:
        """Whether the engine can make its state durable; if not, why and since when."""
        return self.durability.health()

    def _durability_changed(self, before: Health, after: Health) -> None:
        """Said in the activity log; once healthy again, every follower is reconciled (orders
        were held back meanwhile, decision 0014)."""
        if not after.ok:
            self.records.activity(
                Level.ERROR,
                Kind.STATE_CHANGE,
                f"the engine cannot make its state durable ({after.reason}): new orders are"
                " held back, a risk breach still flattens",
            )
            return
        lost = (self.clock.now() - before.since).total_seconds() if before.since else 0.0
        log.info("state durable again", after_s=round(lost, 3))
        self.records.activity(
            Level.INFO,
            Kind.STATE_CHANGE,
            f"the engine makes its state durable again, after {lost:.1f} s: the orders held"
            " back were not sent; every follower is reconciled toward its leader",
        )
        if self.started:
            # A leader's return reconciles every follower of its group (S3.1): once each.
            topology = self.topology_snapshot()
            leaders = {topology.accounts[g.leader].connection for g in topology.groups.values()}
            for connection in sorted(leaders):
                self.runtime.tell(addresses.connection(connection), DurabilityRestored())


__all__ = ["Engine", "EngineSettings", "LockReason", "RiskStatus"]
