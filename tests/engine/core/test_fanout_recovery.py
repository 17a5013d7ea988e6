"""A restart finishes what a crash interrupted, and nothing twice.

S2.9: a fan-out cut short by a crash is completed on restart — an opening copy only while its
leader fill is younger than ``max_copy_age``, a closing copy always — and S2.1: never when the
leader traded while the engine was down (S3 reconciles instead). S2.6: an order of unknown
outcome is looked up by its client order id among the orders the broker knows; it is never
re-sent blindly, and one the broker never received is sent again under the next attempt.

The crash is an abrupt stop of the deterministic runtime at a chosen message: whatever was
queued is lost, as it would be in a killed process; the paper broker lives on.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from actors import addresses
from actors.messages.account import CopyOffer
from actors.messages.connection import PlaceOrders
from brokers.base import Fill, OrderRequest
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.core.engine import Engine
from engine.core.topology import AccountConfig, ConnectionConfig, GroupConfig
from engine.host.address import Address
from engine.host.deterministic import DeterministicRuntime
from engine.storage.store import Store
from tests.conftest import ES, PRICES, START, MakeEngine, Rig, member
from tests.properties.profiles import property_settings, scaled

Stop = Callable[[Address, object], bool]


def offer_to(account: str) -> Stop:
    return lambda to, m: to == addresses.account(account) and isinstance(m, CopyOffer)


def placing_on(connection: str) -> Stop:
    return lambda to, m: to == addresses.connection(connection) and isinstance(m, PlaceOrders)


def run_until(rig: Rig, stop: Stop) -> None:
    """Deliver messages until the next one matches ``stop`` (it stays undelivered)."""
    runtime = rig.engine.runtime
    assert isinstance(runtime, DeterministicRuntime)
    while (queued := runtime.next_message()) is not None:
        if stop(*queued):
            return
        runtime.step()
    raise AssertionError("the run went idle before the stop point")


def copies(rig: Rig, account: str) -> list[tuple[str, int, str]]:
    return [(r["cause"], r["qty"], r["status"]) for r in rig.orders(account, "copy")]


def assert_nothing_placed_twice(rig: Rig) -> None:
    accepted = rig.broker.accepted_client_order_ids
    assert len(accepted) == len(set(accepted))
    assert rig.broker.duplicate_rejections == ()


def test_a_fan_out_cut_short_is_completed_on_restart(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """S2.9: F1's copy reached the broker before the crash, F2's was only decided in memory.
    After the restart F2 gets its copy; F1's is found at the broker and not sent again."""
    rig = make_engine(tmp_path)
    rig.broker.trade("LEAD", ES, 1)
    run_until(rig, placing_on("f2"))
    assert rig.broker_position("F1") == 1 and rig.broker_position("F2") == 0
    rig.restart()
    rig.idle()
    assert rig.broker_position("F1") == 1
    assert rig.broker_position("F2") == 1
    assert_nothing_placed_twice(rig)
    cause = copies(rig, "F2")[0][0]
    assert copies(rig, "F2") == [(cause, 1, "filled")]
    assert copies(rig, "F1") == [(cause, 1, "filled")]
    assert any("outcome unknown: is filled at the broker" in m for m in rig.messages("F1"))


