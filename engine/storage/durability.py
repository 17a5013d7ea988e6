"""Whether the engine can make its state durable, and what it does when it cannot.

Every file the engine's state lives in reports here: the store's writer (``engine.sqlite``), the
intent, fan-out and status logs and the journal. A write that fails — a full disk (``ENOSPC``),
an I/O error, the store's writer unable to commit — marks its file *failing*, and the engine is
unhealthy from that moment: new orders are held back (decision 0014), the API's ``/healthz``
answers 503 with the reason, and the live process counts down ``[engine]
durability_timeout_seconds`` before it exits (``engine/live/runner.py``).

Each failing file comes back on its own: the store's writer retries its batch until it commits,
the journal its buffer at each flush, and a frame log is probed (:meth:`Durability.poll`: it must
take :data:`PROBE_BYTES` more). When none is failing, what the frame logs could not take while
they failed is written (:attr:`Durability.before_restore`), and only then is the engine healthy
again.

``MIMIK_DISK_FULL_FLAG`` names a file: while it exists, every write of the store and of the frame
logs fails as on a full disk. It is for fire drills (does the alarm ring, does the service
manager restart the engine?) and for the tests, where mounting a small filesystem is not allowed.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from brokers.clock import Clock, WallClock

log = structlog.get_logger("engine.storage.durability")

PROBE_BYTES = 1024 * 1024  # what a failing frame log must take again before it counts as back
DRILL_ENV = "MIMIK_DISK_FULL_FLAG"
# OS errors of the disk rather than of the program: the write may succeed later.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG})
# SQLite's primary result codes for the same: full, I/O error, read-only, cannot open, no memory.
SQLITE_DISK_CODES = frozenset({13, 10, 8, 14, 7})


class NotDurable(Exception):
    """State cannot be made durable now; the message names the file and why."""


def disk_error(error: BaseException) -> bool:
    """Whether ``error`` says the disk (not the program) refused a write."""
    if isinstance(error, NotDurable):
        return True
    if isinstance(error, OSError):
        return error.errno in DISK_ERRNOS
    if isinstance(error, sqlite3.OperationalError):
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in SQLITE_DISK_CODES
        text = str(error)
        return "disk is full" in text or "disk I/O error" in text
    return False


def describe(error: BaseException) -> str:
    """``error`` in a few words, without its file (the caller names the file)."""
    if isinstance(error, OSError) and error.strerror:
        return f"[Errno {error.errno}] {error.strerror}"
    return str(error) or type(error).__name__


class DiskFullDrill:
    """While the file named by ``MIMIK_DISK_FULL_FLAG`` exists, :meth:`check` fails as a full
    disk does. Without the variable it costs one comparison."""

    def __init__(self, flag: Path | None) -> None:
        self.flag = flag

    @classmethod
    def from_environment(cls) -> DiskFullDrill:
        value = os.environ.get(DRILL_ENV, "")
        return cls(Path(value) if value else None)

    def check(self, what: str) -> None:
        if self.flag is not None and self.flag.exists():
            raise OSError(errno.ENOSPC, "No space left on device (drill)", what)

    def check_sqlite(self) -> None:
        if self.flag is not None and self.flag.exists():
            raise sqlite3.OperationalError("database or disk is full (drill)")


DRILL = DiskFullDrill.from_environment()


@dataclass(frozen=True, slots=True)
class Health:
    """``ok``, or why not (the first write that failed) and since when."""

    ok: bool
    reason: str = ""
    since: datetime | None = None


HEALTHY = Health(True)
Listener = Callable[[Health, Health], None]  # (before, after)


class Durability:
    """The engine's health as far as durability goes; thread-safe."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or WallClock()
        self._lock = threading.Lock()
        self._restoring = threading.Lock()
        self._failing: dict[str, str] = {}  # file -> why, in the order they failed
        self._probes: dict[str, Callable[[], None]] = {}
        self._health = HEALTHY
        self._lost_ns = 0
        # Run before the engine counts as healthy again (what was not written meanwhile); each
        # may raise NotDurable, having marked its file failing again.
        self.before_restore: list[Callable[[], None]] = []
        # Told every change of health, on the thread that caused it; must not raise.
        self.listeners: list[Listener] = []

    # -- reports -------------------------------------------------------------------------------

    def failed(self, source: str, why: str) -> None:
        """A write to ``source`` (a file name) failed: the engine is unhealthy from now on."""
        with self._lock:
            first = source not in self._failing
            self._failing[source] = why
            before = self._health
            if before.ok:
                self._health = Health(False, f"{source}: {why}", self.clock.now())
                self._lost_ns = self.clock.monotonic_ns()
            after = self._health
        if first:
            log.error("state cannot be made durable", file=source, error=why)
        if before.ok:
            self._notify(before, after)

    def recovered(self, source: str) -> None:
        """A write to ``source`` succeeded again."""
        with self._lock:
            if self._failing.pop(source, None) is None:
                return
            done = not self._failing
        log.info("durable again", file=source)
        if done:
            self._restore()

    def watch(self, source: str, probe: Callable[[], None]) -> None:
        """``probe`` tells whether a failing ``source`` takes writes again (raises if not)."""
        with self._lock:
            self._probes[source] = probe

    def unwatch(self, source: str) -> None:
        with self._lock:
            self._probes.pop(source, None)

    # -- reads -------------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        return self._health.ok

    def health(self) -> Health:
        return self._health

    def failing(self) -> dict[str, str]:
        with self._lock:
            return dict(self._failing)

    def lost_for(self) -> float:
        """Seconds since the engine became unhealthy (0 when healthy)."""
        with self._lock:
            if self._health.ok:
                return 0.0
            return max(0, self.clock.monotonic_ns() - self._lost_ns) / 1e9

    def require(self) -> None:
        """Raise :class:`NotDurable` while the engine is unhealthy."""
        health = self._health
        if not health.ok:
            raise NotDurable(f"state cannot be made durable ({health.reason})")

    # -- coming back ---------------------------------------------------------------------------

    def poll(self) -> Health:
        """Probe the failing files that cannot come back by themselves; return the health."""
        with self._lock:
            probes = [(s, self._probes[s]) for s in self._failing if s in self._probes]
            stuck = not self._health.ok and not self._failing
        for source, probe in probes:
            try:
                probe()
            except (NotDurable, OSError):
                continue
            self.recovered(source)
        if stuck:  # every file came back, but writing what waited failed: try again
            self._restore()
        return self._health

    def _restore(self) -> None:
        if not self._restoring.acquire(blocking=False):
            return  # another thread is at it
        try:
            for hook in self.before_restore:
                try:
                    hook()
                except NotDurable:
                    return  # its file is failing again; a later poll tries once more
            with self._lock:
                if self._failing or self._health.ok:
                    return
                before, self._health = self._health, HEALTHY
        finally:
            self._restoring.release()
        self._notify(before, HEALTHY)

    def _notify(self, before: Health, after: Health) -> None:
        for listener in list(self.listeners):
            try:
                listener(before, after)
            except Exception as error:  # a listener must not stop the report
                log.error("durability listener failed", error=repr(error))


__all__ = [
    "DRILL",
    "DRILL_ENV",
    "HEALTHY",
    "PROBE_BYTES",
    "DiskFullDrill",
    "Durability",
    "Health",
    "NotDurable",
    "describe",
    "disk_error",
]
