"""The engine's OAuth ``state`` values (S1.2): random, single-use, expiring, for one connection."""

from __future__ import annotations

from datetime import timedelta

import pytest

from brokers.clock import VirtualClock
from engine.app.authorizations import MAX_PENDING, OAuthStateError, OAuthStates, StateRefused
from engine.app.logs import SECRETS
from tests.conftest import START


def test_a_state_is_good_once_for_its_connection() -> None:
    states = OAuthStates(VirtualClock(START))
    state, issued = states.issue("prop")
    assert len(state) >= 40
    assert issued.expires_at == START + timedelta(minutes=10)
    assert states.consume(state) == "prop"
    with pytest.raises(OAuthStateError) as again:
        states.consume(state)
    assert again.value.why is StateRefused.REUSED


def test_values_are_random_and_independent() -> None:
    states = OAuthStates(VirtualClock(START))
    a, _ = states.issue("prop")
    b, _ = states.issue("prop")
    assert a != b
    assert states.consume(b) == "prop"
    assert states.consume(a) == "prop"


def test_unknown_and_expired() -> None:
    clock = VirtualClock(START)
    states = OAuthStates(clock)
    with pytest.raises(OAuthStateError) as unknown:
        states.consume("not-issued-here")
    assert unknown.value.why is StateRefused.UNKNOWN
    state, _ = states.issue("prop")
    clock.advance(timedelta(minutes=10))
    with pytest.raises(OAuthStateError) as expired:
        states.consume(state)
    assert expired.value.why is StateRefused.EXPIRED
    assert states.pending() == 0


def test_outstanding_values_are_bounded() -> None:
    states = OAuthStates(VirtualClock(START))
    first, _ = states.issue("prop")
    for _ in range(MAX_PENDING):
        states.issue("prop")
    assert states.pending() == MAX_PENDING
    with pytest.raises(OAuthStateError) as oldest:
        states.consume(first)
    assert oldest.value.why is StateRefused.EXPIRED


def test_values_are_registered_as_secrets() -> None:
    state, _ = OAuthStates(VirtualClock(START)).issue("prop")
    assert state not in SECRETS.scrub(f"callback state={state}x {state}")
