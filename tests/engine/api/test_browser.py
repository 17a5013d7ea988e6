"""The Cockpit in a real headless browser (chromium, driven over the DevTools protocol) against a
real engine process: the page loads, a copy shows up live in the activity feed, and pressing
Flatten Group (and confirming) takes every account of the group flat; on the paper desk a
hand-made trade and prices take a follower near its limit and past it, its row showing the limit
and the money left; a follower's Sync shows its orders before it sends them.

Skipped when no chromium binary is found (``.ci/run`` installs Debian's ``chromium``; set
``CHROMIUM`` to use another). ``COCKPIT_SCREENSHOT=FILE`` also saves a screenshot of the page
once a copy is on it — ``make screenshot`` uses it for the README.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import trio

from tests.engine.api.cdp import Page, browser, find_chromium, open_page
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


@pytest.mark.trio
async def test_a_demo_bracket_shows_mirrored_on_every_follower_row(tmp_path: Path) -> None:
    """S8: the demo's followers copy orders; a bracket of the demo leader shows on each
    follower's row as its working orders, each naming the leader order it mirrors."""
    assert CHROMIUM is not None
    engine = start_engine(tmp_path / "data", "--demo-interval", "1")
    try:
        async with browser(CHROMIUM, tmp_path / "profile") as ws:
            page = await open_page(ws, f"{engine.url}/#token={engine.token}")
            modes = await page.wait_for(
                "[...document.querySelectorAll('#groups .copy-mode')].map(c => c.textContent)"
                ".join(' ')",
                20,
                "the followers' copy modes",
            )
            assert modes == "orders orders orders"
            followers = [f"'DEMO-F{n}'" for n in (1, 2, 3)]
            mirrored = await page.wait_for(
                f"[{', '.join(followers)}].map(a => [...document.querySelectorAll("
                f'`#accounts tr[data-account="${{a}}"] .orders li[data-mirrors]`)]'
                ".map(li => li.dataset.mirrors + ' ' + li.textContent))"
                ".every(lines => lines.length) && document.querySelector("
                "'#accounts tr[data-account=\"DEMO-F1\"] .orders li[data-mirrors]').textContent",
                60,
                "a bracket of the leader mirrored on every follower's row",
            )
            assert "mirrors " in mirrored
    finally:
        assert stop_engine(engine) == 0


# The demo setup with no simulated leader and no market: every trade and price is the desk's.
DESK_CONFIG = """
[demo]
leader = ""
market = false
"""
F1 = "document.querySelector('#accounts tr[data-account=\"DEMO-F1\"]')"
F1_LIMIT = f"{F1}.querySelector('.limit[data-limit=\"daily_loss_limit\"]')"


def _row(account: str) -> str:
    return f"document.querySelector('#accounts tr[data-account=\"{account}\"]')"


async def _desk(page: Page, form: str, **values: str) -> str:
    """Fill one of the desk's forms as a person would, submit it, and return the answer shown."""
    await page.evaluate("document.querySelector('#paper-result').textContent = ''")
    fill = "; ".join(
        f"document.querySelector('#{form} [name={name}]').value = {json.dumps(value)}"
        for name, value in values.items()
    )
    await page.evaluate(f"{fill}; document.querySelector('#{form}').requestSubmit()")
    answer: str = await page.wait_for(
        "document.querySelector('#paper-result').textContent", 10, f"the desk's answer to {form}"
    )
    return answer


