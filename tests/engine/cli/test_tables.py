"""The CLI's tables: a delete confirmation lists the working orders that stay at the broker
(S8.8), through the CLI's own entry against the real API on a real engine in process."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import trio

from brokers.base import OrderType
from engine.__main__ import build_parser
from engine.api import build_app
from engine.cli.commands import Client
from engine.cli.commands import main as cli_main
from tests.conftest import ES, MakeEngine
from tests.engine.api.conftest import TOKEN, ApiRig, make_context, short_follower
from tests.engine.cli.test_sync import TrioBridge

pytestmark = pytest.mark.trio


@pytest.fixture
async def api(tmp_path: Path, make_engine: MakeEngine) -> AsyncIterator[ApiRig]:
    rig = make_engine(tmp_path, "threads")
    async with httpx.AsyncClient() as unused:  # the CLI brings its own client
        yield ApiRig(rig, make_context(rig), unused)


async def cli(api: ApiRig, *argv: str) -> tuple[int, str]:
    args = build_parser().parse_args(list(argv))
    client = Client("http://engine.test", TOKEN, TrioBridge(build_app(api.ctx)))
    out = io.StringIO()
    code = await trio.to_thread.run_sync(lambda: cli_main(args, out=out, client=client))
    api.idle()
    return code, out.getvalue()


async def test_a_delete_confirmation_lists_the_working_orders_that_stay(api: ApiRig) -> None:
    broker = api.rig.broker
    manual = broker.place_manual_working("F1", ES, -1)
    placed = broker.place_working(
        "F2", ES, 2, OrderType.LIMIT, price=Decimal(4990), bracket_stop=Decimal(4980)
    )
    api.idle()
    code, text = await cli(api, "groups", "delete", "g1", "--dry-run")
    assert code == 0, text
    assert "These working orders stay at the broker, cancelled by nothing:" in text
    assert "  F1: sell 1 ESZ6 market\n" in text
    assert "  F2: buy 2 ESZ6 limit 4990\n" in text
    assert "  F2: sell 2 ESZ6 stop 4980 (stop leg; waits for its entry)\n" in text
    code, text = await cli(api, "accounts", "delete", "F1", "--yes")
    assert code == 0, text
    assert "F1: sell 1" in text
    assert [o.broker_order_id for o in broker.working_orders("F1")] == [manual]
    assert placed.entry in [o.broker_order_id for o in broker.working_orders("F2")]
    code, text = await cli(api, "connections", "delete", "f2", "--dry-run")
    assert "  F2: buy 2" in text


async def test_s10_1_status_lists_the_followers_that_drift(api: ApiRig) -> None:
    """A follower's open drift episode is a row of its own under the accounts; none while no
    follower drifts (a drift inside drift_grace included)."""
    short_follower(api)  # F1 flat, its leader long 2
    code, text = await cli(api, "status")
    assert code == 0
    assert "DRIFTING" not in text
    api.rig.advance(5)
    api.idle()
    code, text = await cli(api, "status")
    assert code == 0
    lines = text.splitlines()
    assert any(line.split() == ["DRIFTING", "SYMBOL", "DRIFT"] for line in lines)
    assert any(line.split() == ["F1", ES, "-2"] for line in lines)
