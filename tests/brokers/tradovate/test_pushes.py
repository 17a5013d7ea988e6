"""Pushed entities (TRADOVATE.md, "What the real API does": pushed entities).

A ``props`` event's ``entity`` may be one object or an array, a frame may carry several events,
``eventType`` is ``Created``, ``Updated`` or ``Deleted``. Fills are de-duplicated by fill id — a
fill pushed again (``Updated``), also after a resync, is never counted twice, in an order's
filled quantity or a liquidation's "flat". A fill withdrawn (``active: false``) is logged as an
error and the engine gets ``FillCorrected`` for its account. ``position``, ``command``,
``commandReport``, ``orderVersion``, ``executionReport`` entities are accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from brokers.base import (
    Fill,
    FillCorrected,
    OrderRequest,
    OrderType,
    SessionLost,
    SessionRestored,
    Snapshot,
)
from tests.brokers.tradovate.conftest import ES, logins, until


@pytest.mark.trio
async def test_entities_in_arrays_are_read_each_and_the_socket_stays(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.entity_arrays("alice")
            rig.sim.trade("A1", ES, 3, fills=(1, 2))  # by hand, in two fills
            await rig.broker.settled()
            session.place_order(OrderRequest("C1", "A1", ES, -1))
            await rig.broker.settled()
            ids = rig.sim.fill_ids("A1")
            rig.sim.push_fill_again(*ids)  # three fills in one event's array
            await rig.broker.settled()
            assert session.live
        sink = rig.sink("alice")
        fills = [(f.client_order_id, f.qty, f.order_done) for f in sink.of(Fill)]
        assert fills == [(None, 1, False), (None, 2, True), ("C1", -1, True)]
        assert sink.of(SessionLost) == []
        assert rig.broker.stats["malformed"] == 0


@pytest.mark.trio
async def test_a_fill_pushed_again_counts_once_also_after_a_resync(tmp_path: Path) -> None:
    settings = {"backoff_initial_s": 0.05}
    async with logins(tmp_path, {"alice": ["A1"]}, settings=settings) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            session.place_order(OrderRequest("C1", "A1", ES, 2))
            await rig.broker.settled()
            (entry,) = rig.sim.fill_ids("A1")
            rig.sim.push_fill_again(entry)
            await rig.broker.settled()
            session.place_order(OrderRequest("L1", "A1", ES, 0, OrderType.LIQUIDATE))
            await rig.broker.settled()
            exit_fill = rig.sim.fill_ids("A1")[-1]
            rig.sim.drop("alice", outage=False)  # the socket goes; a new one syncs
            await until(rig.broker, lambda: len(rig.sim.authorized_at("alice")) == 2)
            await until(rig.broker, lambda: session.live)
            rig.sim.push_fill_again(entry, exit_fill)  # after the resync, as Updated
            await rig.broker.settled()
            session.request_snapshot("s1")
            await rig.broker.settled()
        sink = rig.sink("alice")
        fills = [(f.client_order_id, f.qty, f.order_done) for f in sink.of(Fill)]
        assert fills == [("C1", 2, True), ("L1", -2, True)]  # each once, the liquidation done
        (snapshot,) = sink.of(Snapshot)
        assert snapshot.accounts["A1"].positions == {}
        assert sink.of(SessionRestored)  # the resync happened


@pytest.mark.trio
async def test_a_withdrawn_fill_is_an_error_and_a_correction_for_its_account(
    tmp_path: Path,
) -> None:
    async with logins(tmp_path, {"alice": ["A1", "A2"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            session.place_order(OrderRequest("C1", "A1", ES, 2))
            session.place_order(OrderRequest("C2", "A2", ES, 1))
            await rig.broker.settled()
            withdrawn = rig.sim.fill_ids("A1")[-1]
            with capture_logs() as logs:
                rig.sim.withdraw_fill(withdrawn)
                await rig.broker.settled()
                rig.sim.push_fill_again(withdrawn)  # pushed once more: nothing more
                await rig.broker.settled()
            session.request_snapshot("s1")
            await rig.broker.settled()
            assert session.live
        sink = rig.sink("alice")
        (corrected,) = sink.of(FillCorrected)
        assert (corrected.connection, corrected.account) == ("alice", "A1")
        assert corrected.fill_id == str(withdrawn) and "withdrew" in corrected.reason
        assert sorted(f.client_order_id or "" for f in sink.of(Fill)) == ["C1", "C2"]  # once
        errors = [e for e in logs if e["log_level"] == "error"]
        assert [e["event"] for e in errors] == ["fill withdrawn by Tradovate"]
        assert errors[0]["account"] == "A1"
        assert rig.broker.stats["fills_withdrawn"] == 1
        (snapshot,) = sink.of(Snapshot)
        assert snapshot.accounts["A1"].positions == {}  # the broker's book, corrected
        assert snapshot.accounts["A2"].positions[ES].qty == 1


def _props(entity_type: str, event: str, entity: object) -> dict[str, object]:
    return {"e": "props", "d": {"entityType": entity_type, "eventType": event, "entity": entity}}


@pytest.mark.trio
async def test_entities_the_adapter_does_not_need_are_accepted(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            account = rig.sim.exchange.account("A1").id
            frame = [
                _props("position", "Updated", {"id": 1, "accountId": account, "netPos": 0}),
                _props("commandReport", "Created", [{"id": 2, "commandId": 3}]),
                _props("executionReport", "Created", [{"id": 4}, {"id": 5}]),
                _props("cashBalance", "Updated", {"id": 6, "accountId": account}),
                _props("command", "Created", {"id": 7, "orderId": 99, "commandType": "New"}),
                _props("orderVersion", "Created", {"id": 8, "orderId": 99, "orderQty": 1}),
                _props("position", "Deleted", [{"id": 1}]),
            ]
            rig.sim.push_raw("alice", "a" + json.dumps(frame))
            await rig.broker.settled()
            session.place_order(OrderRequest("C1", "A1", ES, 1))
            await rig.broker.settled()
            assert session.live
        sink = rig.sink("alice")
        assert sink.of(SessionLost) == []
        assert [f.client_order_id for f in sink.of(Fill)] == ["C1"]
        assert rig.broker.stats["malformed"] == 0