@pytest.mark.trio
async def test_a_breach_made_on_the_paper_desk_shows_on_the_row_with_its_limit(
    tmp_path: Path,
) -> None:
    assert CHROMIUM is not None
    config = tmp_path / "desk.toml"
    config.write_text(DESK_CONFIG, encoding="utf-8")
    engine = start_engine(tmp_path / "data", "--config", str(config))
    auth = {"Authorization": f"Bearer {engine.token}"}
    try:
        async with httpx.AsyncClient(base_url=engine.url, headers=auth) as http:
            limits = {"daily_loss_limit": "250"}
            answer = await http.put("/api/accounts/DEMO-F1/limits", json=limits)
            assert answer.status_code == 200, answer.text
        async with browser(CHROMIUM, tmp_path / "profile") as ws:
            page = await open_page(ws, f"{engine.url}/#token={engine.token}")
            await page.wait_for(
                f"!document.querySelector('#paper').hidden && {ROWS}.length === 4"
                " && document.querySelector('#paper-trade select[name=account]').options.length",
                20,
                "the desk panel on a paper-broker engine",
            )
            accounts = await page.evaluate(
                "[...document.querySelectorAll('#paper-trade select[name=account] option')]"
                ".map(o => o.value)"
            )
            assert accounts == ["DEMO-F1", "DEMO-F2", "DEMO-F3", "DEMO-LEAD"]

            # A refusal is the API's own line, naming the field.
            refused = await _desk(page, "paper-price", symbol="ESZ6", last="-1")
            assert refused.startswith("last: ")
            assert await page.evaluate("document.querySelector('#paper-result').className")

            assert await _desk(page, "paper-price", symbol="ESZ6", last="5000") == "ESZ6 at 5000"
            bought = await _desk(
                page, "paper-trade", account="DEMO-LEAD", side="buy", qty="2", symbol="ESZ6"
            )
            assert bought.startswith("DEMO-LEAD bought 2 ESZ6 at 5000")
            await page.wait_for(
                f"{F1}.querySelector('.pos').textContent === '+2 ESZ6'", 10, "the copy on F1"
            )
            await page.wait_for(
                f"{F1_LIMIT}.textContent === 'daily loss 250 · 250 left'", 10, "the limit shown"
            )
            title = await page.evaluate(f"{F1_LIMIT}.title")
            assert title.startswith("daily loss limit 250: 250")

            # 2.25 points down on +2 ES is 225 lost: 25 left, within 20 % of 250: amber.
            await _desk(page, "paper-price", symbol="ESZ6", last="4997.75")
            await page.wait_for(
                f"{F1}.dataset.standing === 'near' && {F1_LIMIT}.textContent", 10, "amber"
            )
            assert await page.evaluate(f"{F1_LIMIT}.textContent") == "daily loss 250 · 25 left"
            colour = await page.evaluate(f"getComputedStyle({F1_LIMIT}).color")
            assert colour == "rgb(210, 153, 34)"  # --warn

            # Past it: the guard flattens and locks F1; the row says the limit is hit, in red.
            await _desk(page, "paper-price", symbol="ESZ6", last="4990")
            await page.wait_for(
                f"{F1}.dataset.standing === 'breached'"
                f" && {F1}.querySelector('.risk').textContent === 'LOCKED'",
                10,
                "the breach on F1's row",
            )
            assert await page.evaluate(f"{F1_LIMIT}.textContent") == "daily loss 250 · hit"
            colour = await page.evaluate(f"getComputedStyle({F1_LIMIT}).color")
            assert colour == "rgb(248, 81, 73)"  # --bad
            leader_row = "document.querySelector('#accounts tr[data-account=\"DEMO-LEAD\"]')"
            assert await page.evaluate(f"{leader_row}.querySelector('.limits').textContent") == (
                "no limits"
            )
            assert not await page.evaluate(
                f"{leader_row}.querySelector('button[data-action=sync]')"
            )  # a leader has nothing to sync with

            # F2's owner closes it by hand; Sync shows the order back to its target first.
            await _desk(page, "paper-trade", account="DEMO-F2", side="sell", qty="4", symbol="ESZ6")
            await page.wait_for(f"{_row('DEMO-F2')}.querySelector('.pos').textContent === 'flat'",
                                10, "F2 flat")  # fmt: skip
            await page.evaluate(
                f"{_row('DEMO-F2')}.querySelector('button[data-action=sync]').click()"
            )
            shown = await page.wait_for(
                "document.querySelector('#confirm').open && [...document.querySelectorAll("
                "'#confirm-body .sync-orders tbody tr')]"
                ".map(r => [...r.cells].map(c => c.textContent).join(' | '))",
                10,
                "the sync dialog with its orders",
            )
            assert shown == ["ESZ6 | 0 → +4 | +4"]  # symbol, position → target, order
            message = await page.evaluate("document.querySelector('.sync-message').textContent")
            assert message.startswith("DEMO-F2: would send")
            await page.evaluate("document.querySelector('#confirm-ok').click()")
            await page.wait_for(
                f"{_row('DEMO-F2')}.querySelector('.pos').textContent === '+4 ESZ6'", 10, "synced"
            )
            assert (
                await page.evaluate("document.querySelector('#notice').textContent")
            ).startswith("DEMO-F2: sending")

            # The leader's fill links to every copy of it.
            link = "document.querySelector('#activity .fill-link')"
            await page.wait_for(f"!!{link}", 10, "an entry of a leader fill with its link")
            await page.evaluate(f"{link}.click()")
            entries = await page.wait_for(
                "document.querySelector('#confirm').open && [...document.querySelectorAll("
                "'#fill-entries li')].map(li => li.dataset.account)",
                10,
                "the fill's entries",
            )
            assert set(entries) >= {"DEMO-LEAD", "DEMO-F1", "DEMO-F2", "DEMO-F3"}
    finally:
        assert stop_engine(engine) == 0


