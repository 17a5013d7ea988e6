"""Working orders through the adapter against the local server over HTTP and the trading
socket (SEMANTICS S8; TRADOVATE.md: placeoso, placeoco, modifyorder, the order states).

A bracket goes out as one ``placeoso`` (``bracket1`` the stop-loss, ``bracket2`` the target,
a ``clOrdId`` each) and comes back as an entry and two inactive legs; the entry's fill makes
the legs active, the target's fill ends the stop (S8.10). An OCO pair is one ``placeoco``.
A modification is confirmed by the pushed version (``OrderUpdated``) or refused
(``ModifyRejected``). Cancelling an entry cancels its legs. The account owner's own orders —
placed in the Tradovate app — reach the session as ``OrderAccepted`` without a client order id,
their modifications as ``OrderUpdated``, and snapshots list them with their terms and links."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from brokers.base import (
    Fill,
    LegRequest,
    LegRole,
    ModifyRejected,
    ModifyRequest,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Snapshot,
    TimeInForce,
    WorkingOrder,
)
from brokers.tradovate.session import TradovateSession
from tests.brokers.tradovate.conftest import ES, Logins, Recorder, logins

D = Decimal


def bracket(cl: str = "B1", qty: int = 2) -> OrderRequest:
    """A buy limit at 4990 with a stop at 4980 and a target at 5010 (legs given target first:
    the stop-loss still goes as ``bracket1``)."""
    return OrderRequest(
        cl,
        "A1",
        ES,
        qty,
        OrderType.LIMIT,
        price=D(4990),
        tif=TimeInForce.GTC,
        bracket=(
            LegRequest(f"{cl}-t", LegRole.TARGET, OrderType.LIMIT, price=D(5010)),
            LegRequest(f"{cl}-s", LegRole.STOP, OrderType.STOP, stop=D(4980)),
        ),
    )


def updates(sink: Recorder) -> list[tuple[str, int, bool, int]]:
    return [(u.broker_order_id, u.qty, u.active, u.filled) for u in sink.of(OrderUpdated)]


async def snapshot(rig: Logins, session: TradovateSession, request_id: str = "s1") -> Snapshot:
    session.request_snapshot(request_id)
    await rig.broker.settled()
    return next(s for s in rig.sink("alice").of(Snapshot) if s.request_id == request_id)


@pytest.mark.trio
async def test_a_bracket_is_one_placeoso_its_legs_work_once_the_entry_fills(
    tmp_path: Path,
) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            session.place_order(bracket())
            await rig.broker.settled()
            (body,) = [r.body for r in rig.mine("alice", "order/placeoso")]
            account = rig.sim.exchange.account("A1").id
            assert body == {
                "accountSpec": "A1",
                "accountId": account,
                "clOrdId": "B1",
                "action": "Buy",
                "symbol": ES,
                "orderQty": 2,
                "orderType": "Limit",
                "price": 4990,
                "timeInForce": "GTC",
                "isAutomated": True,
                "bracket1": {
                    "action": "Sell",
                    "clOrdId": "B1-s",
                    "orderType": "Stop",
                    "stopPrice": 4980,
                    "timeInForce": "GTC",
                },
                "bracket2": {
                    "action": "Sell",
                    "clOrdId": "B1-t",
                    "orderType": "Limit",
                    "price": 5010,
                    "timeInForce": "GTC",
                },
            }
            sink = rig.sink("alice")
            entry, stop, target = sink.of(OrderAccepted)
            assert (entry.client_order_id, entry.qty, entry.order_type, entry.price) == (
                "B1",
                2,
                OrderType.LIMIT,
                D(4990),
            )
            assert (entry.tif, entry.active, entry.legs) == (
                TimeInForce.GTC,
                True,
                (stop.broker_order_id, target.broker_order_id),
            )
            assert (stop.client_order_id, stop.role, stop.qty, stop.stop, stop.active) == (
                "B1-s",
                LegRole.STOP,
                -2,
                D(4980),
                False,
            )
            assert (target.client_order_id, target.role, target.price, target.active) == (
                "B1-t",
                LegRole.TARGET,
                D(5010),
                False,
            )
            assert stop.parent == target.parent == entry.broker_order_id
            assert (stop.oco, target.oco) == (target.broker_order_id, stop.broker_order_id)
            assert stop.legs == target.legs == ()

            before = await snapshot(rig, session, "s1")
            assert [
                (w.client_order_id, w.active, w.role) for w in before.accounts["A1"].working
            ] == [
                ("B1", True, None),
                ("B1-s", False, LegRole.STOP),
                ("B1-t", False, LegRole.TARGET),
            ]

            rig.sim.set_price(ES, D(4995))  # not there yet
            await rig.broker.settled()
            assert sink.of(Fill) == [] and sink.of(OrderUpdated) == []
            rig.sim.set_price(ES, D(4989))  # the entry fills at its price (S8.10)
            await rig.broker.settled()
            (fill,) = sink.of(Fill)
            assert (fill.client_order_id, fill.qty, fill.price, fill.order_done) == (
                "B1",
                2,
                D(4990),
                True,
            )
            legs = {stop.broker_order_id, target.broker_order_id}
            assert sorted(updates(sink)) == sorted((leg, -2, True, 0) for leg in legs)
            rig.sim.set_price(ES, D(5011))  # the target fills at 5010; the stop ends with it
            await rig.broker.settled()
            exit_fill = sink.of(Fill)[-1]
            assert (exit_fill.client_order_id, exit_fill.qty, exit_fill.price) == (
                "B1-t",
                -2,
                D(5010),
            )
            (done,) = sink.of(OrderDone)
            assert (done.client_order_id, done.broker_order_id, done.reason) == (
                "B1-s",
                stop.broker_order_id,
                "canceled",
            )
            after = await snapshot(rig, session, "s2")
            assert after.accounts["A1"].working == ()
            assert after.accounts["A1"].positions == {}
            reports = {r.client_order_id: (r.status, r.filled) for r in after.accounts["A1"].orders}
            assert reports == {
                "B1": (OrderStatus.FILLED, 2),
                "B1-s": (OrderStatus.CANCELLED, 0),
                "B1-t": (OrderStatus.FILLED, 2),
            }


@pytest.mark.trio
async def test_an_oco_pair_is_one_placeoco_and_the_first_to_fill_ends_the_other(
    tmp_path: Path,
) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            session.place_order(OrderRequest("P1", "A1", ES, 3))  # a long position to protect
            await rig.broker.settled()
            pair = OrderRequest(
                "O1",
                "A1",
                ES,
                -3,
                OrderType.STOP_LIMIT,
                price=D(4978),
                stop=D(4975),
                role=LegRole.STOP,
                oco=LegRequest("O1-t", LegRole.TARGET, OrderType.LIMIT, price=D(5020)),
            )
            session.place_order(pair)
            await rig.broker.settled()
            (body,) = [r.body for r in rig.mine("alice", "order/placeoco")]
            assert body["orderType"] == "StopLimit" and body["clOrdId"] == "O1"
            assert (body["price"], body["stopPrice"], body["action"]) == (4978, 4975, "Sell")
            assert body["other"] == {
                "action": "Sell",
                "clOrdId": "O1-t",
                "orderType": "Limit",
                "price": 5020,
                "timeInForce": "Day",
            }
            sink = rig.sink("alice")
            _, main, other = sink.of(OrderAccepted)
            assert (main.role, main.oco, main.legs, main.active) == (
                LegRole.STOP,
                other.broker_order_id,
                (other.broker_order_id,),
                True,
            )
            assert (other.role, other.oco, other.parent, other.qty) == (
                LegRole.TARGET,
                main.broker_order_id,
                None,
                -3,
            )
            rig.sim.set_price(ES, D(4974))  # the stop triggers: a sell limit at 4978 now
            await rig.broker.settled()
            rig.sim.set_price(ES, D(4977))  # not reached
            await rig.broker.settled()
            assert [f.client_order_id for f in sink.of(Fill)] == ["P1"]
            rig.sim.set_price(ES, D(4979))  # above the stop again: a limit still, and reached
            await rig.broker.settled()
            fill = sink.of(Fill)[-1]
            assert (fill.client_order_id, fill.qty, fill.price) == ("O1", -3, D(4978))
            assert [(d.client_order_id, d.reason) for d in sink.of(OrderDone)] == [
                ("O1-t", "canceled")
            ]


@pytest.mark.trio
async def test_modifyorder_is_confirmed_by_the_pushed_version_or_refused(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            session.place_order(OrderRequest("L1", "A1", ES, 2, OrderType.LIMIT, price=D(4900)))
            await rig.broker.settled()
            sink = rig.sink("alice")
            (accepted,) = sink.of(OrderAccepted)
            order_id = accepted.broker_order_id
            session.modify_order(ModifyRequest("A1", order_id, "L1", qty=3, price=D(4950)))
            await rig.broker.settled()
            (body,) = [r.body for r in rig.mine("alice", "order/modifyorder")]
            assert body == {
                "orderId": int(order_id),
                "orderQty": 3,
                "orderType": "Limit",
                "price": 4950,
                "timeInForce": "Day",
                "isAutomated": True,
            }
            (updated,) = sink.of(OrderUpdated)
            assert (updated.broker_order_id, updated.qty, updated.price, updated.active) == (
                order_id,
                3,
                D(4950),
                True,
            )
            # The same terms again: still a new version, still confirmed.
            session.modify_order(ModifyRequest("A1", order_id, "L1", price=D(4950)))
            await rig.broker.settled()
            assert len(sink.of(OrderUpdated)) == 2
            # A limit has no stop price: refused here, nothing sent.
            session.modify_order(ModifyRequest("A1", order_id, "L1", stop=D(4800)))
            await rig.broker.settled()
            assert len(rig.mine("alice", "order/modifyorder")) == 2
            rig.sim.set_price(ES, D(4950))  # fills at 4950: the new price
            await rig.broker.settled()
            assert [(f.qty, f.price, f.order_done) for f in sink.of(Fill)] == [(3, D(4950), True)]
            session.modify_order(ModifyRequest("A1", order_id, "L1", price=D(4940)))
            await rig.broker.settled()
            refused = sink.of(ModifyRejected)
            assert [(r.broker_order_id, r.client_order_id) for r in refused] == [
                (order_id, "L1"),
                (order_id, "L1"),
            ]
            assert refused[0].reason.startswith("InvalidModification: a limit order has no stop")
            assert refused[1].reason.startswith("NotWorking")


@pytest.mark.trio
async def test_the_broker_refusing_a_modification_is_modify_rejected_with_its_text(
    tmp_path: Path,
) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            session.place_order(OrderRequest("S1", "A1", ES, -1, OrderType.STOP, stop=D(4900)))
            await rig.broker.settled()
            (accepted,) = rig.sink("alice").of(OrderAccepted)
            text = "Modification refused"
            rig.sim.answer_next("alice", "order/modifyorder", {"failureText": text})
            session.modify_order(ModifyRequest("A1", accepted.broker_order_id, None, stop=D(4950)))
            await rig.broker.settled()
        sink = rig.sink("alice")
        (refused,) = sink.of(ModifyRejected)
        assert text in refused.reason and refused.client_order_id is None
        assert sink.of(OrderUpdated) == []


@pytest.mark.trio
async def test_cancelling_an_entry_cancels_its_legs(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            session.place_order(bracket())
            await rig.broker.settled()
            sink = rig.sink("alice")
            entry = sink.of(OrderAccepted)[0].broker_order_id
            session.cancel_working("A1", ES, (entry,))
            await rig.broker.settled()
            assert len(rig.mine("alice", "order/cancelorder")) == 1
            assert sorted((d.client_order_id, d.reason) for d in sink.of(OrderDone)) == [
                ("B1", "canceled"),
                ("B1-s", "canceled"),
                ("B1-t", "canceled"),
            ]
            assert (await snapshot(rig, session)).accounts["A1"].working == ()


@pytest.mark.trio
async def test_a_refused_bracket_is_one_rejection_per_client_order_id(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.reject_next("alice")
            session.place_order(bracket())
            await rig.broker.settled()
        sink = rig.sink("alice")
        rejected = [r.client_order_id for r in sink.of(OrderRejected)]
        assert rejected == list(bracket().client_order_ids()) == ["B1", "B1-t", "B1-s"]
        assert sink.of(OrderAccepted) == []


@pytest.mark.trio
async def test_a_bracket_whose_answer_is_lost_is_found_by_its_client_order_ids(
    tmp_path: Path,
) -> None:
    """S2.6/S8.9: the answer unreadable, the orders are looked up before anything is re-sent."""
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.corrupt_next("alice", endpoint="order/placeoso")
            session.place_order(bracket())
            await rig.broker.settled()
        sink = rig.sink("alice")
        assert [a.client_order_id for a in sink.of(OrderAccepted)] == ["B1", "B1-s", "B1-t"]
        assert sink.of(OrderRejected) == []
        assert len(rig.mine("alice", "order/placeoso")) == 1


@pytest.mark.trio
async def test_the_owners_own_working_orders_are_followed(tmp_path: Path) -> None:
    """The trader places a bracket, an OCO pair and a limit in the Tradovate app, then moves
    the limit and cancels the pair: the session reports each, none as the engine's."""
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            placed = rig.sim.place_working(
                "A1",
                ES,
                -1,
                OrderType.LIMIT,
                price=D(5010),
                bracket_stop=D(5020),
                bracket_target=D(4990),
            )
            pair = rig.sim.place_oco("A1", ES, 2, stop=D(5030), target=D(4950))
            limit = rig.sim.place_working("A1", ES, 1, OrderType.LIMIT, price=D(4900)).entry
            await rig.broker.settled()
            sink = rig.sink("alice")
            accepted = {a.broker_order_id: a for a in sink.of(OrderAccepted)}
            assert all(a.client_order_id is None for a in accepted.values())
            entry = accepted[str(placed.entry)]
            assert (entry.qty, entry.price, entry.legs) == (
                -1,
                D(5010),
                (placed.stop, placed.target),
            )
            stop, target = accepted[str(placed.stop)], accepted[str(placed.target)]
            assert (stop.role, stop.parent, stop.oco, stop.active, stop.qty) == (
                LegRole.STOP,
                placed.entry,
                placed.target,
                False,
                1,
            )
            assert (target.role, target.price, target.active) == (LegRole.TARGET, D(4990), False)
            first, second = accepted[str(pair.stop)], accepted[str(pair.target)]
            assert (first.order_type, first.stop, first.legs, first.role) == (
                OrderType.STOP,
                D(5030),
                (pair.target,),
                LegRole.STOP,
            )
            assert (second.order_type, second.price, second.oco) == (
                OrderType.LIMIT,
                D(4950),
                pair.stop,
            )
            assert limit is not None
            rig.sim.modify("A1", limit, price=D(4920), qty=2)
            await rig.broker.settled()
            (updated,) = sink.of(OrderUpdated)
            assert (updated.broker_order_id, updated.client_order_id, updated.qty) == (
                limit,
                None,
                2,
            )
            assert updated.price == D(4920)

            listed = (await snapshot(rig, session)).accounts["A1"].working
            assert listed == (
                WorkingOrder(str(placed.entry), None, ES, -1, OrderType.LIMIT, price=D(5010)),
                WorkingOrder(
                    str(placed.stop),
                    None,
                    ES,
                    1,
                    OrderType.STOP,
                    stop=D(5020),
                    role=LegRole.STOP,
                    parent=placed.entry,
                    oco=placed.target,
                    active=False,
                ),
                WorkingOrder(
                    str(placed.target),
                    None,
                    ES,
                    1,
                    OrderType.LIMIT,
                    price=D(4990),
                    role=LegRole.TARGET,
                    parent=placed.entry,
                    oco=placed.stop,
                    active=False,
                ),
                WorkingOrder(
                    str(pair.stop),
                    None,
                    ES,
                    2,
                    OrderType.STOP,
                    stop=D(5030),
                    role=LegRole.STOP,
                    oco=pair.target,
                ),
                WorkingOrder(
                    str(pair.target),
                    None,
                    ES,
                    2,
                    OrderType.LIMIT,
                    price=D(4950),
                    role=LegRole.TARGET,
                    oco=pair.stop,
                ),
                WorkingOrder(limit, None, ES, 2, OrderType.LIMIT, price=D(4920)),
            )
            assert listed == tuple(rig.sim.working_orders("A1"))  # as the server has them

            rig.sim.cancel("A1", str(pair.stop))  # the pair's sibling goes with it
            await rig.broker.settled()
            assert sorted(d.broker_order_id for d in sink.of(OrderDone)) == sorted(
                [str(pair.stop), str(pair.target)]
            )
            rig.sim.set_price(ES, D(5011))  # the entry sells at 5010; its legs start working
            await rig.broker.settled()
            assert sorted(updates(sink)[1:]) == sorted(
                [(str(placed.stop), 1, True, 0), (str(placed.target), 1, True, 0)]
            )
            (fill,) = sink.of(Fill)
            assert (fill.broker_order_id, fill.client_order_id, fill.price) == (
                placed.entry,
                None,
                D(5010),
            )
