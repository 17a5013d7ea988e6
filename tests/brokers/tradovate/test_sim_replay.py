"""The local Tradovate as the replay harness drives it (:mod:`brokers.tradovate.sim.replay`):
the engine's session modifies orders for real (S8.5), and the account owner's working orders
are placed, moved and cancelled through the bridge's controls, as the paper broker's are."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from brokers.base import (
    BrokerEvent,
    LegRole,
    ModifyRequest,
    OrderAccepted,
    OrderDone,
    OrderType,
    OrderUpdated,
)
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.tradovate.sim.replay import SimBridge
from tests.brokers.tradovate.conftest import ES
from tests.conftest import START


def test_the_bridge_places_the_owners_orders_and_its_sessions_modify_them(tmp_path: Path) -> None:
    bridge = SimBridge(VirtualClock(START), ContractTable(), tmp_path / "tradovate")
    try:
        events: list[BrokerEvent] = []
        bridge.add_connection("lead", ("LEAD",), "connected")
        session = bridge.broker.session("lead", ("LEAD",), events.append)
        session.open()
        bridge.set_price(ES, Decimal(5000))

        def settle() -> None:
            bridge.settle(lambda: None)

        settle()
        placed = bridge.place_working(
            "LEAD", ES, 1, OrderType.LIMIT, price=Decimal(4900), bracket_stop=Decimal(4890)
        )
        settle()
        accepted = [e for e in events if isinstance(e, OrderAccepted)]
        assert [(a.broker_order_id, a.role, a.legs) for a in accepted] == [
            (placed.entry, None, (placed.stop,)),
            (placed.stop, LegRole.STOP, ()),
        ]
        assert placed.entry is not None and placed.target is None
        session.modify_order(ModifyRequest("LEAD", placed.entry, None, price=Decimal(4950)))
        settle()
        (updated,) = [e for e in events if isinstance(e, OrderUpdated)]
        assert (updated.broker_order_id, updated.price) == (placed.entry, Decimal(4950))
        assert [w.price for w in bridge.working_orders("LEAD")] == [Decimal(4950), None]
        bridge.modify("LEAD", placed.entry, qty=2)
        bridge.cancel("LEAD", placed.entry)
        settle()
        changes = [(e.broker_order_id, e.qty) for e in events if isinstance(e, OrderUpdated)]
        # the entry's suspended leg follows its quantity
        assert changes == [(placed.entry, 1), (placed.entry, 2), (placed.stop, -2)]
        done = [e.broker_order_id for e in events if isinstance(e, OrderDone)]
        assert done == [placed.entry, placed.stop]
        assert bridge.working_orders("LEAD") == []
    finally:
        bridge.close()
