"""A leader fill in the activity log (S7.1): the group writes one entry for it on the leader's
account (kind copy), and each follower entry it causes — the copy's fill, a skip, a gate's or
the broker's rejection — names it by the key its copy orders carry as their cause (S2.6)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from engine.core.topology import GroupConfig
from tests.conftest import ES, MakeEngine, Rig, member


def rig_of(make_engine: MakeEngine, tmp_path: Path, runtime: str) -> Rig:
    rig = make_engine(
        tmp_path,
        runtime,
        connections=("lead", "f1", "f2"),
        accounts=(("LEAD", "lead"), ("F1", "f1"), ("F2", "f2")),
        groups=(GroupConfig("g1", "LEAD", [member("F1"), member("F2")]),),
    )
    rig.price(ES, Decimal("5000.25"))
    return rig


def leader_fill_keys(rig: Rig) -> list[str]:
    return [r["cause"] for r in rig.orders(kind="copy") if r["account"] == "F1"]


def test_s7_1_one_leader_entry_per_leader_fill_and_every_copy_names_it(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_of(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    rig.trade("LEAD", -1)
    first, second = leader_fill_keys(rig)
    leader = rig.activity("LEAD")
    assert [(r["kind"], r["fill"]) for r in leader] == [("copy", first), ("copy", second)]
    fill_id = first.split(":", 1)[1]
    assert leader[0]["message"] == f"LEAD filled +2 {ES} at 5000.25 (fill {fill_id})"
    assert leader[0]["level"] == "info"
    for follower in ("F1", "F2"):
        copies = rig.activity(follower, kind="copy")
        assert [r["fill"] for r in copies] == [first, second]


def test_s7_1_the_fill_key_is_the_copy_orders_cause(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = rig_of(make_engine, tmp_path, "deterministic")
    rig.trade("LEAD", 1)
    (key,) = {r["cause"] for r in rig.orders(kind="copy")}
    rows = rig.rows("SELECT account, kind FROM activity WHERE fill = ? ORDER BY seq", (key,))
    assert [(r["account"], r["kind"]) for r in rows] == [
        ("LEAD", "copy"),
        ("F1", "copy"),
        ("F2", "copy"),
    ]


def test_s7_1_a_skip_and_a_gate_rejection_name_the_leader_fill(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_of(make_engine, tmp_path, runtime)
    rig.broker.drop("f1")  # F1 paused: its copy is skipped (S2.4)
    rig.idle()
    rig.engine.lock("F2")  # F2 locked: its copy is refused at the gate (S5.4)
    rig.idle()
    rig.trade("LEAD", 1)
    (key,) = {r["fill"] for r in rig.activity("LEAD") if r["kind"] == "copy"}
    assert key.startswith("LEAD:")
    skips = rig.activity("F1", kind="skip")
    assert [r["fill"] for r in skips] == [key]
    rejections = rig.activity("F2", kind="rejection")
    assert [r["fill"] for r in rejections] == [key]


def test_s7_1_a_broker_rejection_of_a_copy_names_the_leader_fill(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = rig_of(make_engine, tmp_path, "deterministic")
    rig.broker.reject_next("f1")
    rig.trade("LEAD", 1)
    (key,) = {r["fill"] for r in rig.activity("LEAD")}
    rejections = rig.activity("F1", kind="rejection")
    assert [r["fill"] for r in rejections] == [key]


def test_entries_not_caused_by_a_leader_fill_name_none(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = rig_of(make_engine, tmp_path, "deterministic")
    rig.trade("F1", 1)  # the follower's own trade: no leader fill behind it
    rig.engine.lock("F1")  # flattened by the risk actor
    rig.idle()
    rows = rig.activity("F1")
    assert rows
    assert all(r["fill"] is None for r in rows)
    assert rig.activity("LEAD") == []
