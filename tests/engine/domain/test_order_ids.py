"""S2.6: client order ids are derived deterministically from the cause, account, contract and
attempt, and name their kind in their first letter."""

from __future__ import annotations

import pytest

from engine.domain.order_ids import OrderKind, attempt_of, client_order_id, kind_of

ARGS = ("LEAD:X1", "F1", "ESZ6")


def test_s2_6_same_cause_account_contract_and_attempt_give_the_same_id() -> None:
    first = client_order_id(OrderKind.COPY, *ARGS, 1)
    assert first == client_order_id(OrderKind.COPY, *ARGS, 1)
    # a fixed value: the id must not depend on the process (hash seeds, time, counters)
    assert first == client_order_id(OrderKind.COPY, "LEAD:X1", "F1", "ESZ6", 1)
    assert first.endswith("-1")


@pytest.mark.parametrize(
    "changed",
    [
        ("LEAD:X2", "F1", "ESZ6", 1),
        ("LEAD:X1", "F2", "ESZ6", 1),
        ("LEAD:X1", "F1", "NQZ6", 1),
        ("LEAD:X1", "F1", "ESZ6", 2),
    ],
)
def test_s2_6_any_change_of_cause_account_contract_or_attempt_changes_the_id(
    changed: tuple[str, str, str, int],
) -> None:
    assert client_order_id(OrderKind.COPY, *changed) != client_order_id(OrderKind.COPY, *ARGS, 1)


def test_s2_6_the_fields_are_not_ambiguous_when_concatenated() -> None:
    a = client_order_id(OrderKind.COPY, "a", "bc", "ESZ6", 1)
    b = client_order_id(OrderKind.COPY, "ab", "c", "ESZ6", 1)
    assert a != b


@pytest.mark.parametrize("kind", list(OrderKind))
def test_s2_6_the_first_letter_names_the_kind(kind: OrderKind) -> None:
    coid = client_order_id(kind, *ARGS, 3)
    assert coid[0] == kind.value
    assert kind_of(coid) is kind
    assert attempt_of(coid) == 3


def test_s2_6_the_same_cause_of_another_kind_is_another_id() -> None:
    ids = {client_order_id(kind, *ARGS, 1) for kind in OrderKind}
    assert len(ids) == len(OrderKind)


@pytest.mark.parametrize("text", [None, "", "Z123-1", "manual", "c123-1"])
def test_kind_of_an_id_the_engine_did_not_make_is_none(text: str | None) -> None:
    assert kind_of(text) is None


def test_attempt_of_reads_the_suffix() -> None:
    coid = client_order_id(OrderKind.LIQUIDATE, "flatten:1", "A-1", "ESZ6", 12)
    assert attempt_of(coid) == 12
