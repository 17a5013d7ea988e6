"""Every fill an account's book takes is written once to the fills table (S10.5): a leader's, its
followers' copies, a liquidation's, the owner's own trades — with the engine's order it filled
and the commission charged (S9.1) — and a fill the broker reports again, after a restart too,
is not written twice."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from actors import addresses
from brokers.base import Fill
from tests.conftest import ES, MakeEngine, Rig


def fills(rig: Rig, account: str | None = None) -> list[tuple[str, int, str, str, str | None]]:
    where, params = (" WHERE account = ?", (account,)) if account else ("", ())
    rows = rig.rows(
        f"SELECT account, qty, price, fill_id, client_order_id FROM fills{where} ORDER BY seq",
        params,
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_s10_5_a_leader_fill_and_its_copies_are_written_once_each(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.price(ES, Decimal("5000.25"))
    rig.trade("LEAD", 2)
    rows = fills(rig)
    assert sorted(r[0] for r in rows) == ["F1", "F2", "LEAD"]
    leader = [r for r in rows if r[0] == "LEAD"]
    assert [(r[1], r[2], r[4]) for r in leader] == [(2, "5000.25", None)]
    copies = {r["account"]: r["client_order_id"] for r in rig.orders(kind="copy")}
    for follower in ("F1", "F2"):
        (row,) = fills(rig, follower)
        assert row[1] == 2 and row[4] == copies[follower]
    times = rig.rows("SELECT time FROM fills ORDER BY seq")
    assert all(t["time"] == rig.clock.now().isoformat() for t in times)


def test_s10_5_fills_are_written_once_across_a_restart(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.trade("LEAD", 1)
    (lead,) = rig.rows("SELECT * FROM fills WHERE account = 'LEAD'")
    rig.restart()
    rig.trade("LEAD", 1)
    assert [r[0] for r in fills(rig, "LEAD")] == ["LEAD", "LEAD"]
    assert [r[1] for r in fills(rig, "F1")] == [1, 1]
    # The broker reports the first fill again to the new engine: it is not written twice.
    again = Fill(
        lead["connection"], "LEAD", lead["fill_id"], "B-again", None, ES, 1,
        Decimal(lead["price"]), rig.clock.now(), True,
    )  # fmt: skip
    rig.tell(addresses.account("LEAD"), again)
    rig.tell(addresses.account("LEAD"), replace(again, broker_order_id="B-again-2"))
    assert len(fills(rig, "LEAD")) == 2
    assert len(fills(rig)) == 6


def test_s10_5_the_owners_trades_and_a_liquidation_are_written_with_their_commission(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(tmp_path, runtime)
    rig.engine.set_risk("F1", {"commission": Decimal("2.5")})
    rig.idle()
    rig.trade("F1", 3)  # the owner's own trade at the broker
    rig.engine.flatten_account("F1")
    rig.idle()
    rows = rig.rows("SELECT qty, client_order_id, commission FROM fills WHERE account = 'F1'")
    written = [(r["qty"], (r["client_order_id"] or "-")[0], r["commission"]) for r in rows]
    assert written == [(3, "-", "7.5"), (-3, "L", "7.5")]  # the trade, then its liquidation
