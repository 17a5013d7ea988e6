"""Order answers of every documented shape (TRADOVATE.md, "What the real API does": order
answers): ``{orderId}`` is success, also with ``failureReason: "Success"``; any other
``failureReason``, a ``failureText``, an ``errorText`` or ``violations`` is a refusal whose text
the engine gets. The same for ``liquidateposition`` and ``cancelorder``."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from brokers.base import (
    Fill,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderRequest,
    OrderType,
    TokenExpired,
)
from brokers.tradovate.sim.exchange import REJECT_FORCED
from tests.brokers.tradovate.conftest import ES, logins


@pytest.mark.trio
async def test_failure_reason_success_is_success(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.success_reason("alice")
            session.place_order(OrderRequest("C1", "A1", ES, 2))
            await rig.broker.settled()
            resting = rig.sim.place_manual_working("A1", ES, -1)
            await rig.broker.settled()
            with capture_logs() as logs:
                session.cancel_working("A1", ES, (str(resting),))
                await rig.broker.settled()
            session.place_order(OrderRequest("L1", "A1", ES, 0, OrderType.LIQUIDATE))
            await rig.broker.settled()
        sink = rig.sink("alice")
        assert sink.of(OrderRejected) == []
        accepted = [e.client_order_id for e in sink.of(OrderAccepted)]
        assert accepted == ["C1", None, "L1"]  # the engine's two, and the hand-placed one
        assert [(f.client_order_id, f.qty) for f in sink.of(Fill)] == [("C1", 2), ("L1", -2)]
        assert rig.sim.exchange.orders[resting].status == "Canceled"
        assert not [entry for entry in logs if entry["event"] == "cancel refused"]
        assert rig.sim.position("A1", ES) == 0
        assert any(isinstance(e, OrderDone) for e in sink.events)


@pytest.mark.trio
@pytest.mark.parametrize(
    ("shape", "said"),
    [
        ("failureReason", f"UnknownReason: {REJECT_FORCED}"),
        ("failureText", REJECT_FORCED),
        ("errorText", REJECT_FORCED),
        ("violations", f"invalid request: {REJECT_FORCED}"),
    ],
)
async def test_every_refusal_shape_is_a_rejection_with_the_brokers_text(
    tmp_path: Path, shape: str, said: str
) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.reject_next("alice", 2, shape)
            session.place_order(OrderRequest("C1", "A1", ES, 1))
            session.place_order(OrderRequest("L1", "A1", ES, 0, OrderType.LIQUIDATE))
            await rig.broker.settled()
            assert session.live
        sink = rig.sink("alice")
        assert [(e.client_order_id, e.reason) for e in sink.of(OrderRejected)] == [
            ("C1", said),
            ("L1", said),
        ]
        assert sink.of(OrderAccepted) == [] and sink.of(TokenExpired) == []
        assert rig.broker.stats["orders_rejected"] == 2
