"""S1.4: the connection transition table, with the token's part in it — every (state, event,
token expired) triple as SEMANTICS.md says, and how each event leaves the token."""

from __future__ import annotations

import itertools

import pytest

from engine.domain.connections import (
    TRANSITIONS,
    ConnectionEvent,
    ConnectionState,
    token_expired_after,
)

# S1.4 as written in SEMANTICS.md; None: "–", a no-op recorded as an info activity entry. The
# token matters in one cell only: "connected, or reauth_required if the token expired
# meanwhile".
SPEC: dict[tuple[ConnectionState, ConnectionEvent, bool], ConnectionState | None] = {}
for expired in (False, True):
    SPEC.update(
        {
            (ConnectionState.CONNECTED, ConnectionEvent.DISCONNECT, expired): (
                ConnectionState.DISCONNECTED
            ),
            (ConnectionState.CONNECTED, ConnectionEvent.TAKE_OFFLINE, expired): (
                ConnectionState.DISCONNECTED
            ),
            (ConnectionState.CONNECTED, ConnectionEvent.RECONNECT, expired): None,
            (ConnectionState.CONNECTED, ConnectionEvent.EXPIRE_TOKEN, expired): (
                ConnectionState.REAUTH_REQUIRED
            ),
            (ConnectionState.CONNECTED, ConnectionEvent.REAUTHORIZE, expired): (
                ConnectionState.CONNECTED
            ),
            (ConnectionState.DISCONNECTED, ConnectionEvent.DISCONNECT, expired): None,
            (ConnectionState.DISCONNECTED, ConnectionEvent.TAKE_OFFLINE, expired): (
                ConnectionState.DISCONNECTED
            ),
            (ConnectionState.DISCONNECTED, ConnectionEvent.RECONNECT, expired): (
                ConnectionState.REAUTH_REQUIRED if expired else ConnectionState.CONNECTED
            ),
            (ConnectionState.DISCONNECTED, ConnectionEvent.EXPIRE_TOKEN, expired): (
                ConnectionState.DISCONNECTED
            ),
            (ConnectionState.DISCONNECTED, ConnectionEvent.REAUTHORIZE, expired): (
                ConnectionState.CONNECTED
            ),
            (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.DISCONNECT, expired): None,
            (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.TAKE_OFFLINE, expired): (
                ConnectionState.DISCONNECTED
            ),
            (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.RECONNECT, expired): None,
            (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.EXPIRE_TOKEN, expired): None,
            (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.REAUTHORIZE, expired): (
                ConnectionState.CONNECTED
            ),
        }
    )


def test_s1_4_the_spec_covers_every_state_event_and_token() -> None:
    triples = set(itertools.product(ConnectionState, ConnectionEvent, (False, True)))
    assert set(SPEC) == triples
    assert len(triples) == 30


def test_s1_4_the_table_lists_only_what_changes_something() -> None:
    assert set(TRANSITIONS) == {triple for triple, after in SPEC.items() if after is not None}


@pytest.mark.parametrize(("state", "event", "expired"), list(SPEC))
def test_s1_4_transition(state: ConnectionState, event: ConnectionEvent, expired: bool) -> None:
    assert TRANSITIONS.get((state, event, expired)) is SPEC[(state, event, expired)]


@pytest.mark.parametrize("event", list(ConnectionEvent))
@pytest.mark.parametrize("expired", [False, True])
def test_s1_4_the_token_is_marked_by_an_expiry_and_renewed_by_a_reauthorization(
    event: ConnectionEvent, expired: bool
) -> None:
    expected = {
        ConnectionEvent.EXPIRE_TOKEN: True,
        ConnectionEvent.REAUTHORIZE: False,
    }.get(event, expired)
    assert token_expired_after(event, expired) is expected
