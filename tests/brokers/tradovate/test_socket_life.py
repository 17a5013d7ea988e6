"""Socket life (TRADOVATE.md, "What the real API does": socket life): the broker closes a socket
whose client heartbeat stops; it may end one with ``c[code,"reason"]`` or a ``shutdown`` event
(``Maintenance``, ``ConnectionQuotaReached``, ``IPQuotaReached``). The adapter reconnects after
a backoff — never at once — and the engine hears ``SessionLost`` then ``SessionRestored``, so
it syncs (S3)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from brokers.base import Quote, SessionLost, SessionRestored, Snapshot
from brokers.tradovate.link import Phase
from tests.brokers.tradovate.conftest import ES, Logins, logins, until

BACKOFF = {"backoff_initial_s": 0.4, "backoff_max_s": 2.0}


def _close(rig: Logins) -> None:
    assert rig.sim.close_socket("alice", 1001, "Going away") == 1


def _shutdown(code: str) -> Any:
    def shutdown(rig: Logins) -> None:
        assert rig.sim.shutdown("alice", code, "Please reconnect later") == 1

    return shutdown


@pytest.mark.trio
@pytest.mark.parametrize(
    ("end", "said"),
    [
        (_close, "closed by the broker (1001 Going away)"),
        (_shutdown("Maintenance"), "shutdown by the broker (Maintenance"),
        (_shutdown("ConnectionQuotaReached"), "ConnectionQuotaReached"),
        (_shutdown("IPQuotaReached"), "IPQuotaReached"),
    ],
)
async def test_a_socket_the_broker_ends_is_lost_then_back_after_a_backoff(
    tmp_path: Path, end: Any, said: str
) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}, settings=BACKOFF) as rig:
        session = rig.session("alice")
        sink = rig.sink("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            end(rig)
            ended = trio.current_time()
            await until(rig.broker, lambda: bool(sink.of(SessionLost)))
            (lost,) = sink.of(SessionLost)
            assert said in lost.reason
            assert not session.live  # the engine knows at once, not after the reconnection
            await until(rig.broker, lambda: session.live)
            _, second = rig.sim.authorized_at("alice")
            assert second - ended >= 0.2  # a backoff (0.4 s, jitter down to half), not at once
            rig.sim.trade("A1", ES, 1)  # made after the return: it reaches the engine
            session.request_snapshot("s1")
            await rig.broker.settled()
        kinds = [type(e) for e in sink.events if isinstance(e, SessionLost | SessionRestored)]
        assert kinds == [SessionRestored, SessionLost, SessionRestored]
        (snapshot,) = sink.of(Snapshot)
        assert snapshot.accounts["A1"].positions[ES].qty == 1


@pytest.mark.trio
async def test_the_broker_closes_a_socket_whose_heartbeat_stops(tmp_path: Path) -> None:
    server = {"client_heartbeat_timeout_s": 0.5}
    # The client's heartbeat every 3 s is too slow for this broker: it closes the socket.
    slow = {"heartbeat_s": 3.0, "dead_after_s": 30.0, "backoff_initial_s": 0.05}
    async with logins(tmp_path, {"alice": ["A1"]}, settings=slow, server=server) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            await until(rig.broker, lambda: rig.sim.server.hub.heartbeat_closes >= 1)
            # Live again on a new socket, authorized anew (right after the close the old one may
            # still read live, and the first SessionRestored is the first socket's).
            await until(
                rig.broker, lambda: session.live and len(rig.sim.authorized_at("alice")) >= 2
            )
        assert len(rig.sim.authorized_at("alice")) >= 2


@pytest.mark.trio
async def test_a_socket_that_keeps_its_heartbeat_stays_open(tmp_path: Path) -> None:
    server = {"client_heartbeat_timeout_s": 0.5}
    async with logins(
        tmp_path, {"alice": ["A1"]}, settings={"heartbeat_s": 0.1}, server=server
    ) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            await trio.sleep(1.5)
            assert session.live
        assert rig.sim.server.hub.heartbeat_closes == 0
        assert len(rig.sim.authorized_at("alice")) == 1


@pytest.mark.trio
async def test_a_market_data_shutdown_is_reconnected_after_a_backoff(tmp_path: Path) -> None:
    settings = {**BACKOFF, "quote_symbols": (ES,)}
    async with logins(tmp_path, {"alice": ["A1"]}, settings=settings) as rig:
        rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            assert rig.sim.shutdown("alice", "Maintenance", "md restart", kind="md") == 1
            ended = trio.current_time()
            await until(rig.broker, lambda: len(rig.sim.authorized_at("alice", "md")) == 2)
            assert rig.sim.authorized_at("alice", "md")[1] - ended >= 0.2
            await rig.broker.settled()
            rig.sim.set_price(ES, Decimal(5003))
            await rig.broker.settled()
        assert Decimal(5003) in [q.last for q in rig.sink("alice").of(Quote)]


@pytest.mark.trio
async def test_a_reopen_during_a_connection_attempt_leaves_the_link_settled(
    tmp_path: Path,
) -> None:
    """The engine reopens the session (a user's reconnect) while the link is already
    connecting after an outage: once that attempt is live there is nothing left to attempt,
    so the adapter settles. (A reopen then kept asking for an attempt the live link never
    makes: ``settled`` waited for ever — found by the Tradovate safety property test.)"""
    async with logins(tmp_path, {"alice": ["A1"]}, settings=BACKOFF) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.drop("alice")
            await until(rig.broker, lambda: not session.live)
            listed = len(rig.mine("alice", "account/list"))
            # The attempt that comes up after the outage waits out a ticket on its way.
            rig.sim.penalize_next("alice", 1, 0.5, endpoint="account/list")
            rig.sim.restore("alice")
            with trio.fail_after(5):
                while len(rig.mine("alice", "account/list")) == listed:
                    await trio.sleep(0.01)
            assert session.link.phase is Phase.CONNECTING
            session.open()
            with trio.fail_after(5):
                await rig.broker.settled()
            assert session.live
            assert session.link.stable()
        kinds = [type(e) for e in rig.sink("alice").events if isinstance(e, SessionRestored)]
        assert kinds == [SessionRestored, SessionRestored]
