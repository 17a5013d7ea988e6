"""A few lines of the Chrome DevTools Protocol, enough to drive a headless chromium from a test:
start it, open a page, evaluate JavaScript, take a screenshot. No dependency beyond
trio-websocket (already installed for the engine)."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

CANDIDATES = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
    "headless_shell",
)


def find_chromium() -> str | None:
    given = os.environ.get("CHROMIUM")
    if given:
        return given if Path(given).exists() else shutil.which(given)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(Exception):
    pass


_drains: dict[int, threading.Thread] = {}  # browser pid -> the thread reading its stderr


class Page:
    """One tab, attached with a flat session."""

    def __init__(self, ws: WebSocketConnection, session: str) -> None:
        self.ws = ws
        self.session = session
        self._ids = itertools.count(1000)

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await _send(self.ws, self._ids, method, params, self.session)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        with trio.move_on_after(timeout):
            while True:
                try:
                    value = await self.evaluate(expression)
                except CdpError:  # the page is still loading (no context, no element yet)
                    value = None
                if value:
                    return value
                await trio.sleep(0.1)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    async def screenshot(self, path: Path) -> None:
        data = await self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(data["data"]))


async def _send(
    ws: WebSocketConnection,
    ids: itertools.count[int],
    method: str,
    params: dict[str, Any] | None,
    session: str | None = None,
) -> dict[str, Any]:
    ident = next(ids)
    message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    await ws.send_message(json.dumps(message))
    while True:
        answer = json.loads(await ws.get_message())
        if answer.get("id") == ident:
            if "error" in answer:
                raise CdpError(f"{method}: {answer['error']}")
            result: dict[str, Any] = answer.get("result", {})
            return result


@asynccontextmanager
async def browser(
    binary: str, profile: Path, size: tuple[int, int] = (1400, 1000)
) -> AsyncIterator[WebSocketConnection]:
    proc = subprocess.Popen(
        [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = await trio.to_thread.run_sync(_devtools_url, proc)
        async with open_websocket_url(url, max_message_size=64 * 1024 * 1024) as ws:
            yield ws
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        drain = _drains.pop(proc.pid, None)
        if drain is not None:
            drain.join(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def _devtools_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    for line in proc.stderr:
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            # Keep reading what it says, so a chatty browser never blocks on a full pipe.
            drain = threading.Thread(target=proc.stderr.read, daemon=True)
            drain.start()
            _drains[proc.pid] = drain
            return found.group(1)
    raise CdpError(f"chromium exited ({proc.wait()}) without a DevTools URL")


async def open_page(ws: WebSocketConnection, url: str) -> Page:
    ids = itertools.count(1)
    target = await _send(ws, ids, "Target.createTarget", {"url": "about:blank"})
    attached = await _send(
        ws, ids, "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
    )
    page = Page(ws, attached["sessionId"])
    await page.send("Page.enable")
    await page.send("Runtime.enable")
    await page.send("Page.navigate", {"url": url})
    return page
