"""The Cockpit page without a browser: it is served with no token and no build step, every API
call its scripts make is an operation the API has (method and path), every element the scripts
look up is in the page, the scripts parse and the prop-firm rules' reading and writing of the
API's values holds (when ``node`` is on the machine). The page's behaviour in a browser is
``test_browser.py``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from engine.api.app import OPERATIONS, STATIC
from engine.domain.risk_profile import RISK_KEYS, SHAPES, TABLE_SHAPES
from tests.engine.api.conftest import ApiRig

SCRIPTS = ("cockpit.js", "cockpit-rules.js", "cockpit-reports.js")
SCRIPT = "\n".join((STATIC / name).read_text(encoding="utf-8") for name in SCRIPTS)
RULES = (STATIC / "cockpit-rules.js").read_text(encoding="utf-8")
PAGE = (STATIC / "index.html").read_text(encoding="utf-8")
CALL = re.compile(r"""(?:api|command)\(\s*"(GET|POST|PUT|PATCH|DELETE)",\s*[`"]([^`"]+)[`"]""")


DELETE = re.compile(r"""confirmDelete\(\s*"\w+",[^,]+,\s*`([^`]+)`""")


def _calls() -> set[tuple[str, str]]:
    """(method, path) of every call; a path held in a variable is resolved where it is made
    (``confirmDelete``'s path, called as is and with ``?dry_run=true``)."""
    found = {(m, p) for m, p in CALL.findall(SCRIPT) if not p.startswith("${")}
    found |= {("GET", p) for p in re.findall(r"""fetch\(\s*"(/api/[^"]+)\"""", SCRIPT)}
    found |= {("DELETE", p) for p in DELETE.findall(SCRIPT)}
    return found


def _matches(method: str, path: str) -> bool:
    path = re.sub(r"\$\{[^}]+\}", "X", path.split("?", maxsplit=1)[0])
    for op in OPERATIONS:
        pattern = "^" + re.sub(r"\{\w+\}", "[^/]+", op.path) + "$"
        if op.method == method and re.match(pattern, path):
            return True
    return False


def test_the_script_calls_only_operations_the_api_has() -> None:
    calls = _calls()
    assert len(calls) >= 15
    missing = sorted(c for c in calls if not _matches(*c))
    assert not missing, f"the page calls what the API does not have: {missing}"


def test_the_page_has_every_action_the_issue_names() -> None:
    wanted = {
        ("POST", "/api/connections/{connection}/reauthorize"),
        ("POST", "/api/connections/{connection}/offline"),
        ("DELETE", "/api/connections/{connection}"),
        ("DELETE", "/api/accounts/{account}"),
        ("POST", "/api/flatten"),
        ("POST", "/api/groups/{group}/flatten"),
        ("POST", "/api/accounts/{account}/lock"),
        ("POST", "/api/accounts/{account}/unlock"),
        ("GET", "/api/events"),
        ("GET", "/api/paper"),
        ("POST", "/api/paper/trade"),
        ("POST", "/api/paper/price"),
        ("POST", "/api/accounts/{account}/sync"),
        ("GET", "/api/activity"),
        ("PUT", "/api/accounts/{account}/limits"),
        ("GET", "/api/profiles"),
        ("PUT", "/api/profiles/{profile}"),
        ("DELETE", "/api/profiles/{profile}"),
        ("GET", "/api/blackouts"),
        ("POST", "/api/blackouts"),
        ("DELETE", "/api/blackouts"),
    }
    covered = {
        (op.method, op.path)
        for op in OPERATIONS
        for method, path in _calls()
        if op.method == method
        and re.match("^" + re.sub(r"\{\w+\}", "[^/]+", op.path) + "$",
                     re.sub(r"\$\{[^}]+\}", "X", path.split("?", maxsplit=1)[0]))
    }  # fmt: skip
    assert wanted <= covered
    assert "dry_run=true" in SCRIPT  # the cascade is shown before a delete (decision 0008)
    # a sync is shown (dry run) before it is sent, and sent with the orders shown
    assert "/sync?dry_run=true`" in SCRIPT
    assert "{ expect: plan.orders }" in SCRIPT
    assert "/api/activity?fill=" in SCRIPT  # a leader fill's entries, from an entry's link


def test_the_paper_desk_is_hidden_until_the_engine_has_one() -> None:
    """The panel shows only when GET /api/paper answers (409 on a real broker: no panel)."""
    assert re.search(r'<section id="paper" hidden>', PAGE)
    assert '$("#paper").hidden = false' in SCRIPT


def test_every_element_the_script_looks_up_is_in_the_page() -> None:
    ids = set(re.findall(r"""\$\("#([\w-]+)""", SCRIPT))
    assert ids
    missing = sorted(i for i in ids if f'id="{i}"' not in PAGE)
    assert not missing


