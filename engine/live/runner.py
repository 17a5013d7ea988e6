"""``python -m engine run``: the long-running engine process (what ``make run`` starts).

On defaults (no ``--config``) it runs the paper broker, a SQLite store in ``./data/``, the demo
setup and a simulated market with a demo leader trading now and then (:mod:`engine.app.demo`), the
control API and the Cockpit page on http://127.0.0.1:8765/, and logs each leader fill and the
orders the engine sends for it, until Ctrl-C (or SIGTERM) stops it cleanly.

trio owns the main loop: one nursery runs the engine's timers (on the wall clock), the API
server, the market, the demo leader and the signal watcher. The actors run on pykka threads;
trio reaches them only through the broker's events and ``tell`` (API commands run on worker
threads, one at a time). On a signal, first of all no order is placed any more (an order decided
from then on is recorded as not sent); then no more commands (503), the market and the demo
leader stop, the event streams end and the API server closes while the orders already sent get
``engine.settle_seconds`` (1.5 s) to be answered; those still unanswered are recorded as
``unknown`` (the next start asks the broker), the actors stop — what they still had queued is
dropped — and the journal, the store and the logs are flushed and closed. Exit 0.

``--paper-state FILE`` keeps the paper broker's state in a file (``brokers/paper/state.py``), so
the broker outlives the engine process like a real one: a restarted engine, even after a
``kill -9``, finds the positions, orders and ids the broker had, and reconciles with them.

``--tradovate-sim`` (or ``[broker] kind = "tradovate-sim"``) runs on the project's local
Tradovate-compatible server instead, started inside this process
(:mod:`engine.app.local_tradovate`):
the same demo, its connections waiting for Re-authorize, its market and leader acting at the
server, the copies going out through the Tradovate adapter over loopback sockets.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import signal
import socket
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import trio

from brokers.base import Broker
from brokers.clock import WallClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker, PaperBrokerError
from engine.api import ApiContext, EventHub, build_app
from engine.api.auth import TokenError, load_or_create_token
from engine.app import demo
from engine.app.alert_targets import AlertsError, load_targets
from engine.app.authorizations import OAuthStates
from engine.app.collector import tune_collector
from engine.app.config import (
    TRADOVATE_SIM,
    ConfigError,
    PaperBrokerConfig,
    TradovateSimConfig,
    load_config,
)
from engine.app.listening import ApiServer, BindError, Tls, check_exposure, listen, tls_context
from engine.app.logs import close_log_file, configure_logging
from engine.app.metrics import EngineMetrics
from engine.app.paper_desk import PaperDesk
from engine.app.seeding import seed_from_config
from engine.app.setup_diff import compare, setup_of_config, setup_of_topology
from engine.app.tradovate_setup import BrokerSetupError, local_tradovate, tradovate_broker
from engine.core.engine import Engine, EngineSettings
from engine.core.topology import Topology
from engine.live.alerts import AlertRouter
from engine.live.reporter import ObservedBroker, Reporter
from engine.live.run_options import Options, add_arguments, version
from engine.storage.datadir import (
    EXIT_NOT_DURABLE,
    EXIT_REFUSED,
    EXIT_SETUP,
    DataLock,
    RunError,
    check_store_history,
    prepare_data_dir,
    remove_url,
    write_url,
)
from engine.storage.durability import Health, NotDurable, disk_error
from engine.storage.frames import FrameError
from engine.storage.intents import IntentLogError
from engine.storage.journal import Journal, JournalLimits
from engine.storage.preflight import check_room, tighten
from engine.storage.store import Store, StoreError

if TYPE_CHECKING:
    from engine.app.local_tradovate import LocalTradovate

log = structlog.get_logger("engine.live.runner")

EXIT_OK = 0
EXIT_STUCK = 3  # the stop hung (a stuck actor or store writer) and was cut short
__all__ = [
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_SETUP",
    "EXIT_STUCK",
    "LiveRun",
    "Options",
    "add_arguments",
    "main",
]

STORE_FILE = "engine.sqlite"
JOURNAL_FILE = "engine.journal"
MAX_TIMER_WAIT = 0.1  # seconds between looks at the timer queue, at most
MAINTAIN_EVERY = 10.0  # seconds between looks at the logs' sizes and the records' retention
MB = 1024 * 1024
STOP_TIMEOUT = 30.0  # seconds the whole stop may take before the process just exits
DURABILITY_POLL = 0.25  # seconds between looks at whether the disk takes writes again
# seconds the HTTP server gets, after the orders in flight settled, to finish open requests
API_STOP_TIMEOUT = 0.25
DRAIN_WAIT = 0.05  # seconds a look at the actors' queues may wait while orders settle
IDLE_AT_STOP = 0.25  # seconds the actors get to finish what they have queued, then it is dropped
EXIT_GRACE = 0.5  # seconds the loop gets to finish once everything is closed (_exit_unless_done)


# --- the run ------------------------------------------------------------------------------------


class LiveRun:
    """One engine process: ``open`` (synchronous), ``serve`` (inside trio), ``close``."""

    def __init__(self, options: Options, reporter: Reporter) -> None:
        self.options = options
        self.config = options.config
        self.reporter = reporter
        self.lock = DataLock(options.data_dir)
        self.store: Store | None = None
        self.engine: Engine | None = None
        self.clock = WallClock()
        self.contracts = ContractTable()
        self.paper: PaperBroker | None = None  # made in open(), once the data directory is ours
        self.local: LocalTradovate | None = None  # the local Tradovate server, if it is the broker
        self.market = demo.Market(random.Random(f"market:{options.seed}"), demo.DEMO_INSTRUMENTS)
        self.leader = demo.DemoLeader(
            random.Random(f"leader:{options.seed}"),
            self.market.symbols,
            weights=[3, 1][: len(self.market.symbols)],
            market=self.market,  # for its brackets' prices
        )
        self.metrics = EngineMetrics(self.clock.monotonic_ns)
        self.hub = EventHub()
        self.alerts: AlertRouter | None = None  # S10.4, when [alerts] names targets
        self.api: ApiServer | None = None
        # A real broker's trio side (its sockets and timers), run for as long as the engine.
        self.broker_running: AbstractAsyncContextManager[Any] | None = None
        self.ctx: ApiContext | None = None
        self.token = ""
        self.token_new = False
        self.stop_reason = "unknown"
        self.started = False
        self._closed = False
        self._exit_timer: threading.Timer | None = None

    # -- start -----------------------------------------------------------------------------------

    def open(self) -> None:
        options = self.options
        prepare_data_dir(options.data_dir)
        self.lock.acquire()
        log_file = self.config.log.file
        configure_logging(
            self.config.log.level,
            json=options.json,
            file=options.data_dir / log_file if log_file else None,
            max_bytes=self.config.log.max_mb * MB,
            keep=self.config.log.keep,
        )
        check_room(options.data_dir)
        set_aside = check_store_history(
            options.data_dir, new_store=options.new_store, now=self.clock.now()
        )
        if set_aside is not None:
            log.warning("new store asked for: the earlier history was moved", to=str(set_aside))
        try:
            self.token, self.token_new = load_or_create_token(options.data_dir)
        except TokenError as error:
            raise RunError(str(error)) from None
        tls = self._tls()
        self.alerts = self._alerts()
        self.api = ApiServer(self._listen(), tls)
        broker = self._broker()
        path = options.data_dir / STORE_FILE
        try:
            self.store = Store(path)
        except StoreError as error:
            raise RunError(str(error)) from None
        tuning = self.config.engine
        try:
            self.engine = engine = Engine(
                store=self.store,
                clock=self.clock,
                brokers={
                    self.config.broker.kind: ObservedBroker(
                        broker,
                        self.reporter.broker_event,
                        self.metrics.broker_event,
                        self.hub.broker_event,
                    )
                },
                contracts=self.contracts,
                settings=EngineSettings(
                    runtime="threads",
                    threads=tuning.threads,
                    max_copy_age=timedelta(seconds=tuning.max_copy_age_seconds),
                    mirror_grace=timedelta(seconds=tuning.mirror_grace_seconds),
                    watch=tuning.watch(),
                    activity_retention=_days(self.config.records.activity_retention_days),
                    ledger_retention=_days(self.config.records.ledger_retention_days),
                ),
                journal=Journal(options.data_dir / JOURNAL_FILE, self.clock, self._journal()),
            )
            fresh = self._seed(engine)
        except (StoreError, IntentLogError) as error:
            raise RunError(str(error)) from None
        except (sqlite3.Error, OSError) as error:
            raise (
                _not_durable(error) if disk_error(error) else RunError(f"{path}: {error}")
            ) from None
        topology = engine.topology
        _check_brokers(topology, self.config.broker.kind, path)
        _private(options.data_dir)
        log.info(
            "engine starting",
            data_dir=str(options.data_dir),
            store=str(path),
            store_state=fresh or "existing, reconciling",
            seed=options.seed,
            broker=self.config.broker.kind,
            paper_state=str(options.paper_state) if options.paper_state else None,
            pid=os.getpid(),
        )
        for line in demo.describe_groups(topology):
            log.info("copy group", group=line)
        self.reporter.learn(topology)
        for listener in (self.reporter.record, self.metrics.record, self.hub.record):
            engine.records.listeners.append(listener)
        if self.alerts is not None:
            engine.records.listeners.append(self.alerts.record)
        self.metrics.watch(engine)
        try:
            engine.start(reconcile=not fresh)
        except (FrameError, IntentLogError, StoreError) as error:
            # A damaged fan-out, status or intent log: nothing was sent, nothing is overwritten.
            raise RunError(str(error)) from None
        self.started = True
        tune_collector()  # the actor tree is built: out of the collector's reach (decision 0028)
        if self.paper is not None and self.config.demo_market:
            demo.publish(demo.PaperVenue(self.paper), self.market.quotes())

    def _tls(self) -> Tls | None:
        """The API's TLS files, checked; a host other than loopback served without them is
        refused unless ``--insecure-http`` says so, and then warned of at every start."""
        options = self.options
        cert, key = options.tls_cert, options.tls_key
        if (cert is None) != (key is None):
            raise RunError(
                "--tls-cert and --tls-key (api.tls_cert and api.tls_key) go together: the"
                " certificate and its private key"
            )
        tls = Tls(cert, key) if cert is not None and key is not None else None
        try:
            if tls is not None:
                tls_context(tls)
            plain = check_exposure(options.host, tls, options.insecure_http)
        except BindError as error:
            raise RunError(str(error)) from None
        if plain:
            log.warning(
                "the API is served over plain http beyond this machine (--insecure-http):"
                " the token and every command cross the network unencrypted",
                host=options.host,
            )
        return tls

    def _alerts(self) -> AlertRouter | None:
        """The alert targets of ``[alerts]``, read now: a file open to others, a variable
        unset or a URL apprise does not take refuses the start (the trader counts on them)."""
        alerts = self.config.alerts
        if not alerts.enabled:
            return None
        try:
            targets = load_targets(alerts, self.config.path)
        except AlertsError as error:
            raise RunError(str(error)) from None
        return AlertRouter(alerts, targets, self.metrics.alerts, self.clock)

    def _listen(self) -> socket.socket:
        options = self.options
        try:
            return listen(options.host, options.port)
        except BindError as error:
            if options.port_given or options.port == 0:
                raise RunError(str(error)) from None
            log.warning("default API port busy: using a free one", error=str(error))
            try:
                return listen(options.host, 0)
            except BindError as again:
                raise RunError(str(again)) from None

    def _seed(self, engine: Engine) -> str:
        """Seed an empty store from the config or the demo; what happened, in words ("" when
        the store already had a setup)."""
        if engine.topology.connections:
            self._compare_setup(engine)
            return ""
        if self.config.connections:
            seed_from_config(engine, self.config)
            return "new, setup from the config written"
        if self.config.demo_setup:
            demo.seed_if_empty(engine, self.config.broker.kind)
            return "new, demo setup written"
        return "new, empty"

    def _compare_setup(self, engine: Engine) -> None:
        """The store has a setup and the store is the truth (decision 0017): each key where the
        file says otherwise is a warning naming both values, never dropped in silence."""
        wanted = setup_of_config(self.config)
        if wanted is None:
            return
        plan = compare(wanted, setup_of_topology(engine.topology))
        if not plan.differences:
            log.info("the store already has a setup: the configuration's is the same")
            return
        for difference in plan.differences:
            log.warning(
                "the configuration differs from the store: the store's value is in use",
                key=difference.key,
                file=difference.file,
                store=difference.store,
                **({"cannot_apply": difference.why_not} if difference.why_not else {}),
            )
        config = self.options.config_file
        log.warning(
            "to make the store the configuration's, with the engine running:"
            f" python -m engine setup apply {shlex.quote(str(config)) if config else 'FILE'}"
            f"{self._data_dir_option()} (it shows each change first and asks)",
            differences=len(plan.differences),
        )

    def _data_dir_option(self) -> str:
        data_dir = self.options.data_dir
        return "" if data_dir == Path("data") else f" --data-dir {shlex.quote(str(data_dir))}"

    def _broker(self) -> Broker:
        config = self.config.broker
        if isinstance(config, PaperBrokerConfig):
            self.paper = self._paper_broker()
            return self.paper
        try:
            if isinstance(config, TradovateSimConfig):
                quoted = sorted(self.market.quotes()) if self.config.demo_market else []
                self.local = local = local_tradovate(
                    config, self.options.data_dir, self.clock, self.contracts, quote_symbols=quoted
                )
                self.broker_running = local.running()
                return local.broker
            broker, self.broker_running = tradovate_broker(
                config, self.options.data_dir, self.clock
            )
        except BrokerSetupError as error:
            raise RunError(str(error)) from None
        return broker

    def _paper_broker(self) -> PaperBroker:
        state_file = self.options.paper_state
        if state_file is None:
            # The paper broker lives in this process: ids unique per run keep a restart's fills
            # and client order ids from repeating the previous run's.
            run_id = f"{int(self.clock.now().timestamp()):x}-"
            return PaperBroker(self.clock, self.contracts, id_prefix=run_id)
        # A persisted broker continues its own id counters: no prefix needed.
        try:
            paper = PaperBroker(self.clock, self.contracts, state_file=state_file)
        except PaperBrokerError as error:
            raise RunError(str(error)) from None
        # The market goes on from the broker's last prices rather than from the start.
        self.market.resume(
            {s: p for s in self.market.symbols if (p := paper.last_price(s)) is not None}
        )
        return paper

    # -- run -------------------------------------------------------------------------------------

    async def serve(self) -> None:
        engine, api = self.engine, self.api
        assert engine is not None and api is not None
        self.hub.attach()
        ctx = self.ctx = ApiContext(
            engine=engine,
            clock=self.clock,
            token=self.token,
            hub=self.hub,
            oauth=OAuthStates(self.clock),
            metrics=self.metrics,
            public_url=self.config.api.public_url or api.url,
            max_body_bytes=self.config.api.max_body_bytes,
            version=version(),
            started_at=self.clock.now(),
            desk=self._desk(engine),
        )
        async with AsyncExitStack() as stack:
            if self.broker_running is not None:
                await stack.enter_async_context(self.broker_running)
            await self._serve(engine, api, ctx)
        if self._exit_timer is not None:
            self._exit_timer.cancel()  # the loop finished: main() exits as usual

    def _desk(self, engine: Engine) -> PaperDesk | None:
        """The paper trading desk, on the paper broker only; it moves the simulated market's
        walk when one runs."""
        if self.paper is None:
            return None
        market = self.market if self.config.demo_market else None
        return PaperDesk(engine, self.paper, self.contracts, market, self.config.broker.kind)

    async def _serve(self, engine: Engine, api: ApiServer, ctx: ApiContext) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                stopping = trio.Event()

                def stop(reason: str) -> None:
                    if not stopping.is_set():
                        engine.stop_placing()  # first of all: no order leaves from here on
                        self.stop_reason = reason
                        stopping.set()

                nursery.start_soon(self._fire_timers)
                nursery.start_soon(self._maintain)
                nursery.start_soon(self._watch_durability)
                if self.alerts is not None:
                    nursery.start_soon(self.alerts.run)
                served = trio.Event()

                async def serve_api() -> None:
                    try:
                        await api.serve(build_app(ctx))
                    finally:
                        served.set()

                nursery.start_soon(serve_api)
                async with trio.open_nursery() as feeds:
                    feeds.start_soon(self._watch_signals, signals, stop)
                    self._start_feeds(feeds)
                    if self.options.signal_commands:
                        feeds.start_soon(self._signal_commands)
                    if self.options.duration is not None:
                        feeds.start_soon(self._stop_after, self.options.duration, stop)
                    self._announce(api.url)
                    await stopping.wait()
                    feeds.cancel_scope.cancel()
                log.info("stopping", reason=self.stop_reason)
                ctx.stop_accepting()
                self.hub.close()
                api.stop()  # open requests finish while the orders in flight settle
                await self._settle()
                with trio.move_on_after(API_STOP_TIMEOUT):
                    await served.wait()
                nursery.start_soon(self._ignore_signals, signals)
                with trio.move_on_after(STOP_TIMEOUT):
                    # Off the trio thread, so a second Ctrl-C is heard (and ignored), and under a
                    # watchdog: a process that hangs on its way out is worse than one that exits.
                    await trio.to_thread.run_sync(self.close, abandon_on_cancel=True)
                    self._exit_timer = _exit_unless_done(
                        EXIT_NOT_DURABLE if self.not_durable() else EXIT_OK
                    )
                    nursery.cancel_scope.cancel()
                    return
                log.error("stop did not finish in time: exiting anyway", timeout_s=STOP_TIMEOUT)
                sys.stderr.flush()
                os._exit(EXIT_STUCK)

    def _announce(self, url: str) -> None:
        write_url(self.options.data_dir, url)
        log.info("engine started", pid=os.getpid(), api=url, stop=self._stop_hint())
        token_file = self.options.data_dir / "api.token"
        if not sys.stdout.isatty():
            # Output kept in a file or read by a program: the address is logged without its
            # token (never in a log or a file), with where the token is and the command that
            # prints the whole address.
            log.info("Cockpit", address=f"{url}/", sign_in=self._sign_in_hint(token_file))
            return
        if self.token_new:
            # Shown once, to the person at the terminal (stdout): never in a log line or file.
            print(f"Cockpit: {url}/#token={self.token}", flush=True)
            print(f"  (the API token is saved in {token_file}, mode 0600; not shown again)")
        else:
            print(f"Cockpit: {url}/   (API token: {token_file})", flush=True)
        if self.local is not None:
            print(
                f"Local Tradovate server: {self.local.url}  (connections start reauth_required:"
                " press Re-authorize in the Cockpit, then Sign in as the connection's name)",
                flush=True,
            )

    def _sign_in_hint(self, token_file: Path) -> str:
        return (
            f"the API token is in {token_file} (mode 0600); python -m engine"
            f" cockpit{self._data_dir_option()} prints the address with it"
        )

    def _stop_hint(self) -> str:
        return "after --duration" if self.options.duration else "Ctrl-C"

    def _start_feeds(self, nursery: trio.Nursery) -> None:
        """The demo's simulated market and leader, when configured, on the paper broker or the
        local Tradovate server (which gets the market's first prices now: it started empty)."""
        venue: demo.Venue
        if self.paper is not None:
            venue = demo.PaperVenue(self.paper)
        elif self.local is not None:
            venue = self.local.venue
            if self.config.demo_market:
                demo.publish(venue, self.market.quotes())
        else:
            return
        if self.config.demo_market:
            nursery.start_soon(demo.run_market, venue, self.market)
        self._start_leader(nursery, venue)

    def _start_leader(self, nursery: trio.Nursery, venue: demo.Venue) -> None:
        engine = self.engine
        assert engine is not None
        account = self.config.demo_leader(demo.LEADER)
        if not account:
            return
        found = engine.topology.accounts.get(account)
        if found is None:
            log.warning("demo leader disabled: no account in the store", account=account)
            return
        login, local = found.connection, self.local

        async def lead() -> None:
            if local is not None and not venue.is_delivering(login):
                # Before its login is authorized there is nothing to copy: the leader waits.
                log.info("demo leader waits for its connection", connection=login)
                await local.wait_live(login)
                log.info("demo leader trading", connection=login)
            await demo.run_leader(
                venue,
                self.leader,
                account,
                self.options.leader_interval,
                delivering=lambda: venue.is_delivering(login),
            )

        nursery.start_soon(lead)

    async def _settle(self) -> None:
        """Orders in flight get ``engine.settle_seconds`` to come back from the broker; those
        still unanswered are recorded as ``unknown`` when the actors stop (``close``)."""
        seconds = self.config.engine.settle_seconds
        with trio.move_on_after(seconds):
            # Settled when nothing is in flight at the broker and the actors have nothing
            # queued: a leader fill still in a mailbox when the last answer came sends copies
            # after it, and they get the same time to come back.
            while self.metrics.in_flight > 0 or not await trio.to_thread.run_sync(self._drained):
                await trio.sleep(0.02)
        if self.metrics.in_flight:
            log.warning(
                "stopping with orders in flight: recorded as unknown, the next start asks"
                " the broker",
                orders=self.metrics.in_flight,
                waited_s=seconds,
            )

    def _drained(self) -> bool:
        """Whether the actors have handled everything told to them (waits a moment for it)."""
        if self.engine is None:
            return True
        try:
            self.engine.runtime.wait_idle(timeout=DRAIN_WAIT)
        except TimeoutError:
            return False
        return self.metrics.in_flight == 0

    async def _signal_commands(self) -> None:
        """``--signal-commands``: SIGUSR1 flattens the demo group, SIGUSR2 locks the demo's
        second follower. A command the engine refuses is logged, never fatal."""
        engine = self.engine
        assert engine is not None
        commands: dict[int, tuple[str, Callable[[], None]]] = {
            signal.SIGUSR1: (
                f"flatten group {demo.GROUP}",
                lambda: engine.flatten_group(demo.GROUP),
            ),
            signal.SIGUSR2: (f"lock {demo.LOCKED}", lambda: engine.lock(demo.LOCKED)),
        }
        with trio.open_signal_receiver(*commands) as received:
            async for signum in received:
                name, command = commands[signum]
                log.info("command", command=name, signal=signal.Signals(signum).name)
                try:
                    assert self.ctx is not None
                    await self.ctx.command(command)
                except Exception as error:  # a refused or failed command must not stop the run
                    log.error("command failed", command=name, error=str(error))

    def _journal(self) -> JournalLimits:
        journal = self.config.journal
        return JournalLimits(journal.segment_mb * MB, journal.retention_days, journal.max_mb * MB)

    async def _maintain(self) -> None:
        """Every few seconds, off the trio thread: compact the logs past their threshold and
        prune the records past their retention (``Engine.maintain``, decision 0013)."""
        engine = self.engine
        assert engine is not None
        while True:
            await trio.sleep(MAINTAIN_EVERY)
            try:
                await trio.to_thread.run_sync(engine.maintain)
            except Exception as error:  # a failed compaction leaves the logs as they were
                log.error("maintenance failed; tried again later", error=repr(error))

    async def _fire_timers(self) -> None:
        """Tell each timer message when it falls due on the wall clock (retries, backoff)."""
        engine = self.engine
        assert engine is not None
        timers, clock = engine.services.timers, engine.clock
        while True:
            wait = MAX_TIMER_WAIT
            due = timers.next_due()
            if due is not None:
                wait = min(wait, max(0.0, (due - clock.now()).total_seconds()))
            await trio.sleep(wait)
            engine.fire_due_timers()

    async def _watch_durability(self) -> None:
        """While the engine cannot make its state durable, probe what the disk refused; past
        ``engine.durability_timeout_seconds`` of it, exit for the service manager to restart
        the engine (decision 0014)."""
        engine = self.engine
        assert engine is not None
        durability = engine.durability
        timeout = self.config.engine.durability_timeout_seconds
        while True:
            await trio.sleep(DURABILITY_POLL)
            if durability.ok:
                continue
            health = await trio.to_thread.run_sync(durability.poll)
            if not health.ok and durability.lost_for() >= timeout:
                self._exit_not_durable(health, timeout)

    def _exit_not_durable(self, health: Health, timeout: float) -> None:
        """One line, then out at once, as a ``kill -9`` would: nothing more can be saved, and
        everything saved before is what a restart recovers from (docs/recovery.md)."""
        engine = self.engine
        unsaved = engine.records.unwritten_statuses() if engine is not None else []
        log.error(
            "exiting: state could not be made durable",
            reason=health.reason,
            since=health.since.isoformat() if health.since else None,
            timeout_s=timeout,
            exit_status=EXIT_NOT_DURABLE,
            **({"risk_status_not_saved": unsaved} if unsaved else {}),
        )
        sys.stderr.flush()
        os._exit(EXIT_NOT_DURABLE)

    @staticmethod
    async def _watch_signals(signals: AsyncIterator[int], stop: Callable[[str], None]) -> None:
        async for signum in signals:
            stop(signal.Signals(signum).name)
            return

    @staticmethod
    async def _ignore_signals(signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            log.warning("already stopping", signal=signal.Signals(signum).name)

    @staticmethod
    async def _stop_after(seconds: float, stop: Callable[[str], None]) -> None:
        await trio.sleep(seconds)
        stop(f"--duration {seconds:g} s elapsed")

    # -- stop ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Let in-flight work settle, stop the actors, close the store, drop the lock. Safe to
        call more than once and after a failed ``open``."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.api is not None:
                self.api.close()  # a no-op once it has served: serving closes it
            if self.engine is not None:
                try:
                    self.engine.runtime.wait_idle(timeout=IDLE_AT_STOP)
                except TimeoutError as error:  # what is still queued is dropped by the stop
                    log.warning("stopping with work in flight", error=str(error))
                if self.started:
                    self.engine.unanswered_unknown()
                self.engine.stop()
            if self.store is not None:
                self.store.close()
            if self.local is not None:
                self.local.close()  # a no-op once it has served: serving closes its socket
        finally:
            if self.started:
                remove_url(self.options.data_dir)
            self.lock.release()
        if self.started:
            if self.not_durable():
                assert self.engine is not None
                log.error(
                    "stopped with state not saved",
                    reason=self.engine.health().reason,
                    exit_status=EXIT_NOT_DURABLE,
                )
            else:
                log.info("stopped")

    def not_durable(self) -> bool:
        """Whether the engine could not make its state durable when it stopped."""
        return self.engine is not None and not self.engine.health().ok


def _private(data_dir: Path) -> None:
    """Once the start is sure to go on: take off what others could read in the data
    directory, saying what."""
    tightened = tighten(data_dir)
    if tightened:
        log.info("data directory made private to its owner (0700, files 0600)", paths=tightened)


def _not_durable(error: BaseException) -> RunError:
    return RunError(
        f"cannot start: state cannot be made durable ({error}); free space on the data"
        " directory's disk (or mend it) and start again",
        EXIT_NOT_DURABLE,
    )


def _days(days: float) -> timedelta | None:
    return timedelta(days=days) if days else None


def _exit_unless_done(code: int) -> threading.Timer:
    """Once the engine has stopped and everything is flushed and closed: if the loop has not
    finished within ``EXIT_GRACE`` — an API connection stuck writing to a client that takes
    nothing holds it until the kernel drops the client — exit without waiting for it."""

    def exit_now() -> None:
        log.warning("exiting without waiting for stuck connections", waited_s=EXIT_GRACE)
        close_log_file()
        sys.stderr.flush()
        os._exit(code)

    timer = threading.Timer(EXIT_GRACE, exit_now)
    timer.daemon = True
    timer.start()
    return timer


def _check_brokers(topology: Topology, kind: str, store: Path) -> None:
    """A store whose connections use another broker than this run's is refused in one line
    (the paper demo's store under ``--tradovate-sim``, say), before any actor is made."""
    for connection in topology.connections.values():
        if connection.broker != kind:
            raise RunError(
                f"{store}: connection {connection.id!r} is on broker {connection.broker!r} but"
                f" this run's broker.kind is {kind!r}; use another --data-dir (or run on"
                f" {connection.broker!r})"
            )


def main(args: argparse.Namespace) -> int:
    try:
        config = load_config(
            Path(args.config) if args.config else None,
            broker=TRADOVATE_SIM if args.tradovate_sim else None,
        )
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_SETUP
    options = Options.from_args(args, config)
    configure_logging(config.log.level, json=options.json)
    if options.signal_commands:
        # Until the signal receiver is up (during the start), a command signal is ignored rather
        # than killing the process (the default action of SIGUSR1 and SIGUSR2).
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    run = LiveRun(options, Reporter(json=options.json))
    try:
        run.open()
        trio.run(run.serve)
    except RunError as error:
        run.close()
        print(error, file=sys.stderr)
        return error.code
    except NotDurable as error:  # at the start: the store or a log refused its first writes
        run.close()
        print(_not_durable(error), file=sys.stderr)
        return EXIT_NOT_DURABLE
    except KeyboardInterrupt:  # Ctrl-C before the signal watcher was up (during the start)
        log.info("stopping", reason="SIGINT")
    finally:
        run.close()
        close_log_file()
    return EXIT_NOT_DURABLE if run.not_durable() else EXIT_OK