@pytest.mark.trio
async def test_the_prop_firm_rules_show_on_the_rows_and_profiles_are_edited(
    tmp_path: Path,
) -> None:
    """S9: an account's row shows its threshold and the equity above it (S9.3), the contracts
    in use of the cap (S9.2), a running blackout marked (S9.5) and the next session close
    (S9.4); the profiles view creates a profile with its keys, an account chooses it, and the
    limits dialog overrides one of its keys (S9.7); a wrong value is the engine's own line."""
    assert CHROMIUM is not None
    config = tmp_path / "desk.toml"
    config.write_text(DESK_CONFIG, encoding="utf-8")
    engine = start_engine(tmp_path / "data", "--config", str(config))
    auth = {"Authorization": f"Bearer {engine.token}"}
    f1, f2 = _row("DEMO-F1"), _row("DEMO-F2")
    try:
        async with httpx.AsyncClient(base_url=engine.url, headers=auth) as http:
            now = datetime.now(UTC)
            news = {"start": (now - timedelta(hours=1)).isoformat(),
                    "end": (now + timedelta(hours=1)).isoformat(), "label": "NEWS"}  # fmt: skip
            assert (await http.post("/api/blackouts", json=news)).status_code == 201
            keys = {"max_loss": "2000", "max_contracts": "2", "flatten_at": "15:10",
                    "blackout": "block"}  # fmt: skip
            answer = await http.put("/api/accounts/DEMO-F1/limits", json=keys)
            assert answer.status_code == 200, answer.text
        async with browser(CHROMIUM, tmp_path / "profile") as ws:
            page = await open_page(ws, f"{engine.url}/#token={engine.token}")
            shown = await page.wait_for(
                f"{f1} && {f1}.querySelector('.rule.session') && [...{f1}"
                ".querySelectorAll('.rule')].map(r => r.className + ': ' + r.textContent)",
                20,
                "DEMO-F1's prop-firm rules on its row",
            )
            rules = dict(line.split(": ", 1) for line in shown if not line.endswith("profile"))
            assert rules["rule threshold"].startswith("threshold ")
            assert rules["rule threshold"].endswith(" above")
            assert rules["rule contracts"] == "contracts 0 / 2"
            assert rules["rule blackout"].startswith("BLACKOUT NEWS until ")
            assert rules["rule session"].startswith("close ")
            assert rules["rule session"].endswith(" 15:10 CT")
            marked = f"{f1}.querySelector('.rule.blackout')"
            assert await page.evaluate(f"{marked}.dataset.active") == "true"
            colour = await page.evaluate(f"getComputedStyle({marked}).color")
            assert colour == "rgb(248, 81, 73)"  # --bad
            running = "document.querySelector('#blackouts tr[data-active=\"true\"]')"
            assert await page.evaluate(f"{running}.cells[0].textContent") == "NEWS"

            # A new profile: its name, then its keys in the dialog.
            await page.evaluate(
                "document.querySelector('#add-profile [name=name]').value = 'ui-eval';"
                " document.querySelector('#add-profile').requestSubmit()"
            )
            await _edit(page, max_loss="3000", commissions="ES:2.10")
            keys_shown = await page.wait_for(
                "document.querySelector('#profiles tr[data-profile=\"ui-eval\"] .profile-keys')"
                "?.textContent",
                10,
                "the new profile in the profiles view",
            )
            assert keys_shown == "commissions ES:2.10 · max_loss 3000"

            # DEMO-F2 chooses it; its row shows the profile and its threshold.
            await page.evaluate(
                "document.querySelector('#assign-profile [name=account]').value = 'DEMO-F2';"
                " document.querySelector('#assign-profile [name=profile]').value = 'ui-eval';"
                " document.querySelector('#assign-profile').requestSubmit()"
            )
            await page.wait_for(
                f"{f2}.querySelector('.rule.profile')?.textContent === 'profile ui-eval'"
                f" && !!{f2}.querySelector('.rule.threshold')",
                10,
                "DEMO-F2 on the profile, with its threshold",
            )

            # The limits dialog: the profile chosen, its value behind an empty key; F2's own
            # max_loss overrides it.
            await page.evaluate(f"{f2}.querySelector('button[data-action=limits]').click()")
            await page.wait_for("document.querySelector('#edit').open", 5, "the limits dialog")
            chosen = await page.evaluate("document.querySelector('#edit [name=profile]').value")
            hint = await page.evaluate(
                "document.querySelector('#edit [name=max_loss]').placeholder"
            )
            assert (chosen, hint) == ("ui-eval", "ui-eval: 3000")
            await _edit(page, max_loss="2500", opened=True)
            await page.wait_for(
                "document.querySelector('#notice').textContent === 'limits saved'", 10, "saved"
            )
            async with httpx.AsyncClient(base_url=engine.url, headers=auth) as http:
                limits = (await http.get("/api/accounts/DEMO-F2/limits")).json()
            assert (limits["profile"], limits["limits"]) == ("ui-eval", {"max_loss": "2500"})
            assert limits["effective"]["commissions"] == {"ES": "2.10"}

            # A wrong value: the engine's line, naming the key.
            edit = 'document.querySelector(\'#profiles tr[data-profile="ui-eval"]'
            await page.evaluate(f"{edit} button[data-action=edit-profile]').click()")
            await _edit(page, max_loss="-1")
            refused = await page.wait_for(
                "document.querySelector('#notice.bad')?.textContent", 10, "the refusal"
            )
            assert refused.startswith("max_loss: negative")
    finally:
        assert stop_engine(engine) == 0


