"""RiskActor through the real engine: the S5.4 / S5.5 gate, manual lock and unlock (S5.7), the
flatten and its retries (S5.3, S5.6), and flatten commands that change no status (S6). Its
``OK → LIQUIDATE_ONLY → LOCKED`` table is walked pair by pair in
tests/engine/domain/test_risk_status.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from actors import addresses
from actors.messages.account import SendBook
from engine.core.topology import AccountConfig, GroupConfig
from engine.domain.gate import LIQUIDATE_ONLY_TEXT, LOCKED_TEXT
from engine.domain.risk_status import LockReason, RiskStatus
from tests.conftest import ES, NQ, MakeEngine, Rig, member

D = Decimal


def test_s5_gate_texts_are_exact() -> None:
    assert LIQUIDATE_ONLY_TEXT == "Account is in LIQUIDATE_ONLY mode — only closing trades allowed."
    assert LOCKED_TEXT == "Account is LOCKED — no trades allowed."


# --- helpers --------------------------------------------------------------------------------------


def rig_for(make_engine: MakeEngine, tmp_path: Path, runtime: str = "deterministic") -> Rig:
    """LEAD (login lead) → F1 (login f1), F2 (login f2)."""
    return make_engine(tmp_path, runtime)


def reason(rig: Rig, account: str) -> LockReason:
    view = rig.engine.risk_view(account)
    assert view is not None
    return view.lock_reason


def flattening(rig: Rig, account: str) -> bool:
    view = rig.engine.risk_view(account)
    assert view is not None
    return view.flattening


def disable_reason(rig: Rig, account: str) -> str:
    view = rig.engine.group_view("g1")
    assert view is not None
    return next(m.disable_reason for m in view.members if m.account == account)


def liquidating_f1(make_engine: MakeEngine, tmp_path: Path, runtime: str, rejects: int = 1) -> Rig:
    """F1 long 2 by copy, then locked while its broker rejects the liquidation ``rejects``
    times: F1 is LIQUIDATE_ONLY, its flatten backing off."""
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    assert rig.position("F1") == 2
    rig.broker.reject_next("f1", rejects)
    rig.engine.lock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    return rig


# --- real path, pair by pair ----------------------------------------------------------------------


def test_s5_7_ok_lock_flat_locks_at_once(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.engine.lock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LOCKED
    assert reason(rig, "F1") is LockReason.MANUAL
    assert not flattening(rig, "F1")
    locks = rig.activity("F1", "lock")
    assert [r["level"] for r in locks] == ["warning"]
    assert disable_reason(rig, "F1")  # S5.3 step 3
    assert rig.orders("F1") == []  # nothing to liquidate


def test_s5_7_ok_lock_open_flattens_then_locks(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.trade("F1", 1, NQ)  # a second contract of its own
    rig.engine.lock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LOCKED  # OK → LIQUIDATE_ONLY → (flat) LOCKED
    assert reason(rig, "F1") is LockReason.MANUAL
    assert rig.broker.positions("F1") == {}
    view = rig.engine.account_view("F1")
    assert view is not None
    assert view.positions == {}
    rows = rig.orders("F1", "liquidation")
    assert sorted(r["symbol"] for r in rows) == [ES, NQ]  # one liquidation per contract
    assert all(r["client_order_id"].startswith("L") for r in rows)
    assert all(r["status"] == "filled" for r in rows)
    assert any("flatten complete" in m for m in rig.messages("F1", "flatten"))
    assert rig.status("F2") is RiskStatus.OK


def test_s5_3_liquidate_only_is_observable_while_the_flatten_is_in_flight(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 1)
    rig.broker.hold("f1")
    rig.engine.lock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    assert flattening(rig, "F1")
    rig.broker.release("f1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LOCKED
    assert not flattening(rig, "F1")


def test_s5_7_locked_unlock_restores_ok_and_copying(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.engine.lock("F1")
    rig.idle()
    rig.engine.unlock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.OK
    assert reason(rig, "F1") is LockReason.NONE
    assert disable_reason(rig, "F1") == ""
    assert len(rig.activity("F1", "unlock")) == 1
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 1


def test_s5_7_ok_unlock_changes_nothing(make_engine: MakeEngine, tmp_path: Path) -> None:
    rig = rig_for(make_engine, tmp_path)
    rig.engine.unlock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.OK
    assert rig.activity("F1", "unlock") == []


def test_s5_7_locked_lock_again_stays_locked_and_manual(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = rig_for(make_engine, tmp_path)
    rig.engine.lock("F1")
    rig.engine.lock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LOCKED
    assert reason(rig, "F1") is LockReason.MANUAL
    assert rig.orders("F1") == []


def test_s5_7_liquidating_lock_again_stays_liquidate_only(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = liquidating_f1(make_engine, tmp_path, runtime)
    rig.engine.lock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    assert reason(rig, "F1") is LockReason.MANUAL
    rig.advance(1)
    assert rig.status("F1") is RiskStatus.LOCKED


def test_s5_7_liquidating_unlock_is_ok_once_flat(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = liquidating_f1(make_engine, tmp_path, runtime)
    rig.engine.unlock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY  # still liquidating
    assert reason(rig, "F1") is LockReason.NONE
    rig.advance(1)  # the retry flattens
    assert rig.position("F1") == 0
    assert rig.status("F1") is RiskStatus.OK  # FLAT_CLEARED
    assert disable_reason(rig, "F1") == ""


# --- the gate (S5.4, S5.5) ------------------------------------------------------------------------


def test_s5_5_locked_rejects_every_copy_with_the_exact_text(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.engine.lock("F1")
    rig.idle()
    rig.trade("LEAD", 1)
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 0
    assert rig.position("F2") == 2
    rejections = rig.activity("F1", "rejection")
    assert len(rejections) == 2
    for row in rejections:
        assert row["message"].endswith(": " + LOCKED_TEXT)
        assert row["level"] == "warning"
    assert rig.orders("F1") == []  # nothing reached the broker


def test_s5_4_liquidate_only_rejects_opening_with_the_exact_text(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = liquidating_f1(make_engine, tmp_path, runtime)
    orders = len(rig.orders("F1"))
    rig.trade("LEAD", 1, NQ)  # opens exposure in another contract
    assert rig.position("F1", NQ) == 0
    assert rig.position("F2", NQ) == 1
    rejections = rig.messages("F1", "rejection")
    assert any(m.endswith(": " + LIQUIDATE_ONLY_TEXT) for m in rejections)
    assert len(rig.orders("F1")) == orders


def test_s5_4_liquidate_only_allows_a_closing_copy(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = liquidating_f1(make_engine, tmp_path, runtime)
    rig.trade("LEAD", -1)  # reduces: allowed
    assert rig.position("F1") == 1
    assert not any(LIQUIDATE_ONLY_TEXT in m for m in rig.messages("F1", "rejection"))


def test_s5_4_liquidate_only_clips_a_crossing_copy_at_zero(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = liquidating_f1(make_engine, tmp_path, runtime)
    rig.trade("LEAD", -5)  # 2 → −3: the copy −5 would flip F1 to −3
    assert rig.position("F1") == 0  # clipped to the closing −2
    clipped = [m for m in rig.messages("F1", "copy") if "clipped" in m]
    assert len(clipped) == 1
    assert "-5" in clipped[0]
    assert "-2" in clipped[0]
    rig.advance(1)
    assert rig.status("F1") is RiskStatus.LOCKED
    assert rig.position("F1") == 0


def test_s5_5_a_manual_trade_on_a_locked_account_is_flattened_at_once(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.engine.lock("F1")
    rig.idle()
    rig.trade("F1", 3)  # by hand, at the broker
    assert rig.position("F1") == 0
    assert rig.broker_position("F1") == 0
    assert rig.status("F1") is RiskStatus.LOCKED
    flattened = rig.activity("F1", "manual_trade_flattened")
    assert [r["level"] for r in flattened] == ["warning"]


# --- S5.6: retries --------------------------------------------------------------------------------


def test_s5_6_a_rejected_liquidation_is_retried_after_1_2_4_seconds(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    start = rig.clock.now()
    rig.broker.reject_next("f1", 3)
    rig.engine.lock("F1")
    rig.idle()

    def attempts() -> int:
        return len(rig.orders("F1", "liquidation"))

    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    assert attempts() == 1
    failed = rig.activity("F1", "flatten_failed")
    assert [r["level"] for r in failed] == ["error"]
    assert "retrying in 1 s" in failed[0]["message"]
    rig.advance(0.9)
    assert attempts() == 1
    rig.advance(0.1)  # t = 1 s
    assert attempts() == 2
    assert "retrying in 2 s" in rig.messages("F1", "flatten_failed")[-1]
    rig.advance(1.9)
    assert attempts() == 2
    rig.advance(0.1)  # t = 3 s
    assert attempts() == 3
    assert "retrying in 4 s" in rig.messages("F1", "flatten_failed")[-1]
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY  # stays LIQUIDATE_ONLY while failing
    rig.advance(4)  # t = 7 s: the fourth attempt fills
    assert attempts() == 4
    assert rig.position("F1") == rig.broker_position("F1") == 0
    assert rig.status("F1") is RiskStatus.LOCKED
    rows = rig.orders("F1", "liquidation")
    assert [r["status"] for r in rows] == ["rejected", "rejected", "rejected", "filled"]
    assert [r["created_at"] for r in rows] == [
        (start + timedelta(seconds=s)).isoformat() for s in (0, 1, 3, 7)
    ]
    assert [r["client_order_id"].rsplit("-", 1)[1] for r in rows] == ["1", "2", "3", "4"]


def test_s5_6_a_flatten_waits_for_the_connection_and_goes_out_when_it_returns(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 1)
    rig.broker.drop("f1")
    rig.idle()
    rig.engine.lock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    assert rig.orders("F1", "liquidation") == []
    rig.advance(30)
    assert rig.broker_position("F1") == 1  # nothing sent while down
    rig.engine.reconnect("f1")
    rig.idle()
    assert rig.broker_position("F1") == 0
    assert rig.status("F1") is RiskStatus.LOCKED


def test_s3_5_a_flatten_on_an_unconfirmed_book_liquidates_once_and_waits_for_the_answer(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    """The broker finds nothing to liquidate, while the book it has not confirmed still shows a
    position: that is unknown, not flat, and no reason to liquidate again and again (S3.5)."""
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.broker.drop("f1")
    rig.idle()
    rig.broker.trade("F1", ES, -2)  # closed by hand while down: the engine never hears of it
    rig.engine.lock("F1")
    rig.idle()
    rig.broker.fail_snapshot("f1", 2)
    rig.engine.reconnect("f1")  # the flatten goes out at once (S5.6); the answer is unknown
    rig.idle()
    assert [r["reason"] for r in rig.orders("F1", "liquidation")] == ["nothing to liquidate"]
    assert (
        rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    )  # not called flat on an unconfirmed book either
    assert flattening(rig, "F1")
    rig.advance(1)
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    rig.advance(2)  # the answer: flat, so LOCKED, without another liquidation
    assert rig.status("F1") is RiskStatus.LOCKED
    assert len(rig.orders("F1", "liquidation")) == 1
    assert rig.broker_position("F1") == 0


# --- S6: flatten commands -------------------------------------------------------------------------


def test_s6_flatten_account_changes_no_status(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.trade("F1", 2)
    rig.trade("F1", -1, NQ)
    stop = rig.broker.place_manual_working("F1", ES, -2)
    rig.idle()
    rig.engine.flatten_account("F1")
    rig.idle()
    assert rig.broker.positions("F1") == {}
    assert stop not in [w.broker_order_id for w in rig.broker.working_orders("F1")]
    assert rig.broker.working_orders("F1") == []  # cancels every working order
    assert rig.status("F1") is RiskStatus.OK
    assert reason(rig, "F1") is LockReason.NONE
    assert not flattening(rig, "F1")
    assert disable_reason(rig, "F1") == ""
    assert rig.activity("F1", "lock") == []
    assert len(rig.orders("F1", "liquidation")) == 2


def test_s6_flatten_group_flattens_leader_and_followers_without_flipping_anyone(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.engine.flatten_group("g1")
    rig.idle()
    for account in ("LEAD", "F1", "F2"):
        assert rig.position(account) == 0, account
        assert rig.broker_position(account) == 0, account
        assert rig.status(account) is RiskStatus.OK


def test_s6_flatten_group_with_a_held_follower_does_not_flip_it(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.broker.hold("f1")  # F1's liquidation stays working while the leader's fill fans out
    rig.engine.flatten_group("g1")
    rig.idle()
    rig.broker.release("f1")
    rig.idle()
    for account in ("LEAD", "F1", "F2"):
        assert rig.broker_position(account) == 0, account
        assert rig.status(account) is RiskStatus.OK


def test_s6_flatten_all_flattens_every_account(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(
        tmp_path,
        runtime,
        connections=("a", "b"),
        accounts=(("LEAD", "a"), ("F1", "b"), ("SOLO", "b")),
        groups=(GroupConfig("g1", "LEAD", [member("F1")]),),
    )
    rig.trade("LEAD", 1)
    rig.trade("SOLO", -3, NQ)
    rig.engine.flatten_all()
    rig.idle()
    for account in ("LEAD", "F1", "SOLO"):
        assert rig.broker.positions(account) == {}, account
        assert rig.status(account) is RiskStatus.OK


def test_s6_flatten_of_a_flat_account_is_harmless(make_engine: MakeEngine, tmp_path: Path) -> None:
    rig = rig_for(make_engine, tmp_path)
    rig.engine.flatten_account("F2")
    rig.idle()
    assert rig.status("F2") is RiskStatus.OK
    assert not flattening(rig, "F2")
    assert rig.orders("F2") == []


# --- limits ---------------------------------------------------------------------------------------


def test_set_risk_updates_the_limits_in_the_actor_and_the_store(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = rig_for(make_engine, tmp_path)
    rig.engine.set_risk("F1", {"daily_loss_limit": D(5000)})
    rig.idle()
    view = rig.engine.risk_view("F1")
    assert view is not None
    assert view.limits.get("daily_loss_limit") == D(5000)
    rows = rig.rows("SELECT name, value FROM risk_limits WHERE account = 'F1'")
    assert [(r["name"], D(r["value"])) for r in rows] == [("daily_loss_limit", D(5000))]
    assert rig.status("F1") is RiskStatus.OK


# --- BREACH and RESET through the real path (S5.2, S5.3, S5.8) ------------------------------------

RESET_AT = datetime(2026, 1, 6, 23, 0, tzinfo=UTC)  # 17:00 in Chicago (CST) on a Tuesday


def breach_rig(make_engine: MakeEngine, tmp_path: Path, runtime: str, **limits: int) -> Rig:
    """LEAD → F1 (with ``limits``), F2; F1 long 1 ES at 5000 by copy."""
    rig = make_engine(
        tmp_path,
        runtime,
        accounts=(
            ("LEAD", "lead"),
            AccountConfig("F1", "f1", limits={k: D(v) for k, v in limits.items()}),
            ("F2", "f2"),
        ),
    )
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 1
    return rig


def test_s5_2_the_losing_side_of_a_band_is_the_connections_alarm_until_a_breach(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    """Decision 0030: F1 is long, so a price at its low breach price may breach and is told
    ahead of other work (the market's alarm for its connection); its high, a new high, is not.
    Once F1 breaches and its flatten is on the way, it is no alarm any more: it is evaluated
    again, but not ahead of everyone else."""
    rig = breach_rig(make_engine, tmp_path, runtime, daily_loss_limit=1000)
    low, high = rig.engine.market.alarm_of("f1", ES)
    assert (low, high) == (D(4980), None)  # 1,000 $ of one ES contract below 5000
    rig.broker.hold("f1")  # the flatten's liquidation waits at the broker
    rig.price(ES, 4979)
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    assert rig.engine.market.alarm_of("f1", ES) == (None, None)
    rig.broker.release("f1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LOCKED


def test_s5_3_ok_breach_flattens_and_locks_with_the_daily_reason(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = breach_rig(make_engine, tmp_path, runtime, daily_loss_limit=1000)
    rig.price(ES, 4980)  # −1000: daily_pnl ≤ −D
    assert rig.status("F1") is RiskStatus.LOCKED
    assert reason(rig, "F1") is LockReason.DAILY
    assert rig.broker_position("F1") == 0
    view = rig.engine.account_view("F1")
    assert view is not None
    assert view.positions == {}
    assert view.unrealized == 0
    assert view.realized_daily == D(-1000)  # the closing fill's real P&L (S5.3 step 4)
    breaches = rig.activity("F1", "breach")
    assert [r["level"] for r in breaches] == ["warning"]  # exactly one (step 5)
    assert disable_reason(rig, "F1")  # step 3
    assert rig.status("F2") is RiskStatus.OK  # F2 has no limits
    assert rig.status("LEAD") is RiskStatus.OK


def test_s5_2_a_lower_limit_on_the_same_position_moves_the_breach_prices_at_once(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    """The breach prices are made again when the limits change, whatever else stands still:
    F1's position, its price and its figures are as they were, and the next tick past the new
    limit breaches."""
    rig = breach_rig(make_engine, tmp_path, runtime, daily_loss_limit=1000)
    rig.price(ES, 4985)  # −750: within 1000
    assert rig.status("F1") is RiskStatus.OK
    rig.engine.set_risk("F1", {"daily_loss_limit": D(2000)})
    rig.idle()
    rig.engine.set_risk("F1", {"daily_loss_limit": D(800)})
    rig.idle()
    assert rig.status("F1") is RiskStatus.OK  # −750: within 800 still
    rig.price(ES, 4984)  # −800
    assert rig.status("F1") is RiskStatus.LOCKED
    assert reason(rig, "F1") is LockReason.DAILY


def test_s5_2_the_same_book_at_a_new_price_gets_breach_prices_made_at_that_price(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    """F1's book told again unchanged (its positions, figures and limits as they were) after a
    tick that crossed no breach price: the breach prices are made at the prices now, not kept
    from the last ones. The room left before the limit is shared by the two contracts held, so
    ES's move changes NQ's."""
    rig = breach_rig(make_engine, tmp_path, runtime, daily_loss_limit=1000)
    rig.price(NQ, 20000)
    rig.trade("LEAD", 1, NQ)
    assert rig.position("F1", NQ) == 1
    rig.price(ES, 4995)  # −250 of ES: within its breach prices, nothing is evaluated
    rig.tell(addresses.account("F1"), SendBook())
    bands = rig.engine.runtime.inspect(addresses.risk("F1"), lambda risk: dict(risk.bands))
    assert bands[NQ][0] == D("19981.25")  # (1000 − 250) / 2 = 375 $ of NQ's 20 $ a point


def test_s5_2_a_spike_that_comes_back_still_breaches(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = breach_rig(make_engine, tmp_path, runtime, daily_loss_limit=1000)
    rig.broker.hold("f1")  # so the flatten's fill comes at the price after the spike
    rig.broker.set_price(ES, D(4979))
    rig.broker.set_price(ES, D(5000))
    rig.idle()
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    rig.broker.release("f1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LOCKED
    assert rig.broker_position("F1") == 0


def test_s5_2_a_weekly_breach_during_a_daily_lock_makes_it_weekly(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = breach_rig(make_engine, tmp_path, runtime, daily_loss_limit=1000, weekly_loss_limit=1500)
    rig.broker.hold("f1")
    rig.price(ES, 4980)  # daily breach at −1000
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    assert reason(rig, "F1") is LockReason.DAILY
    rig.price(ES, 4960)  # −2000 before the flatten fills
    rig.broker.release("f1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LOCKED
    assert reason(rig, "F1") is LockReason.WEEKLY  # escalated, never weakened


def test_s5_8_locked_reset_clears_a_daily_lock(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = breach_rig(make_engine, tmp_path, runtime, daily_loss_limit=1000)
    rig.price(ES, 4980)
    assert rig.status("F1") is RiskStatus.LOCKED
    rig.engine.advance_to(RESET_AT - timedelta(seconds=1))
    assert rig.status("F1") is RiskStatus.LOCKED
    rig.engine.advance_to(RESET_AT)
    assert rig.status("F1") is RiskStatus.OK  # (LOCKED, reset) → OK
    assert reason(rig, "F1") is LockReason.NONE
    assert disable_reason(rig, "F1") == ""
    view = rig.engine.account_view("F1")
    assert view is not None
    assert view.balance == D(49000)  # balance += realized_daily
    assert view.realized_daily == 0
    assert len(rig.activity("F1", "reset")) >= 1


def test_s5_8_a_reset_never_interrupts_a_liquidation(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = breach_rig(make_engine, tmp_path, runtime, daily_loss_limit=1000)
    rig.broker.hold("f1")
    rig.price(ES, 4980)
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    rig.engine.advance_to(RESET_AT)
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY  # (LIQUIDATE_ONLY, reset) → LIQUIDATE_ONLY
    rig.broker.release("f1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.OK  # its reason was cleared: OK once flat, not LOCKED


def test_s5_8_manual_locks_survive_resets(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.engine.lock("F1")
    rig.idle()
    rig.engine.advance_to(RESET_AT + timedelta(days=7))  # daily and weekly resets
    assert rig.status("F1") is RiskStatus.LOCKED
    assert reason(rig, "F1") is LockReason.MANUAL
    assert rig.status("F2") is RiskStatus.OK  # (OK, reset) → OK


def test_s5_7_unlock_keeps_the_trigger_off_until_the_limit_is_set_again(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = breach_rig(make_engine, tmp_path, runtime, daily_loss_limit=1000)
    rig.price(ES, 4980)
    assert rig.status("F1") is RiskStatus.LOCKED
    rig.engine.unlock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.OK
    view = rig.engine.account_view("F1")
    assert view is not None
    assert view.realized_daily == D(-1000)  # unlocking changes no P&L figure
    rig.trade("LEAD", 1)  # copying resumes: F1 +1 at 4980
    assert rig.position("F1") == 1
    rig.price(ES, 4970)  # daily_pnl −1500: the limit that locked it is off
    assert rig.status("F1") is RiskStatus.OK
    rig.engine.set_risk("F1", {"daily_loss_limit": D(1000)})  # re-armed
    rig.idle()
    rig.price(ES, 4969)
    assert rig.status("F1") is RiskStatus.LOCKED
    assert rig.broker_position("F1") == 0


def test_s5_4_a_closing_copy_against_a_flatten_in_flight_sends_nothing_and_is_no_rejection(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.broker.hold("f1")
    rig.engine.lock("F1")  # the liquidation stays working
    rig.idle()
    assert rig.status("F1") is RiskStatus.LIQUIDATE_ONLY
    copies = len(rig.orders("F1", "copy"))
    rig.trade("LEAD", -1)
    # P counts the working liquidation as flat, so the exit sends nothing (or is clipped to
    # nothing at the gate): never a rejection, never a second closing order
    assert rig.activity("F1", "rejection") == []
    assert len(rig.orders("F1", "copy")) == copies
    rig.broker.release("f1")
    rig.idle()
    assert rig.broker_position("F1") == 0  # flat, never through zero
    assert rig.status("F1") is RiskStatus.LOCKED


def test_s7_2_a_restart_brings_back_statuses_reasons_and_disabled_memberships(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = rig_for(make_engine, tmp_path)
    rig.trade("LEAD", 1)
    rig.engine.lock("F1")
    rig.idle()
    assert rig.status("F1") is RiskStatus.LOCKED
    reason_before = disable_reason(rig, "F1")
    rig.restart(reconcile=True)
    assert rig.status("F1") is RiskStatus.LOCKED
    assert reason(rig, "F1") is LockReason.MANUAL
    assert disable_reason(rig, "F1") == reason_before
    assert rig.position("F2") == 1
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 0  # still locked after the restart
    assert rig.position("F2") == 2


def test_s3_2_reconciliation_sends_nothing_while_a_flatten_is_in_flight(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = rig_for(make_engine, tmp_path)
    rig.trade("F1", 3)  # more than the leader's 0
    rig.broker.hold("f1")
    rig.engine.flatten_account("F1")
    rig.idle()
    rig.broker.drop("f1")
    rig.idle()
    rig.engine.reconnect("f1")
    rig.idle()
    records = rig.reconciliations("F1")
    assert len(records) == 1
    assert records[0]["orders"] == "{}"  # the flatten covers it
    rig.broker.release("f1")
    rig.idle()
    assert rig.broker_position("F1") == 0
    assert rig.orders("F1", "reconciliation") == []


def test_s5_3_a_leaders_breach_flatten_fans_out_to_its_followers(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(
        tmp_path,
        runtime,
        accounts=(
            AccountConfig("LEAD", "lead", limits={"daily_loss_limit": D(1000)}),
            ("F1", "f1"),
            ("F2", "f2"),
        ),
    )
    rig.trade("LEAD", 1)
    rig.price(ES, 4980)
    assert rig.status("LEAD") is RiskStatus.LOCKED
    for account in ("LEAD", "F1", "F2"):
        assert rig.broker_position(account) == 0, account
    assert rig.status("F1") is rig.status("F2") is RiskStatus.OK
