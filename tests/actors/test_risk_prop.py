"""The prop-firm rules (S9) through the real engine: commissions charged by the account's book
(S9.1), max contracts in the gate and a manual excess reduced (S9.2), the account's max-loss
threshold (S9.3), the session close (S9.4), blackouts (S9.5) and consistency (S9.6), and what a
restart keeps of each. Each clause also has scenarios (scenarios/s9_*.toml) on both runtimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from engine.domain.risk_status import LockReason, RiskStatus
from engine.domain.sessions import Blackout
from tests.conftest import ES, MES, NQ, START, MakeEngine, Rig

D = Decimal
# START is Tuesday 2026-01-06 09:00 in Chicago (CST, UTC-6): its daily reset is 23:00 UTC.
RESET = datetime(2026, 1, 6, 23, 0, tzinfo=UTC)


def view(rig: Rig, account: str):  # type: ignore[no-untyped-def]
    found = rig.engine.risk_view(account)
    assert found is not None
    return found


def account(rig: Rig, name: str):  # type: ignore[no-untyped-def]
    found = rig.engine.account_view(name)
    assert found is not None
    return found


def until(rig: Rig, instant: datetime) -> None:
    rig.engine.advance_to(instant)
    rig.idle()


# --- S9.1 commissions -----------------------------------------------------------------------------


def test_s9_1_each_fill_is_charged_per_contract_and_the_roots_own_value_wins(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"commission": D("2.5"), "commissions": {"NQ": D("1.25")}})
    rig.idle()
    rig.trade("LEAD", 2)  # F1 buys 2 ES: 2 x 2.50
    rig.trade("F1", 1, NQ)  # a manual NQ: its root's own 1.25
    f1 = account(rig, "F1")
    assert f1.commissions == D("6.25")
    assert f1.realized_daily == D("-6.25")  # net of commissions, before any close
    assert account(rig, "F2").commissions == 0  # F2 has none


def test_s9_1_commissions_count_in_the_daily_loss_trigger(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"commission": D(5), "daily_loss_limit": D(20)})
    rig.idle()
    rig.trade("LEAD", 2)  # 10 charged
    assert rig.status("F1") is RiskStatus.OK
    rig.trade("LEAD", 2)  # 20 charged: daily P&L -20 at an unchanged price
    assert view(rig, "F1").lock_reason is LockReason.DAILY
    assert rig.status("F1") in (RiskStatus.LIQUIDATE_ONLY, RiskStatus.LOCKED)


# --- S9.2 max contracts ---------------------------------------------------------------------------


def test_s9_2_an_opening_copy_is_clipped_then_refused_with_the_exact_text(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"max_contracts": D(2)})
    rig.idle()
    rig.trade("LEAD", 3)
    assert rig.position("F1") == 2
    clipped = [m for m in rig.messages("F1", "copy") if "max contracts" in m]
    assert clipped and "1 cut" in clipped[0]
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 2
    assert any(
        "Order exceeds the account's max contracts (2)." in m
        for m in rig.messages("F1", "rejection")
    )
    rig.trade("LEAD", -3)  # closing always passes: toward t(1) = 1
    assert rig.position("F1") == 1
    assert rig.position("F2") == 1


def test_s9_2_micros_weigh_a_tenth(make_engine: MakeEngine, tmp_path: Path, runtime: str) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"max_contracts": D("1.5")})
    rig.idle()
    rig.trade("F1", 1)  # 1 ES: 1.0 in use
    rig.trade("LEAD", 8, MES)  # F1 may add 5 MES (0.5)
    assert rig.position("F1", MES) == 5
    assert view(rig, "F1").contracts_in_use == D("1.5")


def test_s9_2_a_manual_excess_is_reduced_in_its_symbol_and_lowering_reduces_nothing(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"max_contracts": D(2)})
    rig.idle()
    rig.trade("LEAD", 2)
    rig.trade("F1", 2, NQ)  # a manual trade: 4 in use
    rig.idle()
    assert rig.position("F1", NQ) == 0  # reduced by the fewest contracts, in NQ
    assert rig.position("F1") == 2
    warnings = rig.activity("F1", "max_contracts_exceeded")
    assert [r["level"] for r in warnings] == ["warning"]
    assert [r["qty"] for r in rig.orders("F1", "reduction")] == [-2]
    assert rig.status("F1") is RiskStatus.OK
    rig.engine.set_risk("F1", {"max_contracts": D(1)})  # lowering N reduces nothing
    rig.idle()
    assert rig.position("F1") == 2
    rig.trade("LEAD", 1)  # and nothing opens until within N
    assert rig.position("F1") == 2


# --- S9.3 the account's max loss ------------------------------------------------------------------


def test_s9_3_a_static_threshold_breach_locks_and_no_reset_clears_it(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"max_loss": D(500)})
    rig.idle()
    assert view(rig, "F1").threshold == D(49500)
    rig.trade("LEAD", 1)
    rig.price(ES, D(4995))  # -250
    rig.idle()
    assert view(rig, "F1").threshold == D(49500)
    rig.price(ES, D(4989))  # -550: equity 49,450
    rig.idle()
    assert view(rig, "F1").lock_reason is LockReason.ACCOUNT
    assert rig.status("F1") is RiskStatus.LOCKED
    until(rig, RESET + timedelta(minutes=1))  # a daily reset clears daily locks, not this one
    assert rig.status("F1") is RiskStatus.LOCKED
    rig.restart()
    rig.idle()
    assert rig.status("F1") is RiskStatus.LOCKED
    assert view(rig, "F1").lock_reason is LockReason.ACCOUNT
    rig.engine.unlock("F1")  # a manual unlock clears it; the trigger stays off
    rig.idle()
    assert rig.status("F1") is RiskStatus.OK
    assert view(rig, "F1").threshold == D(49500)  # still shown


def test_s9_3_an_intraday_trailing_threshold_follows_the_highest_equity_with_its_stop(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk(
        "F1", {"max_loss": D(1000), "max_loss_mode": "intraday_trailing", "max_loss_stop": D(0)}
    )
    rig.idle()
    rig.trade("LEAD", 1)
    rig.price(ES, D(5010))  # +500: peak 50,500, threshold 49,500 ... capped at 50,000
    rig.idle()
    assert view(rig, "F1").threshold == D(49500)
    rig.price(ES, D(5030))  # +1,500: threshold would be 50,500; the stop holds it at 50,000
    rig.idle()
    assert view(rig, "F1").threshold == D(50000)
    rig.price(ES, D(5000))  # back to 50,000: breach
    rig.idle()
    assert view(rig, "F1").lock_reason is LockReason.ACCOUNT


def test_s9_3_an_end_of_day_threshold_moves_only_at_the_daily_reset(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"max_loss": D(2000), "max_loss_mode": "eod_trailing"})
    rig.idle()
    rig.trade("LEAD", 1)
    rig.price(ES, D(5020))  # +1,000 intraday: nothing moves yet
    rig.idle()
    assert view(rig, "F1").threshold == D(48000)
    until(rig, RESET + timedelta(minutes=1))  # the balance after the mark is 51,000
    assert view(rig, "F1").threshold == D(49000)


# --- S9.4 the session close -----------------------------------------------------------------------


def test_s9_4_the_session_close_flattens_and_locks_until_the_daily_reset(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"flatten_at": "15:10"})
    rig.engine.set_risk("F2", {"flatten_at": "15:10"})
    rig.idle()
    rig.trade("F1", 1)  # F1 holds a position, F2 is flat
    close = datetime(2026, 1, 6, 21, 10, tzinfo=UTC)  # 15:10 CST
    assert view(rig, "F1").next_session_close == close
    until(rig, close)
    for name in ("F1", "F2"):
        assert rig.status(name) is RiskStatus.LOCKED
        assert view(rig, name).lock_reason is LockReason.SESSION_CLOSE
        assert [r["level"] for r in rig.activity(name, "session_close")] == ["warning"]
        assert rig.activity(name, "breach") == []
    assert rig.position("F1") == 0
    rig.restart()  # a session_close lock survives a restart
    rig.idle()
    assert rig.status("F1") is RiskStatus.LOCKED
    until(rig, RESET + timedelta(seconds=1))
    assert rig.status("F1") is RiskStatus.OK
    assert view(rig, "F1").lock_reason is LockReason.NONE


def test_s9_4_a_reset_missed_while_down_clears_the_session_close(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"flatten_at": "15:10"})
    rig.idle()
    until(rig, datetime(2026, 1, 6, 21, 11, tzinfo=UTC))
    assert view(rig, "F1").lock_reason is LockReason.SESSION_CLOSE

    def down() -> None:
        rig.clock.set(RESET + timedelta(hours=1))  # the reset passes while the engine is down

    rig.restart(stopped=down)
    rig.idle()
    assert rig.status("F1") is RiskStatus.OK


def test_s9_4_a_stronger_reason_is_kept_and_nothing_is_written(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"flatten_at": "15:10"})
    rig.engine.lock("F1")
    rig.idle()
    until(rig, datetime(2026, 1, 6, 21, 11, tzinfo=UTC))
    assert view(rig, "F1").lock_reason is LockReason.MANUAL
    assert rig.activity("F1", "session_close") == []


# --- S9.5 blackouts -------------------------------------------------------------------------------


def test_s9_5_a_block_account_refuses_opening_orders_inside_the_interval(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"blackout": "block"})
    rig.idle()
    rig.trade("LEAD", 1)
    start, end = START + timedelta(minutes=10), START + timedelta(minutes=26)
    rig.engine.add_blackout(Blackout(start, end, "CPI"))
    until(rig, start)
    rig.trade("LEAD", 1)
    text = "Opening orders are blocked until 09:26 CT (CPI)."
    assert any(text in m for m in rig.messages("F1", "rejection"))
    assert rig.position("F1") == 1
    assert rig.position("F2") == 2  # blackout "off"
    rig.trade("LEAD", -2)  # closing passes
    assert rig.position("F1") == 0
    until(rig, end)
    assert len(rig.activity("F1", "blackout")) == 2  # at the start and at the end
    rig.trade("LEAD", 1)
    assert rig.position("F1") == 1


def test_s9_5_a_flatten_account_is_flattened_at_the_start_without_a_status_change(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"blackout": "flatten"})
    rig.idle()
    rig.trade("LEAD", 2)
    start = START + timedelta(minutes=5)
    rig.engine.add_blackout(Blackout(start, start + timedelta(minutes=10), "FOMC"))
    until(rig, start)
    assert rig.position("F1") == 0
    assert rig.status("F1") is RiskStatus.OK
    assert rig.position("F2") == 2


# --- S9.6 consistency -----------------------------------------------------------------------------


def test_s9_6_the_consistency_warning_is_written_once_a_day(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"consistency_pct": D(40)})
    rig.idle()
    rig.trade("F1", 1)
    rig.trade("F1", -1)  # a flat day so far
    rig.trade("F1", 1)
    rig.price(ES, D(5010))
    rig.trade("F1", -1)  # +500, the only profit: 100 %
    rig.trade("F1", 1)
    rig.trade("F1", -1)
    assert [r["level"] for r in rig.activity("F1", "consistency")] == ["warning"]
    assert view(rig, "F1").best_day_share == D(1)
    assert rig.status("F1") is RiskStatus.OK  # reported only
