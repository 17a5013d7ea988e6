"""The paper desk through the API (``/api/paper``): a trade by hand on a paper account — a
leader's copied as any leader fill (S2.1), a follower's its owner's own — and a price set by
hand, a tick the risk guard checks (S5.2) up to a breach (S5.3); bad requests refused by field;
the simulated market walking on from a price set."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.api import build_app
from engine.app.demo import DEMO_INSTRUMENTS, Market
from engine.app.paper_desk import PaperDesk
from engine.domain.risk_status import RiskStatus
from tests.conftest import ES, MES, MakeEngine
from tests.engine.api.conftest import AUTH, ApiRig, make_context

pytestmark = pytest.mark.trio


@pytest.fixture
async def desk(tmp_path: Path, make_engine: MakeEngine) -> AsyncIterator[ApiRig]:
    """The API rig with the desk a paper-broker engine has, and a simulated market (seeded)."""
    rig = make_engine(tmp_path, "threads")
    market = Market(random.Random(7), DEMO_INSTRUMENTS)
    ctx = make_context(rig)
    ctx.desk = PaperDesk(rig.engine, rig.broker, rig.engine.contracts, market)
    transport = httpx.ASGITransport(app=build_app(ctx))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://engine.test", headers=AUTH
    ) as http:
        yield ApiRig(rig, ctx, http)


async def trade(api: ApiRig, body: dict[str, Any], status: int = 200) -> Any:
    return await api.post("/api/paper/trade", body, status=status)


async def price(api: ApiRig, symbol: str, last: str, status: int = 200) -> Any:
    return await api.post("/api/paper/price", {"symbol": symbol, "last": last}, status=status)


async def test_the_desk_lists_its_accounts_and_prices(desk: ApiRig) -> None:
    got = await desk.get("/api/paper")
    assert got == {
        "broker": "paper",
        "market": True,
        "prices": {ES: "5000", MES: "5000", "NQZ6": "20000"},
        "accounts": ["F1", "F2", "LEAD"],
    }


async def test_a_leader_trade_by_hand_is_copied(desk: ApiRig) -> None:
    """S2.1: the leader's own trade at the broker is a leader fill like any other."""
    done = await trade(desk, {"account": "LEAD", "side": "buy", "qty": 2, "symbol": ES})
    assert done["message"] == f"LEAD bought 2 {ES} at 5000 (fill {done['fills'][0]})"
    assert (done["connection"], done["price"], done["seen"]) == ("lead", "5000", True)
    desk.idle()
    rig = desk.rig
    assert [rig.broker_position(a) for a in ("LEAD", "F1", "F2")] == [2, 2, 2]
    assert [o["cause"] for o in rig.orders("F1", "copy")] == [f"LEAD:{done['fills'][0]}"]


async def test_a_follower_trade_by_hand_is_its_own(desk: ApiRig) -> None:
    done = await trade(desk, {"account": "F1", "side": "SELL".lower(), "qty": 1, "symbol": ES})
    assert done["message"].startswith(f"F1 sold 1 {ES} at 5000")
    desk.idle()
    rig = desk.rig
    assert [rig.position(a) for a in ("LEAD", "F1", "F2")] == [0, -1, 0]
    assert rig.orders() == []  # nothing copied, nothing sent


async def test_a_hand_made_breach(desk: ApiRig) -> None:
    """S5.2/S5.3: a limit, a leader trade copied, a price moved by hand: the follower past its
    daily loss limit is flattened (LIQUIDATE_ONLY) and ends LOCKED; the other copies on."""
    await desk.call("PUT", "/api/accounts/F1/limits", {"daily_loss_limit": "500"}, status=200)
    await trade(desk, {"account": "LEAD", "side": "buy", "qty": 2, "symbol": ES})
    desk.idle()
    moved = await price(desk, ES, "4990")  # -10 points on 2 ES: -1000 on F1
    assert moved["quoted"] == {ES: "4990", MES: "4990"}
    desk.idle()
    rig = desk.rig
    f1 = await desk.get("/api/accounts/F1")
    assert (f1["risk_status"], f1["lock_reason"]) == ("LOCKED", "risk_breach_daily")
    assert rig.broker_position("F1") == 0
    assert [o["kind"] for o in rig.orders("F1")] == ["copy", "liquidation"]
    kinds = [r["kind"] for r in rig.activity("F1")]
    assert kinds.count("breach") == 1 and "flatten" in kinds
    assert rig.status("F2") is RiskStatus.OK
    assert rig.broker_position("F2") == 2