async def _edit(page: Page, *, opened: bool = False, **values: str) -> None:
    """Fill the edit dialog's fields as a person would and save."""
    if not opened:
        await page.wait_for("document.querySelector('#edit').open", 5, "the edit dialog")
    fill = "; ".join(
        f"document.querySelector('#edit [name={name}]').value = {json.dumps(value)}"
        for name, value in values.items()
    )
    await page.evaluate(f"{fill}; document.querySelector('#edit-ok').click()")


@pytest.mark.trio
async def test_s10_1_a_follower_that_drifts_turns_amber_with_its_drift(tmp_path: Path) -> None:
    """A trade at a follower's own broker (the paper desk) leaves it 1 short of where its leader
    puts it: once drift_grace has passed its row turns amber and says its drift; the group's
    on_drift is shown and changed in the Cockpit; back in line, the row is plain again."""
    assert CHROMIUM is not None
    config = tmp_path / "desk.toml"
    config.write_text(DESK_CONFIG + "\n[engine]\ndrift_grace_seconds = 1\n", encoding="utf-8")
    engine = start_engine(tmp_path / "data", "--config", str(config))
    f1 = _row("DEMO-F1")
    try:
        async with browser(CHROMIUM, tmp_path / "profile") as ws:
            page = await open_page(ws, f"{engine.url}/#token={engine.token}")
            await page.wait_for(
                f"!document.querySelector('#paper').hidden && {ROWS}.length === 4"
                " && document.querySelector('#paper-trade select[name=account]').options.length",
                20,
                "the desk panel on a paper-broker engine",
            )
            await _desk(page, "paper-price", symbol="ESZ6", last="5000")
            await _desk(page, "paper-trade", account="DEMO-LEAD", side="buy", qty="1",
                        symbol="ESZ6")  # fmt: skip
            await page.wait_for(f"{f1}.querySelector('.pos').textContent === '+1 ESZ6'", 10,
                                "the copy on F1")  # fmt: skip
            assert await page.evaluate(f"{f1}.dataset.drift") == "false"
            await _desk(page, "paper-trade", account="DEMO-F1", side="sell", qty="1",
                        symbol="ESZ6")  # fmt: skip
            drift = await page.wait_for(
                f"{f1}.dataset.drift === 'true' && {f1}.querySelector('.drift').textContent",
                15,
                "F1's row amber with its drift",
            )
            assert drift == "drift ESZ6 -1"
            colour = await page.evaluate(f"getComputedStyle({f1}.querySelector('.drift')).color")
            assert colour == "rgb(210, 153, 34)"  # --warn
            shown = await page.evaluate(
                "document.querySelector('.group[data-group=\"demo\"] .on-drift').textContent"
            )
            assert shown == "on drift: alert"
            await page.evaluate(
                'document.querySelector(\'.group[data-group="demo"]'
                " button[data-action=edit-group]').click()"
            )
            await page.wait_for("document.querySelector('#edit').open", 5, "the group's dialog")
            await page.evaluate(
                "document.querySelector('#edit-fields select[name=on_drift]').value = 'reduce';"
                " document.querySelector('#edit-ok').click()"
            )
            await page.wait_for(
                "document.querySelector('.group[data-group=\"demo\"] .on-drift')"
                ".textContent === 'on drift: reduce'",
                10,
                "on_drift changed",
            )
            await _desk(page, "paper-trade", account="DEMO-F1", side="buy", qty="1",
                        symbol="ESZ6")  # fmt: skip
            await page.wait_for(f"{f1}.dataset.drift === 'false'", 10, "F1's row plain again")
    finally:
        assert stop_engine(engine) == 0
