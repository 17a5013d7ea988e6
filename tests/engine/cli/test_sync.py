"""``python -m engine sync ACCOUNT`` and ``sync group ID`` (S6.2) through the CLI's own entry
(``main(args, out=..., client=...)``) against the real API on a real engine (threads runtime,
paper broker, virtual clock) in process: the orders shown as a table first, then the question
(decision 0008), the orders shown sent as ``expect``; nothing to send asks nothing; no terminal
and no ``--yes`` refuses; a leader refused with the engine's reason."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from engine.__main__ import build_parser
from engine.api import build_app
from engine.cli.commands import Client
from engine.cli.sync import main as sync_main
from tests.conftest import ES, MakeEngine
from tests.engine.api.conftest import TOKEN, ApiRig, make_context, short_follower

pytestmark = pytest.mark.trio


class TrioBridge(httpx.BaseTransport):
    """The CLI's blocking client, run on a worker thread, calling the ASGI app on the trio
    loop the API runs in — as a live engine serves it, in one process."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return trio.from_thread.run(call)


@pytest.fixture
async def api(tmp_path: Path, make_engine: MakeEngine) -> AsyncIterator[ApiRig]:
    rig = make_engine(tmp_path, "threads")
    async with httpx.AsyncClient() as unused:  # the CLI brings its own client
        yield ApiRig(rig, make_context(rig), unused)


async def cli(api: ApiRig, *argv: str) -> tuple[int, str, str]:
    """Exit status, what it printed, what it wrote to stderr."""
    args = build_parser().parse_args(["sync", *argv])
    client = Client("http://engine.test", TOKEN, TrioBridge(build_app(api.ctx)))
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        with contextlib.redirect_stderr(err):
            return sync_main(args, out=out, client=client)

    code = await trio.to_thread.run_sync(run)
    api.idle()
    return code, out.getvalue(), err.getvalue()


def sync_records(api: ApiRig) -> list[tuple[str, str]]:
    rows = api.rig.reconciliations()
    return sorted((r["account"], r["orders"]) for r in rows if r["cause"].startswith("sync:"))


class Terminal(io.StringIO):
    """A person at a terminal, answering the question."""

    def isatty(self) -> bool:
        return True


def answer(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(text))


TABLE = [
    "ACCOUNT  SYMBOL  POSITION  TARGET  ORDER",
    "-------  ------  --------  ------  -----",
    f"F1       {ES}    0         2       +2",
    "",
    f"F1: would send {ES} +2 toward its leader's target",
]