async def test_the_market_walks_on_from_a_price_set(desk: ApiRig) -> None:
    """The walk's next step starts from the price set by hand, its mirror moving with it."""
    moved = await price(desk, MES, "4990.25")
    assert moved == {
        "symbol": MES,
        "last": "4990.25",
        "quoted": {ES: "4990.25", MES: "4990.25"},
        "walks": True,
        "message": f"{MES} at 4990.25 (and {ES} with it); the simulated market walks on from there",
    }
    assert desk.rig.broker.last_price(ES) == Decimal("4990.25")
    assert desk.ctx.desk is not None and desk.ctx.desk.market is not None
    twin = Market(random.Random(7), DEMO_INSTRUMENTS)
    twin.resume({ES: Decimal("4990.25")})
    assert desk.ctx.desk.market.step() == twin.step()


async def test_a_symbol_off_the_walk_keeps_its_price(desk: ApiRig) -> None:
    moved = await price(desk, "CLZ6", "71.05")
    assert (moved["quoted"], moved["walks"]) == ({"CLZ6": "71.05"}, False)
    assert moved["message"] == "CLZ6 at 71.05"
    done = await trade(desk, {"account": "F2", "side": "buy", "qty": 1, "symbol": "CLZ6"})
    assert done["price"] == "71.05"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"account": "LEAD", "side": "hold", "qty": 1, "symbol": ES}, "side"),
        ({"account": "LEAD", "side": "buy", "qty": 0, "symbol": ES}, "qty"),
        ({"account": "LEAD", "side": "buy", "qty": "two", "symbol": ES}, "qty"),
        ({"account": "LEAD", "side": "buy", "qty": 1, "symbol": "XXZ6"}, "symbol"),
        ({"account": "LEAD", "side": "buy", "qty": 1, "symbol": "ES"}, "symbol"),
        ({"side": "buy", "qty": 1, "symbol": ES}, "account"),
        ({"account": "LEAD", "side": "buy", "qty": 1, "symbol": ES, "price": 1}, "price"),
    ],
)
async def test_a_bad_trade_is_refused_by_field(desk: ApiRig, body: object, field: str) -> None:
    problem = await trade(desk, body, status=422)  # type: ignore[arg-type]
    assert problem["field"] == field
    assert problem["message"].startswith(f"{field}: ")
    desk.idle()
    assert desk.rig.broker.positions("LEAD") == {}


@pytest.mark.parametrize(
    ("symbol", "last", "field", "message"),
    [
        (ES, "4990.1", "last", f"last: expected a multiple of {ES}'s tick, 0.25 (got 4990.1)"),
        (ES, "-1", "last", "last: expected a value greater than 0 (got '-1')"),
        ("FOOZ6", "1", "symbol", "symbol: 'FOOZ6': root 'FOO' is not in the contract table"),
    ],
)
async def test_a_bad_price_is_refused_by_field(
    desk: ApiRig, symbol: str, last: str, field: str, message: str
) -> None:
    problem = await price(desk, symbol, last, status=422)
    assert (problem["field"], problem["message"]) == (field, message)
    assert desk.rig.broker.last_price(ES) == Decimal(5000)


async def test_an_unknown_account_or_a_symbol_without_price(desk: ApiRig) -> None:
    body = {"account": "NOPE", "side": "buy", "qty": 1, "symbol": ES}
    problem = await trade(desk, body, status=404)
    assert problem["message"] == "unknown account 'NOPE'"
    body = {"account": "LEAD", "side": "buy", "qty": 1, "symbol": "GCZ6"}
    problem = await trade(desk, body, status=409)
    assert problem["message"] == "no price for GCZ6 yet: set its price first"


async def test_a_trade_the_engine_cannot_hear_says_so(desk: ApiRig) -> None:
    """An offline connection's account still trades at the broker (as its owner can), and
    the answer says the engine does not hear of it until the connection returns (S3)."""
    await desk.post("/api/connections/f1/offline")
    desk.idle()
    done = await trade(desk, {"account": "F1", "side": "buy", "qty": 1, "symbol": ES})
    assert done["seen"] is False
    assert "the engine does not hear of it now (connection f1 is not connected)" in done["message"]
    assert desk.rig.broker_position("F1") == 1


async def test_a_stopping_engine_takes_no_desk_command(desk: ApiRig) -> None:
    desk.ctx.stop_accepting()
    await trade(desk, {"account": "LEAD", "side": "buy", "qty": 1, "symbol": ES}, status=503)
    await price(desk, ES, "4990", status=503)
    assert desk.rig.broker.positions("LEAD") == {}


async def test_an_engine_on_a_real_broker_has_no_desk(api: ApiRig) -> None:
    """Refused on a real broker: trades and prices are the broker's, not the engine's."""
    api.ctx.desk = None  # as the live process leaves it on tradovate or tradovate-sim
    for method, path, body in (
        ("GET", "/api/paper", None),
        ("POST", "/api/paper/trade", {"account": "LEAD", "side": "buy", "qty": 1, "symbol": ES}),
        ("POST", "/api/paper/price", {"symbol": ES, "last": "4990"}),
    ):
        problem = await api.call(method, path, body, status=409)
        assert problem["message"].startswith("the paper desk is the paper broker's"), path
    api.idle()
    assert api.rig.broker.positions("LEAD") == {}
