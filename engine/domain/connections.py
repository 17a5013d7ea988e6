"""A broker login's connection state and the S1.4 transition table."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    REAUTH_REQUIRED = "reauth_required"
    DISCONNECTED = "disconnected"


class ConnectionEvent(StrEnum):
    DISCONNECT = "disconnect"
    TAKE_OFFLINE = "take_offline"
    RECONNECT = "reconnect"
    EXPIRE_TOKEN = "expire_token"
    REAUTHORIZE = "reauthorize"


# S1.4: (state, event, token expired before the event) -> next state. A triple not listed is a
# no-op (recorded as info). "reconnect" from disconnected lands in reauth_required when the
# token expired meanwhile; nowhere else does the token change where an event leads.
TRANSITIONS: Mapping[tuple[ConnectionState, ConnectionEvent, bool], ConnectionState] = {
    (ConnectionState.CONNECTED, ConnectionEvent.DISCONNECT, False): ConnectionState.DISCONNECTED,
    (ConnectionState.CONNECTED, ConnectionEvent.DISCONNECT, True): ConnectionState.DISCONNECTED,
    (ConnectionState.CONNECTED, ConnectionEvent.TAKE_OFFLINE, False): ConnectionState.DISCONNECTED,
    (ConnectionState.CONNECTED, ConnectionEvent.TAKE_OFFLINE, True): ConnectionState.DISCONNECTED,
    (ConnectionState.CONNECTED, ConnectionEvent.EXPIRE_TOKEN, False): (
        ConnectionState.REAUTH_REQUIRED
    ),
    (ConnectionState.CONNECTED, ConnectionEvent.EXPIRE_TOKEN, True): (
        ConnectionState.REAUTH_REQUIRED
    ),
    (ConnectionState.CONNECTED, ConnectionEvent.REAUTHORIZE, False): ConnectionState.CONNECTED,
    (ConnectionState.CONNECTED, ConnectionEvent.REAUTHORIZE, True): ConnectionState.CONNECTED,
    (ConnectionState.DISCONNECTED, ConnectionEvent.TAKE_OFFLINE, False): (
        ConnectionState.DISCONNECTED
    ),
    (ConnectionState.DISCONNECTED, ConnectionEvent.TAKE_OFFLINE, True): (
        ConnectionState.DISCONNECTED
    ),
    (ConnectionState.DISCONNECTED, ConnectionEvent.RECONNECT, False): ConnectionState.CONNECTED,
    (ConnectionState.DISCONNECTED, ConnectionEvent.RECONNECT, True): (
        ConnectionState.REAUTH_REQUIRED
    ),
    (ConnectionState.DISCONNECTED, ConnectionEvent.EXPIRE_TOKEN, False): (
        ConnectionState.DISCONNECTED
    ),
    (ConnectionState.DISCONNECTED, ConnectionEvent.EXPIRE_TOKEN, True): (
        ConnectionState.DISCONNECTED
    ),
    (ConnectionState.DISCONNECTED, ConnectionEvent.REAUTHORIZE, False): ConnectionState.CONNECTED,
    (ConnectionState.DISCONNECTED, ConnectionEvent.REAUTHORIZE, True): ConnectionState.CONNECTED,
    (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.TAKE_OFFLINE, False): (
        ConnectionState.DISCONNECTED
    ),
    (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.TAKE_OFFLINE, True): (
        ConnectionState.DISCONNECTED
    ),
    (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.REAUTHORIZE, False): (
        ConnectionState.CONNECTED
    ),
    (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.REAUTHORIZE, True): (
        ConnectionState.CONNECTED
    ),
}


def token_expired_after(event: ConnectionEvent, expired: bool) -> bool:
    """Whether the login's token is expired once ``event`` is handled: an expiry marks it (in
    any state, S1.4), a re-authorization brings a fresh one."""
    if event is ConnectionEvent.EXPIRE_TOKEN:
        return True
    if event is ConnectionEvent.REAUTHORIZE:
        return False
    return expired