async def test_s6_2_the_orders_are_shown_then_asked_then_sent(
    api: ApiRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_follower(api)
    answer(monkeypatch, "y\n")
    code, text, _ = await cli(api, "F1")
    assert code == 0
    lines = text.splitlines()
    assert lines[: len(TABLE)] == TABLE
    assert lines[len(TABLE)] == (
        "Send these orders at market to bring account F1 to its leader's target? [y/N] "
        f"F1: sending {ES} +2 toward its leader's target"
    )
    assert api.rig.position("F1") == 2
    assert sync_records(api) == [("F1", json.dumps({ES: 2}))]


async def test_a_no_sends_nothing(api: ApiRig, monkeypatch: pytest.MonkeyPatch) -> None:
    short_follower(api)
    answer(monkeypatch, "n\n")
    code, text, err = await cli(api, "F1")
    assert (code, err) == (1, "cancelled, nothing done\n")
    assert text.splitlines()[: len(TABLE)] == TABLE
    assert api.rig.position("F1") == 0
    assert sync_records(api) == []


async def test_without_a_terminal_it_needs_yes(api: ApiRig) -> None:
    short_follower(api)
    code, text, err = await cli(api, "F1")  # pytest's stdin is no terminal
    assert code == 2
    assert err == "not confirmed: pass --yes to do this without a question\n"
    assert text.splitlines()[: len(TABLE)] == TABLE  # shown all the same
    assert sync_records(api) == []
    code, _, _ = await cli(api, "F1", "--yes")
    assert code == 0
    assert api.rig.position("F1") == 2


async def test_nothing_to_send_says_so_and_asks_nothing(api: ApiRig) -> None:
    api.rig.trade("LEAD", 1)
    code, text, _ = await cli(api, "F1")  # no terminal, no --yes: not asked, so not refused
    assert code == 0
    assert text.splitlines()[2:] == [
        f"F1       {ES}    1         1       —",
        "",
        "F1: nothing to send, it is at its leader's target",
        "sync account F1: nothing to send, nothing asked",
    ]
    assert sync_records(api) == []


async def test_a_skipped_follower_shows_why(api: ApiRig) -> None:
    api.rig.trade("LEAD", 1)
    api.rig.broker.drop("f1")
    api.rig.idle()
    code, text, _ = await cli(api, "F1")
    assert code == 0
    assert "F1: nothing to send — its connection f1 is disconnected" in text.splitlines()


async def test_s6_2_a_group_sync_shows_every_follower_and_sends_the_orders_shown(
    api: ApiRig,
) -> None:
    short_follower(api)
    code, text, _ = await cli(api, "group", "g1", "--yes")
    assert code == 0
    assert text.splitlines() == [
        "ACCOUNT  SYMBOL  POSITION  TARGET  ORDER",
        "-------  ------  --------  ------  -----",
        f"F1       {ES}    0         2       +2",
        f"F2       {ES}    2         2       —",
        "",
        f"F1: would send {ES} +2 toward its leader's target",
        "F2: nothing to send, it is at its leader's target",
        f"F1: sending {ES} +2 toward its leader's target",
        "F2: nothing to send, it is at its leader's target",
    ]
    assert (api.rig.position("F1"), api.rig.position("F2")) == (2, 2)
    assert sync_records(api) == [("F1", json.dumps({ES: 2})), ("F2", "{}")]


class TradesBeforeSending(Client):
    """The follower's owner buys one by hand after the orders were shown, before they go."""

    def __init__(self, api: ApiRig) -> None:
        super().__init__("http://engine.test", TOKEN, TrioBridge(build_app(api.ctx)))
        self.rig = api.rig

    def call(self, method: str, path: str, body: Any = None) -> Any:
        if body is not None:
            self.rig.trade("F1", 1)
        return super().call(method, path, body)


async def test_orders_that_changed_since_shown_are_not_sent(api: ApiRig) -> None:
    short_follower(api)
    args = build_parser().parse_args(["sync", "F1", "--yes"])
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        with contextlib.redirect_stderr(err):
            return sync_main(args, out=out, client=TradesBeforeSending(api))

    assert await trio.to_thread.run_sync(run) == 1
    api.idle()
    skip = (
        f"the orders changed since they were shown (shown: {ES} +2; now: {ES} +1) — run sync"
        " again to see them"
    )
    assert out.getvalue().splitlines()[-1] == f"F1: nothing sent — {skip}"
    assert err.getvalue() == (
        "nothing sent for F1: the orders are not the ones shown any more; run sync again to see"
        " them\n"
    )
    assert api.rig.position("F1") == 1
    assert sync_records(api) == [("F1", "{}")]


async def test_json_prints_the_apis_answer(api: ApiRig) -> None:
    short_follower(api)
    code, text, _ = await cli(api, "F1", "--yes", "--json")
    assert code == 0
    answer = json.loads(text)
    assert (answer["dry_run"], answer["orders"]) == (False, {ES: 2})


async def test_a_leader_is_refused_with_the_engines_reason(api: ApiRig) -> None:
    code, text, err = await cli(api, "LEAD", "--yes")
    assert (code, text) == (1, "")
    assert err == ("409: account 'LEAD' leads group 'g1': sync brings a follower to its leader\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["group"], "sync group needs the group's ID: python -m engine sync group ID\n"),
        (
            ["F1", "F2"],
            "sync takes one account ('F1', then 'F2'?): python -m engine sync ACCOUNT, or"
            " python -m engine sync group ID\n",
        ),
    ],
)
async def test_a_wrong_command_line_is_one_line(api: ApiRig, argv: list[str], message: str) -> None:
    code, text, err = await cli(api, *argv)
    assert (code, text, err) == (2, "", message)
