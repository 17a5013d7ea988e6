"""The sync request (TRADOVATE.md, "What the real API does": sync request): it names the user
and every entity type the adapter reads, accepts an answer split in several replies, and uses
an answer only when every list it reads is there."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from brokers.base import (
    OrderRequest,
    OrderStatus,
    PositionInfo,
    SessionLost,
    SessionRestored,
    Snapshot,
    SnapshotFailed,
)
from brokers.tradovate.entities import SYNC_ENTITY_TYPES
from tests.brokers.tradovate.conftest import ES, logins, until

SYNC = "user/syncrequest"
READ = ["account", "contract", "position", "order", "orderVersion", "command", "fill"]


@pytest.mark.trio
async def test_the_sync_request_names_the_user_and_every_entity_type_read(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
        (sync,) = rig.mine("alice", SYNC)
        user = rig.sim.exchange.user("alice").id
        assert sync.body == {"users": [user], "entityTypes": READ, "splitResponses": True}
        assert list(SYNC_ENTITY_TYPES) == READ


@pytest.mark.trio
async def test_an_answer_split_in_several_replies_is_read_whole(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        rig.sim.split_sync("alice", 4)
        async with rig.broker.running():
            await rig.broker.settled()
            session.place_order(OrderRequest("C1", "A1", ES, 2))
            resting = rig.sim.place_manual_working("A1", ES, -1)
            await rig.broker.settled()
            session.request_snapshot("s1")
            await rig.broker.settled()
        sink = rig.sink("alice")
        assert sink.of(SnapshotFailed) == []
        (snapshot,) = sink.of(Snapshot)
        account = snapshot.accounts["A1"]
        assert account.positions == {ES: PositionInfo(2, Decimal(5000))}
        assert [w.broker_order_id for w in account.working] == [str(resting)]
        assert [(r.client_order_id, r.status) for r in account.orders] == [
            ("C1", OrderStatus.FILLED)
        ]


@pytest.mark.trio
async def test_a_first_sync_short_of_a_list_is_tried_again_never_taken_as_empty(
    tmp_path: Path,
) -> None:
    settings = {"backoff_initial_s": 0.05, "request_timeout_s": 0.5}
    async with logins(tmp_path, {"alice": ["A1"]}, settings=settings) as rig:
        rig.sim.trade("A1", ES, 4)
        rig.sim.drop_sync_keys("alice", ["positions", "fills"])
        session = rig.session("alice")
        session.request_snapshot("s0")
        async with rig.broker.running():
            await until(rig.broker, lambda: session.live)
            await rig.broker.settled()
        sink = rig.sink("alice")
        (snapshot,) = sink.of(Snapshot)
        assert snapshot.accounts["A1"].positions[ES].qty == 4
        assert len(rig.mine("alice", SYNC)) == 2
        assert [type(e) for e in sink.events if isinstance(e, SessionLost | SessionRestored)] == [
            SessionLost,
            SessionRestored,
        ]
