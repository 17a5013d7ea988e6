"""The Cockpit in a real headless browser (chromium, driven over the DevTools protocol) against a
real engine process: the page loads, a copy shows up live in the activity feed, and pressing
Flatten Group (and confirming) takes every account of the group flat.

Skipped when no chromium binary is found (``.ci/run`` installs Debian's ``chromium``; set
``CHROMIUM`` to use another). ``COCKPIT_SCREENSHOT=FILE`` also saves a screenshot of the page
once a copy is on it — ``make screenshot`` uses it for the README.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from tests.engine.api.cdp import browser, find_chromium, open_page
from tests.engine.engine_process import start_engine, stop_engine

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium binary found (apt-get install chromium, or set CHROMIUM=/path)",
)

ROWS = "[...document.querySelectorAll('#accounts tbody tr')]"
POSITIONS = f"{ROWS}.map(r => r.querySelector('.pos').textContent)"


@pytest.mark.trio
async def test_cockpit_shows_a_copy_live_and_flattens_a_group(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    engine = start_engine(tmp_path / "data", "--demo-interval", "3")
    try:
        async with browser(CHROMIUM, tmp_path / "profile") as ws:
            page = await open_page(ws, f"{engine.url}/#token={engine.token}")
            await page.wait_for(
                f"document.querySelector('#engine-status').textContent === 'live'"
                f" && {ROWS}.length === 4",
                20,
                "the page to load the engine's state",
            )
            assert await page.evaluate("location.hash") == ""  # the token left the address bar
            offered = await page.evaluate(
                "[...document.querySelectorAll('#add-connection select[name=broker] option')]"
                ".map(o => o.value)"
            )
            assert offered == ["paper"]  # "Add a connection" offers the brokers this engine runs
            await page.wait_for(
                "[...document.querySelectorAll('#activity li.fresh')]"
                ".some(li => li.dataset.kind === 'copy')",
                25,
                "a copy to appear live in the activity feed",
            )
            await page.wait_for(
                f"{POSITIONS}.some(p => p !== 'flat')", 10, "an open position on the page"
            )
            shot = os.environ.get("COCKPIT_SCREENSHOT")
            if shot:
                await trio.sleep(0.5)
                await page.screenshot(Path(shot))
            await page.evaluate(
                'document.querySelector(\'button[data-action="flatten-group"]'
                '[data-group="demo"]\').click()'
            )
            await page.wait_for(
                "document.querySelector('#confirm').open", 5, "the confirmation dialog"
            )
            await page.evaluate("document.querySelector('#confirm-ok').click()")
            flat = await page.wait_for(
                f"{POSITIONS}.every(p => p === 'flat') && {POSITIONS}", 5, "every account flat"
            )
            assert flat == ["flat"] * 4
            notice = await page.evaluate("document.querySelector('#notice').textContent")
            assert "flattening" in notice
    finally:
        assert stop_engine(engine) == 0
