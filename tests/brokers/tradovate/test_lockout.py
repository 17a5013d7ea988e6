"""HTTP 423 and 429 (TRADOVATE.md, "What the real API does": 423 and 429).

423 warns that a lock-out is near: the login waits, its budget is halved for a while, and the
request is sent again once — never at once, never in a loop. 429 (an empty body over HTTP,
``{"s":429}`` on a socket) or a captcha locks the login out for about an hour: nothing of that
login is sent until then, token renewal included; the engine hears ``SessionLost`` with the
reason ``rate_limited``, then the login comes back on its own."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from brokers.base import (
    OrderAccepted,
    OrderRejected,
    OrderRequest,
    SessionLost,
    SessionRestored,
    TokenExpired,
)
from tests.brokers.tradovate.conftest import ES, Logins, logins, until
from tests.conftest import START

PLACE = "order/placeorder"
RENEW = "auth/renewaccesstoken"


@pytest.mark.trio
async def test_423_waits_and_halves_the_budget_then_sends_once_more(tmp_path: Path) -> None:
    settings = {"throttle_wait_s": 0.3, "throttle_period_s": 60.0}
    async with logins(tmp_path, {"alice": ["A1"]}, settings=settings) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.throttle_next("alice", endpoint=PLACE)
            session.place_order(OrderRequest("C1", "A1", ES, 1))
            await rig.broker.settled()
            first, again = rig.mine("alice", PLACE)
            assert again.body == first.body
            assert (again.at_ns - first.at_ns) / 1e9 >= 0.3  # waited, not at once
            assert session.budget.factor == 0.5
            # 423 again on the same request: it is refused, not retried in a loop.
            rig.sim.throttle_next("alice", count=2, endpoint=PLACE)
            session.place_order(OrderRequest("C2", "A1", ES, 1))
            await rig.broker.settled()
            assert len(rig.mine("alice", PLACE)) == 4
            assert session.budget.factor == 0.125  # halved at each 423
            assert session.live  # slowed down, not locked out
        sink = rig.sink("alice")
        assert [e.client_order_id for e in sink.of(OrderAccepted)] == ["C1"]
        (refused,) = sink.of(OrderRejected)
        assert refused.client_order_id == "C2"
        assert refused.reason.startswith("Throttled") and "423" in refused.reason
        assert sink.of(SessionLost) == []


async def _advance(rig: Logins, minutes: float) -> None:
    rig.clock.set(rig.clock.now() + timedelta(minutes=minutes))
    await rig.broker.run_due()
    await rig.broker.settled()


@pytest.mark.trio
async def test_429_on_the_socket_stops_every_request_of_the_login_renewal_included(
    tmp_path: Path,
) -> None:
    # The token is due for renewal one minute in: inside the lock-out.
    settings = {"renew_ahead": timedelta(minutes=79), "backoff_initial_s": 0.05}
    async with logins(tmp_path, {"alice": ["A1", "A2"]}, settings=settings) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.lock_out("alice", endpoint=PLACE)  # {"s":429} to the next placeorder
            session.place_order(OrderRequest("C1", "A1", ES, 1))
            await rig.broker.settled()
            assert rig.mine("alice", PLACE)[-1].method == "WS"  # it went on the socket
            sent = len(rig.of_user("alice"))
            session.place_order(OrderRequest("C2", "A2", ES, 1))
            session.request_snapshot("s1")
            await _advance(rig, 2)  # the renewal is due: not while locked out
            await _advance(rig, 30)
            assert len(rig.of_user("alice")) == sent  # not one request, of any kind
            assert rig.mine("alice", RENEW) == []
            await _advance(rig, 30)  # the hour is over: renewed, reconnected
            await until(rig.broker, lambda: session.live)
            assert len(rig.mine("alice", RENEW)) == 1
        sink = rig.sink("alice")
        (lost,) = sink.of(SessionLost)
        assert lost.reason.startswith("rate_limited") and "429" in lost.reason
        session_events = [
            type(e) for e in sink.events if isinstance(e, SessionLost | SessionRestored)
        ]
        assert session_events == [SessionRestored, SessionLost, SessionRestored]
        assert sink.of(TokenExpired) == []
        rejected = {e.client_order_id: e.reason for e in sink.of(OrderRejected)}
        assert rejected["C1"].startswith("RateLimited") and "C2" in rejected


@pytest.mark.trio
@pytest.mark.parametrize("fault", ["lockout", "captcha"])
async def test_a_renewal_met_by_429_or_a_captcha_is_not_retried_until_the_hour_is_over(
    tmp_path: Path, fault: str
) -> None:
    settings = {"renew_ahead": timedelta(minutes=79)}
    async with logins(tmp_path, {"alice": ["A1"]}, settings=settings) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.fail_next("alice", fault, endpoint=RENEW)
            for _ in range(10):  # 50 minutes, in 5-minute steps; met at the first
                await _advance(rig, 5)
            assert len(rig.mine("alice", RENEW)) == 1  # never again within the hour
            assert not session.live
            assert rig.broker.next_due() == START + timedelta(minutes=65)  # the cooldown's end
            await _advance(rig, 16)
            await until(rig.broker, lambda: session.live)
            assert len(rig.mine("alice", RENEW)) == 2  # renewed once the hour was over
        sink = rig.sink("alice")
        (lost,) = sink.of(SessionLost)
        assert lost.reason.startswith("rate_limited")
        assert sink.of(TokenExpired) == []
