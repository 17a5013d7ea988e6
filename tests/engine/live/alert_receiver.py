"""A JSON webhook on loopback for the alert tests: what apprise's ``json://`` target posts, kept
in order. A path holding ``fail`` is answered 500; a path holding ``hang`` is held open until
:meth:`Receiver.release` (or 60 s), as a target that hangs. And the builders the alert tests
share: targets read from a variable as the engine reads them, a router on them, an entry."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trio

from brokers.clock import VirtualClock
from engine.app.alert_targets import Target, load_targets
from engine.app.alerts_config import AlertsConfig
from engine.app.metrics import EngineMetrics
from engine.domain.activity import ActivityEntry, Kind, Level
from engine.live.alerts import AlertRouter
from tests.conftest import START

HANG_LIMIT = 60.0


@dataclass(frozen=True)
class Post:
    path: str
    title: str
    message: str
    type: str


class Receiver:
    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.attempts: list[str] = []  # every request's path, answered or not
        self.hanging = 0  # requests held open now
        self.released = threading.Event()
        self._changed = threading.Condition()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def url(self, path: str = "hook", **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"json://127.0.0.1:{self.port}/{path}" + (f"?{query}" if query else "")

    def release(self) -> None:
        self.released.set()

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Until ``check()`` is true (the receiver wakes it on every request)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (found := check()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; posts: {self.posts}")
                self._changed.wait(min(left, 0.1))
        return found

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                with receiver._changed:
                    receiver.attempts.append(self.path)
                    receiver._changed.notify_all()
                if "hang" in self.path:
                    with receiver._changed:
                        receiver.hanging += 1
                        receiver._changed.notify_all()
                    receiver.released.wait(HANG_LIMIT)
                    with receiver._changed:
                        receiver.hanging -= 1
                if "fail" in self.path:
                    self._answer(500)
                    return
                data = json.loads(raw)
                with receiver._changed:
                    receiver.posts.append(
                        Post(self.path, data["title"], data["message"], data["type"])
                    )
                    receiver._changed.notify_all()
                self._answer(200)

            def _answer(self, status: int) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the client gave up on a hung request
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        receiver.server.shutdown()
        receiver.server.server_close()


def make_targets(*urls: str, **keys: Any) -> tuple[AlertsConfig, list[Target]]:
    """``[alerts]`` with ``keys``, its URLs from a variable holding ``urls``."""
    config = AlertsConfig(urls_env="ALERT_URLS", **keys)
    return config, load_targets(config, Path, {"ALERT_URLS": "\n".join(urls)})


def make_router(*urls: str, **keys: Any) -> tuple[AlertRouter, EngineMetrics]:
    config, found = make_targets(*urls, **keys)
    metrics = EngineMetrics(lambda: 0)
    return AlertRouter(config, found, metrics.alerts, VirtualClock(START)), metrics


async def until(receiver: Receiver, what: str, check: Callable[[], Any]) -> Any:
    """Inside trio: wait for the receiver off the loop's thread."""
    return await trio.to_thread.run_sync(receiver.wait_for, what, check)


def entry(kind: Kind, level: Level, message: str, account: str = "F1") -> ActivityEntry:
    return ActivityEntry(START, level, kind, message, account=account)


def titles(posts: list[Post]) -> list[str]:
    return [p.title for p in posts]
