"""HTTP 401 and the sessions of a user (TRADOVATE.md, "What the real API does": 401, tokens).

A 401 is answered by one renewal of the token: renewed, the call goes again; a 401 after that is
the operation's refusal ("no permission", on the order), not the login's expiry. Only a renewal
the broker refuses — or the token refused on the socket's ``authorize`` — makes the connection
``reauth_required``. A third session of the user revokes the oldest, whose calls then answer
401: the same rule applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from brokers.base import OrderAccepted, OrderRejected, OrderRequest, SessionLost, TokenExpired
from tests.brokers.tradovate.conftest import ES, logins, until

PLACE = "order/placeorder"
RENEW = "auth/renewaccesstoken"


@pytest.mark.trio
async def test_a_401_is_answered_by_one_renewal_then_the_call_goes_again(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            token = session.link.access_token()
            rig.sim.unauthorized_next("alice", endpoint=PLACE)
            session.place_order(OrderRequest("C1", "A1", ES, 1))
            await rig.broker.settled()
            assert session.live
            assert session.link.access_token() != token  # renewed
        sink = rig.sink("alice")
        assert [e.client_order_id for e in sink.of(OrderAccepted)] == ["C1"]
        assert sink.of(TokenExpired) == [] and sink.of(OrderRejected) == []
        assert len(rig.mine("alice", RENEW)) == 1
        refused, again = rig.mine("alice", PLACE)
        assert refused.method == "WS" and again.method == "POST"  # then with the new token
        assert rig.sim.position("A1", ES) == 1


@pytest.mark.trio
async def test_a_401_after_a_renewal_is_the_orders_refusal_not_the_logins(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.unauthorized_next("alice", count=2, endpoint=PLACE)
            session.place_order(OrderRequest("C1", "A1", ES, 1))
            await rig.broker.settled()
            session.place_order(OrderRequest("C2", "A1", ES, 1))  # the login still trades
            await rig.broker.settled()
            assert session.live
        sink = rig.sink("alice")
        (refused,) = sink.of(OrderRejected)
        assert refused.client_order_id == "C1" and "no permission" in refused.reason
        assert [e.client_order_id for e in sink.of(OrderAccepted)] == ["C2"]
        assert sink.of(TokenExpired) == [] and sink.of(SessionLost) == []
        assert len(rig.mine("alice", RENEW)) == 1


@pytest.mark.trio
async def test_a_401_and_a_refused_renewal_make_the_login_reauth_required(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.refuse_renewal("alice")
            rig.sim.unauthorized_next("alice", endpoint=PLACE)
            session.place_order(OrderRequest("C1", "A1", ES, 1))
            await rig.broker.settled()
            assert not session.live
        sink = rig.sink("alice")
        assert sink.of(TokenExpired) == [TokenExpired("alice")]
        (refused,) = sink.of(OrderRejected)
        assert refused.reason.startswith("Unauthorized")
        assert len(rig.mine("alice", PLACE)) == 1  # not sent again with a refused token


@pytest.mark.trio
async def test_the_token_refused_on_authorize_makes_the_login_reauth_required(
    tmp_path: Path,
) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        rig.sim.unauthorized_next("alice", endpoint="authorize")
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            assert not session.live
        assert rig.sink("alice").events == [TokenExpired("alice")]
        assert rig.mine("alice", RENEW) == []


@pytest.mark.trio
async def test_a_third_session_elsewhere_revokes_ours_and_the_login_needs_reauthorization(
    tmp_path: Path,
) -> None:
    settings = {"backoff_initial_s": 0.05}
    async with logins(tmp_path, {"alice": ["A1"]}, settings=settings) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.sign_in_elsewhere("alice")  # two sessions: ours still works
            await rig.broker.settled()
            session.place_order(OrderRequest("C1", "A1", ES, 1))
            await rig.broker.settled()
            assert session.live
            rig.sim.sign_in_elsewhere("alice")  # a third: ours, the oldest, is revoked
            await until(rig.broker, lambda: not session.live)
            session.place_order(OrderRequest("C2", "A1", ES, 1))
            await rig.broker.settled()
        sink = rig.sink("alice")
        assert [e.client_order_id for e in sink.of(OrderAccepted)] == ["C1"]
        assert sink.of(TokenExpired) == [TokenExpired("alice")]
        assert [e.client_order_id for e in sink.of(OrderRejected)] == ["C2"]