def test_the_page_never_puts_data_into_html() -> None:
    """Text goes in with textContent; no innerHTML, no eval."""
    assert "innerHTML" not in SCRIPT
    assert "eval(" not in SCRIPT
    assert "document.write" not in SCRIPT


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("name", SCRIPTS)
def test_the_script_parses(name: str) -> None:
    result = subprocess.run(
        ["node", "--check", str(STATIC / name)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_page_loads_its_scripts_in_order() -> None:
    """The rules script uses cockpit.js's helpers: it comes after it."""
    tags = re.findall(r'<script src="/static/([\w-]+\.js)" defer></script>', PAGE)
    assert tags == list(SCRIPTS)


def test_the_limits_dialog_offers_every_risk_key() -> None:
    """S5.2/S9: the keys the page edits are the engine's, in its order."""
    found = re.search(r"const RISK_KEYS = \[([^\]]+)\]", RULES)
    assert found is not None
    assert tuple(re.findall(r'"(\w+)"', found.group(1))) == RISK_KEYS
    assert set(re.findall(r'"(\w+)"', RULES.split("const TABLE_KEYS", 1)[1].split(";")[0])) == {
        name for name in RISK_KEYS if SHAPES[name] in TABLE_SHAPES
    }


NODE_CHECK = """
const r = require(process.argv[1]);
const out = {
  keys: r.RISK_KEYS.length,
  table: r.parseRiskInput("commissions", "ES:2.10, mes 0.60,MNQ=0.5"),
  badTable: r.parseRiskInput("commissions", "2.10"),
  offTable: r.parseRiskInput("contract_weights", "off"),
  word: r.parseRiskInput("flatten_at", " 15:10 "),
  shown: r.riskValueInput({ ES: "2.10", MES: "0.60" }),
  changes: r.riskChanges(
    { max_loss: "2500", commissions: { ES: "2.10" }, flatten_at: "15:10" },
    { max_loss: "2500", commissions: "ES:2.10, MES:0.60", flatten_at: "", max_contracts: "2" },
  ),
  close: r.chicagoText("2026-01-06T21:10:00+00:00"),
  closeDst: r.chicagoText("2026-03-12T12:35:00+00:00", false),
  running: r.blackoutText({ label: "CPI", active: true, start: "2026-03-12T12:25:00+00:00",
                            end: "2026-03-12T12:35:00+00:00" }),
  contracts: [r.contractsText({ contracts_in_use: "1.5", max_contracts: "2" }),
              r.contractsText({ contracts_in_use: "1", max_contracts: null })],
  standing: [
    r.thresholdStanding({ threshold_distance: "0.00", effective: { max_loss: "2000" } }),
    r.thresholdStanding({ threshold_distance: "400.00", effective: { max_loss: "2000" } }),
    r.thresholdStanding({ threshold_distance: "401.00", effective: { max_loss: "2000" } }),
  ],
};
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_rules_read_and_write_the_apis_values() -> None:
    """S9: tables typed as ROOT:VALUE pairs become objects, a text left as it was sends
    nothing, an emptied one removes the key (null: the profile's applies); times in Chicago
    (S9.4, S9.5); contracts in use of the cap (S9.2); the threshold near within 20 % of
    max_loss and breached at it (S9.3)."""
    result = subprocess.run(
        ["node", "-e", NODE_CHECK, str(STATIC / "cockpit-rules.js")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["keys"] == len(RISK_KEYS)
    assert out["table"] == {"ES": "2.10", "MES": "0.60", "MNQ": "0.5"}
    assert out["badTable"] == "2.10"  # sent as typed: the engine says what the key takes
    assert (out["offTable"], out["word"]) == ({}, "15:10")
    assert out["shown"] == "ES:2.10, MES:0.60"
    assert out["changes"] == {
        "commissions": {"ES": "2.10", "MES": "0.60"},
        "max_contracts": "2",
        "flatten_at": None,
    }
    assert out["close"] == "Tue 01/06 15:10 CT"
    assert out["closeDst"] == "07:35 CT"  # daylight saving: UTC-5
    assert out["running"] == "BLACKOUT CPI until 07:35 CT"
    assert out["contracts"] == ["1.5 / 2", "1"]
    assert out["standing"] == ["breached", "near", "ok"]


@pytest.mark.trio
async def test_the_page_and_its_files_are_served(api: ApiRig) -> None:
    page = await api.http.get("/", headers={"Authorization": ""})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/cockpit.js"' in page.text
    for name in SCRIPTS:
        script = await api.http.get(f"/static/{name}")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
    css = await api.http.get("/static/cockpit.css")
    assert css.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert (await api.http.get("/static/nothing.js")).status_code == 404


REPORTS_CHECK = """
const r = require(process.argv[1]);
console.log(JSON.stringify({
  ms: [r.msText(null), r.msText(0.4), r.msText(0.04), r.msText(35.2), r.msText(1200)],
  latency: [r.latencyText({ count: 0 }),
            r.latencyText({ count: 2, p50_ms: 0.5, p95_ms: 40, max_ms: 1500 })],
  ticks: [r.ticksText("1.25"), r.ticksText("-0.50"), r.ticksText("0.00"), r.ticksText(null)],
  standing: [r.dayStanding({ missed_copies: 0, drift_episodes: 0, rejections: 0 }),
             r.dayStanding({ missed_copies: 1, drift_episodes: 0, rejections: 0 })],
}));
"""


def test_the_reports_view_calls_the_reports_route() -> None:
    """S10.5: the page reads each follower's day, the current one or the day chosen."""
    assert {("GET", "/api/reports"), ("GET", "/api/reports?day=${enc(day)}")} <= _calls()
    assert 'id="report"' in PAGE and 'id="report-day"' in PAGE


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_reports_show_the_apis_figures() -> None:
    """S10.5: latencies in ms (seconds past one), ticks signed, a day with a missed copy, a
    drift episode or a rejection marked amber."""
    result = subprocess.run(
        ["node", "-e", REPORTS_CHECK, str(STATIC / "cockpit-reports.js")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["ms"] == ["–", "0.4 ms", "0 ms", "35 ms", "1.20 s"]
    assert out["latency"] == ["–", "0.5 ms / 40 ms / 1.50 s"]
    assert out["ticks"] == ["+1.25", "-0.50", "0.00", "–"]
    assert out["standing"] == ["ok", "near"]
