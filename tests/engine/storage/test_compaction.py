"""The intent, fan-out and status logs keep only what a restart still needs (decision 0013):
compacted at every start and while running, never losing a fan-out to complete, an order to
look up or a cause number used."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from actors import addresses
from brokers.base import Fill
from engine.host.deterministic import DeterministicRuntime
from engine.storage.fanouts import FILL, SETTLED
from engine.storage.frames import read_frames
from tests.conftest import ES, MakeEngine, Rig
from tests.engine.core.test_fanout_recovery import (
    _rig,
    assert_nothing_placed_twice,
    copies,
    placing_on,
    run_until,
)
from tests.properties.profiles import property_settings, scaled


def _frames(rig: Rig, suffix: str) -> list[object]:
    frames, _ = read_frames(rig.store.path.with_suffix(suffix))
    return frames


def _trade_back_and_forth(rig: Rig, times: int) -> None:
    for n in range(times):
        rig.trade("LEAD", 1 if n % 2 == 0 else -1)


def test_a_restart_leaves_the_logs_holding_only_what_is_still_open(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """Forty leader fills, every copy filled: after a restart the intent log is empty and the
    fan-out log holds the last fill of the leader's symbol with its followers' decisions —
    whatever the number of fills before. Before the compaction both grew with every order."""
    rig = make_engine(tmp_path)
    _trade_back_and_forth(rig, 40)
    assert len(_frames(rig, ".intents")) == 80
    rig.restart()
    rig.idle()
    assert _frames(rig, ".intents") == []
    fanouts = _frames(rig, ".fanouts")
    fills = [f for f in fanouts if f[0] == FILL]  # type: ignore[index]
    assert len(fills) == 1
    assert fills[0][3] == rig.broker.fill_ids("LEAD")[-1]  # type: ignore[index]
    settled = {tuple(f[1:]) for f in fanouts if f[0] == SETTLED}  # type: ignore[index]
    cause = f"LEAD:{fills[0][3]}"  # type: ignore[index]
    assert settled == {(cause, "F1"), (cause, "F2")}
    # The next fill after the restart is copied as ever, and nothing twice.
    rig.trade("LEAD", 1)
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (1, 1)
    assert_nothing_placed_twice(rig)


def test_a_compaction_while_running_keeps_a_fan_out_in_flight_for_the_restart(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """S2.9 across a compaction: F1's copy reached the broker, F2's not yet when the logs are
    compacted and the process dies. The restart still completes F2's copy and finds F1's."""
    rig = make_engine(tmp_path)
    _trade_back_and_forth(rig, 10)
    rig.broker.trade("LEAD", ES, 1)
    run_until(rig, placing_on("f2"))
    rig.engine.compact()
    assert len([f for f in _frames(rig, ".fanouts") if f[0] == FILL]) == 1  # type: ignore[index]
    rig.restart()
    rig.idle()
    assert (rig.broker_position("F1"), rig.broker_position("F2")) == (1, 1)
    assert_nothing_placed_twice(rig)
    assert copies(rig, "F2")[-1][1:] == (1, "filled")


def test_an_order_without_an_answer_stays_in_the_intent_log_and_is_looked_up(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """S2.6: F2's copy is working at the broker (no answer yet) through a compaction and a
    restart: it stays in the intent log, and the restart finds it at the broker."""
    rig = make_engine(tmp_path)
    _trade_back_and_forth(rig, 6)
    rig.broker.hold("f2")
    rig.trade("LEAD", 1)
    rig.engine.compact()
    (kept,) = _frames(rig, ".intents")
    assert kept[1] == "F2"  # type: ignore[index]
    rig.restart()
    rig.idle()
    assert [r["status"] for r in rig.orders("F2", "copy")][-1] == "working"
    rig.broker.release("f2")
    rig.idle()
    assert rig.broker_position("F2") == 1
    assert_nothing_placed_twice(rig)
    rig.restart()  # answered now: the start's compaction lets it go
    assert _frames(rig, ".intents") == []


def test_the_status_log_keeps_only_states_the_store_has_not_caught_up_with(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(tmp_path)
    for _ in range(5):
        rig.engine.lock("F1")
        rig.idle()
        rig.engine.unlock("F1")
        rig.idle()
    assert len(_frames(rig, ".status")) >= 10
    rig.store.flush()
    rig.engine.compact()
    assert _frames(rig, ".status") == []
    rig.engine.lock("F1")
    rig.idle()
    rig.restart()
    rig.idle()
    assert rig.status("F1").value != "OK"


@given(
    trades=st.lists(st.integers(-3, 3).filter(bool), min_size=2, max_size=5),
    cut=st.integers(0, 80),
    compact_at=st.integers(0, 80),
)
@property_settings(max_examples=scaled(25))
def test_a_compaction_anywhere_in_a_fan_out_then_a_crash_ends_as_without_either(
    trades: list[int], cut: int, compact_at: int
) -> None:
    """The fan-out of the leader's last fill is cut short ``cut`` messages in, the logs having
    been compacted ``compact_at`` messages in (before the cut, or not at all): every follower
    ends where the run without a crash leaves it, and no client order id reached the broker
    twice."""
    terms: list[tuple[str, int | None]] = [("1", None), ("2", 3)]
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("reference", "crashed"):
            Path(tmp, name).mkdir()
        reference = _rig(Path(tmp, "reference"), terms, False)
        crashed = _rig(Path(tmp, "crashed"), terms, False)
        try:
            for qty in trades[:-1]:
                for rig in (reference, crashed):
                    rig.trade("LEAD", qty)
            reference.trade("LEAD", trades[-1])
            crashed.broker.trade("LEAD", ES, trades[-1])
            run_until(
                crashed, lambda to, m: to == addresses.account("LEAD") and isinstance(m, Fill)
            )
            runtime = crashed.engine.runtime
            assert isinstance(runtime, DeterministicRuntime)
            for step in range(cut + 1):
                if step == compact_at:
                    crashed.engine.compact()
                if not runtime.step():
                    break
            crashed.restart()
            crashed.idle()
            expected = {f: reference.broker_position(f) for f in ("F1", "F2")}
            assert {f: crashed.broker_position(f) for f in ("F1", "F2")} == expected
            assert_nothing_placed_twice(crashed)
        finally:
            for rig in (reference, crashed):
                rig.close()
