"""The Cockpit page without a browser: it is served with no token and no build step, every API
call its script makes is an operation the API has (method and path), every element the script
looks up is in the page, and the script parses (when ``node`` is on the machine). The page's
behaviour in a browser is ``test_browser.py``."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from engine.api.app import OPERATIONS, STATIC
from tests.engine.api.conftest import ApiRig

SCRIPT = (STATIC / "cockpit.js").read_text(encoding="utf-8")
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
def test_the_script_parses() -> None:
    result = subprocess.run(
        ["node", "--check", str(STATIC / "cockpit.js")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.trio
async def test_the_page_and_its_files_are_served(api: ApiRig) -> None:
    page = await api.http.get("/", headers={"Authorization": ""})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/cockpit.js"' in page.text
    script = await api.http.get("/static/cockpit.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    css = await api.http.get("/static/cockpit.css")
    assert css.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert (await api.http.get("/static/nothing.js")).status_code == 404
