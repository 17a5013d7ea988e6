"""``python -m engine run``: the long-running engine process (what ``make run`` starts).

On defaults it runs the paper broker, a SQLite store in ``./data/``, the demo setup and a
simulated market with a demo leader trading now and then (:mod:`engine.demo`), and logs each
leader fill and the orders the engine sends for it, until Ctrl-C (or SIGTERM) stops it cleanly.

trio owns the main loop: one nursery runs the engine's timers (on the wall clock), the market,
the demo leader and the signal watcher. The actors run on pykka threads; trio reaches them only
through the broker's events and ``tell``. On a signal the nursery is cancelled, the actors are
given a moment to finish what is in flight, then the engine and the store are closed.

One engine per data directory: an exclusive ``flock`` on ``DATA/engine.lock`` refuses a second.

``--paper-state FILE`` keeps the paper broker's state in a file (``brokers/paper/state.py``), so
the broker outlives the engine process like a real one: a restarted engine, even after a
``kill -9``, finds the positions, orders and ids the broker had, and reconciles with them.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import random
import secrets
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import trio

from brokers.base import Broker, BrokerEvent, BrokerSession, EventSink, Fill
from brokers.paper import PaperBroker, PaperBrokerError
from engine import demo
from engine.clock import WallClock
from engine.core import Engine, EngineSettings
from engine.instruments import ContractTable
from engine.intents import IntentLogError
from engine.journal import Journal
from engine.logs import configure_logging
from engine.records import ActivityEntry, LedgerRow, Level
from engine.store import Store, StoreError
from engine.topology import Topology

log = structlog.get_logger("engine.live")

EXIT_OK = 0
EXIT_REFUSED = 1  # another engine holds the data directory
EXIT_SETUP = 2  # the data directory or the store cannot be used
EXIT_STUCK = 3  # the stop hung (a stuck actor or store writer) and was cut short

STORE_FILE = "engine.sqlite"
JOURNAL_FILE = "engine.journal"
LOCK_FILE = "engine.lock"
MAX_TIMER_WAIT = 0.1  # seconds between looks at the timer queue, at most
SETTLE_TIMEOUT = 5.0  # seconds the actors get to finish in-flight work at stop
STOP_TIMEOUT = 30.0  # seconds the whole stop may take before the process just exits


class RunError(Exception):
    """The engine cannot start; the message is one line for the user, ``code`` the exit code."""

    def __init__(self, message: str, code: int = EXIT_SETUP) -> None:
        super().__init__(message)
        self.code = code


# --- command line -------------------------------------------------------------------------------


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number of seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", default="data", help="where the store and the lock live (default ./data)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the simulated market (default: random)"
    )
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=None,
        help="readable lines or JSON lines (default: console on a terminal, JSON otherwise)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="stop by itself after this long (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--paper-state",
        default=None,
        metavar="FILE",
        help="keep the paper broker's state in FILE across runs, as a real broker keeps it"
        " (default: the broker lives and dies with the process)",
    )
    # For tests: the demo leader trades every SECONDS instead of every 3-8 s.
    parser.add_argument(
        "--demo-interval", type=_positive_seconds, default=None, help=argparse.SUPPRESS
    )
    # For tests, until there is a control API: SIGUSR1 flattens the demo group and SIGUSR2
    # locks the demo's second follower (a manual lock), as a user's commands would.
    parser.add_argument("--signal-commands", action="store_true", help=argparse.SUPPRESS)


@dataclass(frozen=True)
class Options:
    data_dir: Path
    seed: int
    json: bool
    duration: float | None
    leader_interval: tuple[float, float]
    paper_state: Path | None = None
    signal_commands: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        log_format: str | None = args.log_format
        use_json = not sys.stderr.isatty() if log_format is None else log_format == "json"
        seed: int = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
        interval = demo.LEADER_INTERVAL
        if args.demo_interval is not None:
            interval = (args.demo_interval, args.demo_interval)
        paper_state = Path(args.paper_state) if args.paper_state is not None else None
        return cls(
            Path(args.data_dir),
            seed,
            use_json,
            args.duration,
            interval,
            paper_state,
            bool(args.signal_commands),
        )


# --- what make run logs ---------------------------------------------------------------------------


class Reporter:
    """The log of a live run: leader fills as the broker reports them, every order the engine
    sends (with the fill that caused it), and every activity record.

    JSON lines carry fixed event names and the figures as fields; console lines are written to
    be read (``leader fill     DEMO-LEAD +2 ESZ6 @ 5012.25  (fill X3)``). Called from the actor
    threads and the broker's sinks, so it never raises. Nothing here sees a token.
    """

    def __init__(self, *, json: bool) -> None:
        self.json = json
        self.leaders: frozenset[str] = frozenset()
        self.followers: frozenset[str] = frozenset()

    def learn(self, topology: Topology) -> None:
        self.leaders = frozenset(g.leader for g in topology.groups.values())
        self.followers = frozenset(m.account for g in topology.groups.values() for m in g.members)

    def emit(self, level: str, event: str, summary: str, **fields: Any) -> None:
        try:
            method = getattr(log, level)
            if self.json:
                method(event, **fields)
            else:
                method(f"{event:<15} {summary}")
        except Exception:  # a log line must never break an actor or the broker
            pass

    # -- broker events (wraps the sinks of the engine's sessions) ---------------------------------

    def broker_event(self, event: BrokerEvent) -> None:
        if isinstance(event, Fill) and event.account in self.leaders:
            part = "" if event.order_done else ", partial"
            self.emit(
                "info",
                "leader fill",
                f"{event.account} {event.qty:+d} {event.symbol} @ {event.price}"
                f"  (fill {event.fill_id}{part})",
                account=event.account,
                symbol=event.symbol,
                qty=event.qty,
                price=str(event.price),
                fill_id=event.fill_id,
                order_done=event.order_done,
            )

    # -- records -----------------------------------------------------------------------------------

    def record(self, topic: str, payload: Any) -> None:
        if topic == "order" and isinstance(payload, LedgerRow):
            self._order(payload)
        elif topic == "activity" and isinstance(payload, ActivityEntry):
            self._activity(payload)

    def _order(self, row: LedgerRow) -> None:
        event = "follower order" if row.account in self.followers else "engine order"
        what = (
            f"liquidate {row.symbol}"
            if row.order_type == "liquidate"
            else f"{row.qty:+d} {row.symbol}"
        )
        self.emit(
            "info",
            event,
            f"{row.account} {what}  ({row.kind} of {row.cause}, order {row.client_order_id})",
            account=row.account,
            symbol=row.symbol,
            qty=row.qty,
            order_type=row.order_type,
            kind=row.kind,
            cause=row.cause,
            client_order_id=row.client_order_id,
        )

    def _activity(self, entry: ActivityEntry) -> None:
        level = {Level.INFO: "info", Level.WARNING: "warning", Level.ERROR: "error"}[entry.level]
        who = entry.account or entry.connection or "engine"
        self.emit(
            level,
            "activity",
            f"{who} {entry.message}  [{entry.kind.value}]",
            kind=entry.kind.value,
            account=entry.account,
            connection=entry.connection,
            message=entry.message,
        )


class ObservedBroker(Broker):
    """A broker whose sessions show every event to ``observe`` before the engine gets it, so a
    leader fill is logged before the orders it causes."""

    def __init__(self, inner: Broker, observe: Callable[[BrokerEvent], None]) -> None:
        self.inner = inner
        self.observe = observe

    def session(self, connection: str, accounts: tuple[str, ...], sink: EventSink) -> BrokerSession:
        observe = self.observe

        def observed(event: BrokerEvent) -> None:
            observe(event)
            sink(event)

        return self.inner.session(connection, accounts, observed)


# --- the data directory ---------------------------------------------------------------------------


def prepare_data_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise RunError(f"cannot use data directory {path}: not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot create data directory {path}: {error.strerror or error}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunError(f"cannot use data directory {path}: not writable")


class DataLock:
    """An exclusive, non-blocking ``flock`` on ``DATA/engine.lock``, held while the engine runs.

    The kernel drops it when the process ends, however it ends, so a stale file never blocks a
    start."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise RunError(
                f"cannot use data directory {self.data_dir}: cannot open {self.path}: "
                f"{error.strerror or error}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunError(
                    f"another engine is running on {self.data_dir}/ (lock {self.path} held)",
                    EXIT_REFUSED,
                ) from None
            raise RunError(f"cannot lock {self.path}: {error.strerror or error}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor releases the flock


# --- the run --------------------------------------------------------------------------------------


class LiveRun:
    """One engine process: ``open`` (synchronous), ``serve`` (inside trio), ``close``."""

    def __init__(self, options: Options, reporter: Reporter) -> None:
        self.options = options
        self.reporter = reporter
        self.lock = DataLock(options.data_dir)
        self.store: Store | None = None
        self.engine: Engine | None = None
        self.clock = WallClock()
        self.contracts = ContractTable()
        self.paper: PaperBroker | None = None  # made in open(), once the data directory is ours
        self.market = demo.Market(random.Random(f"market:{options.seed}"), demo.DEMO_INSTRUMENTS)
        self.leader = demo.DemoLeader(
            random.Random(f"leader:{options.seed}"),
            self.market.symbols,
            weights=[3, 1][: len(self.market.symbols)],
        )
        self.stop_reason = "unknown"
        self.started = False
        self._closed = False

    # -- start -----------------------------------------------------------------------------------

    def open(self) -> None:
        options = self.options
        prepare_data_dir(options.data_dir)
        self.lock.acquire()
        self.paper = paper = self._paper_broker()
        path = options.data_dir / STORE_FILE
        try:
            self.store = Store(path)
        except StoreError as error:
            raise RunError(str(error)) from None
        try:
            self.engine = engine = Engine(
                store=self.store,
                clock=self.clock,
                brokers={"paper": ObservedBroker(paper, self.reporter.broker_event)},
                contracts=self.contracts,
                settings=EngineSettings(runtime="threads"),
                journal=Journal(options.data_dir / JOURNAL_FILE, self.clock),
            )
            fresh = demo.seed_if_empty(engine)
        except (StoreError, IntentLogError) as error:
            raise RunError(str(error)) from None
        except (sqlite3.Error, OSError) as error:
            raise RunError(f"{path}: {error}") from None
        topology = engine.topology
        log.info(
            "engine starting",
            data_dir=str(options.data_dir),
            store=str(path),
            store_state="new, demo setup written" if fresh else "existing, reconciling",
            seed=options.seed,
            paper_state=str(options.paper_state) if options.paper_state else None,
            pid=os.getpid(),
        )
        for line in demo.describe_groups(topology):
            log.info("copy group", group=line)
        self.reporter.learn(topology)
        engine.records.listeners.append(self.reporter.record)
        engine.start(reconcile=not fresh)
        self.started = True
        demo.publish(paper, self.market.quotes())

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
        paper = self.paper
        assert paper is not None
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                scope = nursery.cancel_scope

                def stop(reason: str) -> None:
                    self.stop_reason = reason
                    scope.cancel()

                nursery.start_soon(self._watch_signals, signals, stop)
                nursery.start_soon(self._fire_timers)
                nursery.start_soon(demo.run_market, paper, self.market)
                self._start_leader(nursery, paper)
                if self.options.signal_commands:
                    nursery.start_soon(self._signal_commands)
                if self.options.duration is not None:
                    nursery.start_soon(self._stop_after, self.options.duration, stop)
                log.info(
                    "engine started",
                    pid=os.getpid(),
                    stop="after --duration" if self.options.duration else "Ctrl-C",
                )
            log.info("stopping", reason=self.stop_reason)
            # Shut down off the trio thread, so a second Ctrl-C is heard (and ignored), and
            # under a watchdog: a process that hangs on its way out is worse than one that exits.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ignore_signals, signals)
                with trio.move_on_after(STOP_TIMEOUT):
                    await trio.to_thread.run_sync(self.close, abandon_on_cancel=True)
                    nursery.cancel_scope.cancel()
                    return
                log.error("stop did not finish in time: exiting anyway", timeout_s=STOP_TIMEOUT)
                sys.stderr.flush()
                os._exit(EXIT_STUCK)

    def _start_leader(self, nursery: trio.Nursery, paper: PaperBroker) -> None:
        engine = self.engine
        assert engine is not None
        account = demo.LEADER
        connection = paper.account_of(account)
        if account not in engine.topology.accounts or connection is None:
            log.warning("demo leader disabled: no account in the store", account=account)
            return
        nursery.start_soon(
            lambda: demo.run_leader(
                paper,
                self.leader,
                account,
                self.options.leader_interval,
                delivering=lambda: paper.is_delivering(connection),
            )
        )

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
                    await trio.to_thread.run_sync(command)
                except Exception as error:  # a refused or failed command must not stop the run
                    log.error("command failed", command=name, error=str(error))

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
            if self.engine is not None:
                try:
                    self.engine.runtime.wait_idle(timeout=SETTLE_TIMEOUT)
                except TimeoutError as error:
                    log.warning("stopping with work in flight", error=str(error))
                self.engine.stop()
            if self.store is not None:
                self.store.close()
        finally:
            self.lock.release()
        if self.started:
            log.info("stopped")


def main(args: argparse.Namespace) -> int:
    options = Options.from_args(args)
    configure_logging(json=options.json)
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
    except KeyboardInterrupt:  # Ctrl-C before the signal watcher was up (during the start)
        log.info("stopping", reason="SIGINT")
    finally:
        run.close()
    return EXIT_OK