def test_a_fan_out_cut_short_before_any_follower_decided_reaches_every_follower(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(tmp_path)
    rig.broker.trade("LEAD", ES, 2)
    run_until(rig, offer_to("F1"))
    rig.restart()
    rig.idle()
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (2, 2)
    assert_nothing_placed_twice(rig)


def test_a_stale_opening_copy_is_skipped_on_restart(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """S2.9: the leader fill is older than max_copy_age (10 s) when the restart would send it."""
    rig = make_engine(tmp_path)
    rig.broker.trade("LEAD", ES, 1)
    run_until(rig, placing_on("f2"))
    rig.clock.advance(timedelta(seconds=11))  # the engine stays down 11 s
    rig.restart()
    rig.idle()
    assert rig.broker_position("F2") == 0
    assert rig.broker_position("F1") == 1
    assert any("skipped: stale" in m for m in rig.messages("F2", "skip"))


def test_a_closing_copy_is_completed_whatever_its_age_and_only_once(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """S2.9 closing copies are never skipped for age; the start's S3 reconciliation and the
    completion together close F2 once, never past flat."""
    rig = make_engine(tmp_path)
    rig.trade("LEAD", 2)
    assert rig.broker_position("F2") == 2
    rig.broker.trade("LEAD", ES, -2)
    run_until(rig, placing_on("f2"))
    rig.clock.advance(timedelta(seconds=60))
    rig.restart()
    rig.idle()
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (0, 0)
    assert_nothing_placed_twice(rig)


def test_a_group_recreated_under_the_same_id_completes_nothing_of_the_old_one(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """S2.9: a fill logged for the deleted g1 is not the new g1's, though F2 is a member of
    both: the new group joined after the fill, so the restart completes nothing toward it."""
    rig = make_engine(tmp_path)
    rig.broker.trade("LEAD", ES, 1)
    run_until(rig, offer_to("F2"))  # logged, and F2 has not decided on it
    rig.engine.delete_group("g1")
    rig.engine.add_group("g1", "LEAD", [member("F2")])
    rig.restart()
    rig.idle()
    assert rig.broker_position("F2") == 0
    assert copies(rig, "F2") == []
    assert_nothing_placed_twice(rig)


def test_no_completion_when_the_leader_traded_while_the_engine_was_down(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """S2.1: the leader's sell while the engine was down is never fanned out, and the buy
    before it is not completed either: the leader is flat now, S3 brings F1 back to flat."""
    rig = make_engine(tmp_path)
    rig.broker.trade("LEAD", ES, 1)
    run_until(rig, placing_on("f2"))
    rig.engine.stop()
    rig.broker.trade("LEAD", ES, -1)  # nobody is listening
    rig.restart()
    rig.idle()
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (0, 0)
    warnings = rig.messages("LEAD", "skip")
    assert any("not completed after the restart" in m for m in warnings), warnings


def test_an_order_the_broker_never_received_is_sent_again_under_the_next_attempt(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """S2.6: F2's copy was in the intent log when the process died; the request never left
    it. After the restart the broker's order list lacks it: the copy is decided again and sent
    as attempt 2 — a new client order id, as the first never existed at the broker."""
    rig = make_engine(tmp_path)
    rig.broker.trade("LEAD", ES, 1)
    run_until(rig, placing_on("f2"))
    lost: list[OrderRequest] = []
    session = rig.engine.sessions["f2"]
    session.place_order = lost.append  # type: ignore[method-assign]  # the request never leaves
    rig.engine.runtime.wait_idle()
    assert len(lost) == 1
    (first,) = rig.orders("F2", "copy")
    assert first["status"] == "sent"
    rig.restart()
    rig.idle()
    assert rig.broker_position("F2") == 1
    rows = rig.orders("F2", "copy")
    assert [(r["client_order_id"][-2:], r["status"]) for r in rows] == [
        ("-1", "not_received"),
        ("-2", "filled"),
    ]
    assert rows[0]["client_order_id"][:-2] == rows[1]["client_order_id"][:-2]
    assert_nothing_placed_twice(rig)


def test_an_order_working_at_the_broker_is_resolved_not_resent(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(tmp_path)
    rig.broker.hold("f2")
    rig.trade("LEAD", 1)
    rig.restart()
    rig.idle()
    assert [r["status"] for r in rig.orders("F2", "copy")] == ["working"]
    rig.broker.release("f2")
    rig.idle()
    assert rig.broker_position("F2") == 1
    assert [r["status"] for r in rig.orders("F2", "copy")] == ["filled"]
    assert_nothing_placed_twice(rig)


# --- any crash point ------------------------------------------------------------------------------


def _rig(data: Path, terms: list[tuple[str, int | None]], shared: bool) -> Rig:
    """A leader and a follower per ``terms`` (ratio, max_qty), on one login or their own."""
    clock = VirtualClock(START)
    contracts = ContractTable()
    broker = PaperBroker(clock, contracts)
    store = Store(data / "engine.sqlite")
    engine = Engine(store=store, clock=clock, brokers={"paper": broker}, contracts=contracts)
    followers = [f"F{n}" for n in range(1, len(terms) + 1)]
    logins = {f: "fol" if shared else f.lower() for f in followers}
    connections = ["lead", *sorted(set(logins.values()))]
    accounts = [AccountConfig("LEAD", "lead")] + [AccountConfig(f, logins[f]) for f in followers]
    members = [
        member(f, ratio, max_qty) for f, (ratio, max_qty) in zip(followers, terms, strict=True)
    ]
    engine.seed(
        [ConnectionConfig(c) for c in connections], accounts, [GroupConfig("g1", "LEAD", members)]
    )
    for c in connections:
        broker.add_accounts(c, tuple(a.id for a in accounts if a.connection == c))
    broker.set_price(ES, PRICES[ES])
    engine.start(reconcile=False)
    engine.wait_idle()
    return Rig(engine, broker, clock, store, "deterministic")


@given(
    terms=st.lists(
        st.tuples(st.sampled_from(["0.5", "1", "1.5", "2"]), st.sampled_from([None, 1, 2, 3])),
        min_size=1,
        max_size=3,
    ),
    shared=st.booleans(),
    trades=st.lists(st.integers(-3, 3).filter(bool), min_size=1, max_size=4),
    cut=st.integers(0, 120),
)
@property_settings(max_examples=scaled(40))
def test_a_crash_anywhere_in_a_fan_out_then_a_prompt_restart_ends_as_without_the_crash(
    terms: list[tuple[str, int | None]], shared: bool, trades: list[int], cut: int
) -> None:
    """S2.9 with S2.6 and S3: the fan-out of the leader's last fill is cut short ``cut``
    messages after the leader's account applied the fill — anywhere: before the group,
    between followers, between a gate and its order, after some orders filled — and the engine
    restarts within ``max_copy_age``. Every follower ends where the run without a crash leaves
    it, and no client order id reached the broker twice."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("reference", "crashed"):
            Path(tmp, name).mkdir()
        reference = _rig(Path(tmp, "reference"), terms, shared)
        crashed = _rig(Path(tmp, "crashed"), terms, shared)
        rigs = (reference, crashed)
        try:
            for qty in trades[:-1]:
                for rig in rigs:
                    rig.trade("LEAD", qty)
            reference.trade("LEAD", trades[-1])
            crashed.broker.trade("LEAD", ES, trades[-1])
            # The fan-out starts when the leader's account applies the fill; a fill still
            # queued at the crash is one the engine never saw (S2.1, S3 reconciles it).
            run_until(
                crashed, lambda to, m: to == addresses.account("LEAD") and isinstance(m, Fill)
            )
            runtime = crashed.engine.runtime
            assert isinstance(runtime, DeterministicRuntime)
            for _ in range(cut + 1):
                if not runtime.step():
                    break
            crashed.restart()
            crashed.idle()
            followers = [f"F{n}" for n in range(1, len(terms) + 1)]
            expected = {f: reference.broker_position(f) for f in followers}
            assert {f: crashed.broker_position(f) for f in followers} == expected
            assert_nothing_placed_twice(crashed)
        finally:
            for rig in rigs:
                rig.close()
