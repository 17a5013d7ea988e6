"""ConnectionActor through the real engine: the S1.4 transition table pair by pair, S1.1 (one
expiry moves every account of the login), S1.3 (every return to ``connected`` reconciles),
S3.4 (a disconnect alone never touches a position), and S3.5 (a failed, partial or unanswered
snapshot is unknown: retried on S5.6's schedule, one attempt in flight)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.connection import SNAPSHOT_TIMEOUT
from actors.messages.connection import Placement, PlaceOrders, ResyncAccount
from brokers.base import OrderRequest, SessionLost, SessionRestored, TokenExpired
from brokers.clock import VirtualClock
from brokers.instruments import ContractTable
from brokers.paper import SNAPSHOT_FORCED, PaperBroker, PaperSession
from engine.core.topology import GroupConfig
from engine.domain.connections import ConnectionEvent, ConnectionState
from engine.domain.order_ids import OrderKind, client_order_id
from tests.conftest import ES, MakeEngine, Rig, member

# S1.4 as written in SEMANTICS.md, each pair driven from the state as the broker or the user
# brings the connection there (reauth_required with its token expired, disconnected with a
# valid one); None: "–", a no-op recorded as an info activity entry. The table itself, token
# and all, is checked in tests/engine/domain/test_connections.py.
SPEC: dict[tuple[ConnectionState, ConnectionEvent], ConnectionState | None] = {
    (ConnectionState.CONNECTED, ConnectionEvent.DISCONNECT): ConnectionState.DISCONNECTED,
    (ConnectionState.CONNECTED, ConnectionEvent.TAKE_OFFLINE): ConnectionState.DISCONNECTED,
    (ConnectionState.CONNECTED, ConnectionEvent.RECONNECT): None,
    (ConnectionState.CONNECTED, ConnectionEvent.EXPIRE_TOKEN): ConnectionState.REAUTH_REQUIRED,
    (ConnectionState.CONNECTED, ConnectionEvent.REAUTHORIZE): ConnectionState.CONNECTED,
    (ConnectionState.DISCONNECTED, ConnectionEvent.DISCONNECT): None,
    (ConnectionState.DISCONNECTED, ConnectionEvent.TAKE_OFFLINE): ConnectionState.DISCONNECTED,
    # reauth_required instead when the token expired meanwhile (driven below on its own)
    (ConnectionState.DISCONNECTED, ConnectionEvent.RECONNECT): ConnectionState.CONNECTED,
    (ConnectionState.DISCONNECTED, ConnectionEvent.EXPIRE_TOKEN): ConnectionState.DISCONNECTED,
    (ConnectionState.DISCONNECTED, ConnectionEvent.REAUTHORIZE): ConnectionState.CONNECTED,
    (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.DISCONNECT): None,
    (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.TAKE_OFFLINE): ConnectionState.DISCONNECTED,
    (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.RECONNECT): None,
    (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.EXPIRE_TOKEN): None,
    (ConnectionState.REAUTH_REQUIRED, ConnectionEvent.REAUTHORIZE): ConnectionState.CONNECTED,
}

# One login "c" holding the leader's account and a follower's: S1.1 moves both.
CONNECTIONS = ("c", "other")
ACCOUNTS = (("LEAD", "other"), ("A1", "c"), ("A2", "c"), ("A3", "c"))
GROUPS = (GroupConfig("g1", "LEAD", [member("A1"), member("A2")]),)


# --- driving each pair ----------------------------------------------------------------------------


def rig_for(make_engine: MakeEngine, tmp_path: Path, runtime: str) -> Rig:
    return make_engine(tmp_path, runtime, connections=CONNECTIONS, accounts=ACCOUNTS, groups=GROUPS)


def reach(rig: Rig, state: ConnectionState) -> None:
    """Bring connection ``c`` into ``state`` the way the broker would."""
    if state is ConnectionState.DISCONNECTED:
        rig.broker.drop("c")
    elif state is ConnectionState.REAUTH_REQUIRED:
        rig.broker.expire_token("c")
    rig.idle()
    assert rig.engine.connection_state("c") == state.value


def drive(rig: Rig, event: ConnectionEvent) -> None:
    """Deliver ``event`` to connection ``c``: from the broker or the user where they can send
    it in that state, else as the broker event told straight to the actor."""
    state = rig.engine.connection_state("c")
    if event is ConnectionEvent.DISCONNECT:
        if state == ConnectionState.CONNECTED.value:
            rig.broker.drop("c")
        else:  # the paper broker sends no second SessionLost; a real one may
            rig.tell(("connection", "c"), SessionLost("c", "network outage"))
    elif event is ConnectionEvent.TAKE_OFFLINE:
        rig.engine.take_offline("c")
    elif event is ConnectionEvent.RECONNECT:
        rig.engine.reconnect("c")  # reopens the session: the broker answers SessionRestored
    elif event is ConnectionEvent.EXPIRE_TOKEN:
        if state == ConnectionState.CONNECTED.value:
            rig.broker.expire_token("c")
        else:  # not delivered by the paper broker while down or already expired
            rig.tell(("connection", "c"), TokenExpired("c"))
    elif event is ConnectionEvent.REAUTHORIZE:
        rig.broker.reauthorize("c")
    rig.idle()


def no_ops(rig: Rig) -> list[str]:
    return [
        r["message"]
        for r in rig.activity(connection="c", kind="state_change")
        if "changes nothing" in r["message"]
    ]


def stored(rig: Rig) -> dict[str, object]:
    row = rig.rows("SELECT * FROM connections WHERE id = 'c'")[0]
    return {k: row[k] for k in ("state", "offline", "token_expired")}


@pytest.mark.parametrize(("state", "event"), list(SPEC))
def test_s1_4_pair(
    make_engine: MakeEngine, tmp_path: Path, state: ConnectionState, event: ConnectionEvent
) -> None:
    rig = rig_for(make_engine, tmp_path, "deterministic")
    reach(rig, state)
    quiet_before = len(no_ops(rig))
    reconciled_before = len(rig.reconciliations("A1"))
    drive(rig, event)
    expected = SPEC[(state, event)]
    after = rig.engine.connection_state("c")
    if expected is None:
        # "–": nothing changes, and the no-op is recorded as an info entry
        assert after == state.value
        notes = no_ops(rig)[quiet_before:]
        assert len(notes) == 1
        assert f"{event.value} while {state.value}" in notes[0]
        level = rig.activity(connection="c", kind="state_change")[-1]["level"]
        assert level == "info"
    else:
        assert after == expected.value
        # this event was no no-op (a return to connected reopens the session, whose echo may
        # be recorded as "reconnect while connected")
        assert not [
            n for n in no_ops(rig)[quiet_before:] if f"{event.value} while {state.value}" in n
        ]
        if expected is not state:
            changes = [
                r["message"]
                for r in rig.activity(connection="c", kind="state_change")
                if f"{state.value} → {expected.value}" in r["message"]
            ]
            assert len(changes) == 1
    # every account of the login follows its connection (S1.1)
    for account in ("A1", "A2", "A3"):
        view = rig.engine.account_view(account)
        assert view is not None
        assert view.connection_state == after
    assert stored(rig)["state"] == after
    # S1.3: a transition into connected (only) triggers reconciliation
    reconciled = len(rig.reconciliations("A1")) - reconciled_before
    assert reconciled == (
        1
        if after == ConnectionState.CONNECTED.value and state is not ConnectionState.CONNECTED
        else 0
    )


@pytest.mark.parametrize(
    "state",
    [ConnectionState.CONNECTED, ConnectionState.DISCONNECTED, ConnectionState.REAUTH_REQUIRED],
)
def test_s1_4_take_offline_marks_the_connection_offline(
    make_engine: MakeEngine, tmp_path: Path, state: ConnectionState
) -> None:
    rig = rig_for(make_engine, tmp_path, "deterministic")
    reach(rig, state)
    drive(rig, ConnectionEvent.TAKE_OFFLINE)
    assert stored(rig) == {
        "state": "disconnected",
        "offline": 1,
        "token_expired": int(state is ConnectionState.REAUTH_REQUIRED),
    }
    assert not rig.broker.is_delivering("c")


def test_s1_4_a_connection_taken_offline_is_never_reconnected_automatically(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = rig_for(make_engine, tmp_path, "deterministic")
    rig.engine.take_offline("c")
    rig.idle()
    # the session comes back at the broker (say, the outage ended): the engine stays offline
    rig.tell(("connection", "c"), SessionRestored("c"))
    assert rig.engine.connection_state("c") == "disconnected"
    # only the user brings it back
    rig.engine.reconnect("c")
    rig.idle()
    assert rig.engine.connection_state("c") == "connected"
    assert stored(rig)["offline"] == 0


def test_s1_4_disconnected_expire_token_marks_the_token_so_reconnect_needs_reauth(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = rig_for(make_engine, tmp_path, "deterministic")
    reach(rig, ConnectionState.DISCONNECTED)
    drive(rig, ConnectionEvent.EXPIRE_TOKEN)
    assert stored(rig) == {"state": "disconnected", "offline": 0, "token_expired": 1}
    drive(rig, ConnectionEvent.RECONNECT)
    assert rig.engine.connection_state("c") == "reauth_required"  # not connected
    assert len(rig.reconciliations("A1")) == 0
    drive(rig, ConnectionEvent.REAUTHORIZE)
    assert rig.engine.connection_state("c") == "connected"
    assert stored(rig)["token_expired"] == 0
    assert len(rig.reconciliations("A1")) == 1


def test_s1_4_connected_reauthorize_keeps_it_connected_with_a_fresh_token(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = rig_for(make_engine, tmp_path, "deterministic")
    drive(rig, ConnectionEvent.REAUTHORIZE)
    assert rig.engine.connection_state("c") == "connected"
    assert stored(rig) == {"state": "connected", "offline": 0, "token_expired": 0}
    assert rig.reconciliations("A1") == []


def test_s1_2_tokens_never_reach_the_records(make_engine: MakeEngine, tmp_path: Path) -> None:
    rig = rig_for(make_engine, tmp_path, "deterministic")
    rig.broker.expire_token("c")
    rig.broker.reauthorize("c")
    rig.idle()
    assert rig.engine.connection_state("c") == "connected"
    for row in rig.activity():
        assert "paper-token" not in row["message"]


# --- S1.1 -----------------------------------------------------------------------------------------


def test_s1_1_token_expiry_moves_every_account_of_the_login_together(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.broker.expire_token("c")
    rig.idle()
    assert rig.engine.connection_state("c") == "reauth_required"
    for account in ("A1", "A2", "A3"):
        view = rig.engine.account_view(account)
        assert view is not None
        assert view.connection_state == "reauth_required"
    leader = rig.engine.account_view("LEAD")
    assert leader is not None
    assert leader.connection_state == "connected"  # another login: untouched
    changes = [r for r in rig.activity(connection="c", kind="state_change") if "→" in r["message"]]
    assert len(changes) == 1  # one transition, not one per account
    assert "connected → reauth_required" in changes[0]["message"]
    assert changes[0]["level"] == "warning"

    # paused: a leader fill is skipped for both followers on the login
    rig.trade("LEAD", 1)
    assert rig.position("A1") == rig.position("A2") == 0
    assert len(rig.activity("A1", "skip")) == len(rig.activity("A2", "skip")) == 1

    # one re-authorization restores all of them
    rig.broker.reauthorize("c")
    rig.idle()
    for account in ("A1", "A2", "A3"):
        view = rig.engine.account_view(account)
        assert view is not None
        assert view.connection_state == "connected"
    rig.trade("LEAD", 1)
    assert rig.position("A1") == rig.position("A2") == 1  # copying resumed (S2.5: no replay)


# --- S3.4 -----------------------------------------------------------------------------------------


def test_s3_4_a_disconnect_alone_never_touches_a_position(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.trade("LEAD", 2)
    assert rig.position("A1") == 2
    orders_before = len(rig.orders())
    rig.broker.drop("c")
    rig.idle()
    rig.advance(120)
    assert rig.broker_position("A1") == 2
    assert rig.broker_position("A2") == 2
    assert len(rig.orders()) == orders_before


def test_orders_for_a_login_that_is_not_connected_are_answered_not_sent(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.broker.drop("c")
    rig.idle()
    coid = client_order_id(OrderKind.COPY, "test", "A1", ES, 1)
    request = OrderRequest(coid, "A1", ES, 1)
    rig.tell(("connection", "c"), PlaceOrders((Placement(request, "copy", "test"),)))
    assert rig.orders() == []  # nothing reached the ledger or the broker
    assert rig.broker_position("A1") == 0
    skips = rig.messages("A1", "skip")
    assert skips == [f"order {coid} not sent: connection c is disconnected"]


def test_orders_are_in_the_ledger_before_they_reach_the_broker(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    """S2.6 / ARCHITECTURE: the order intent is durable before the order is sent."""
    rig = rig_for(make_engine, tmp_path, runtime)
    rig.broker.hold("c")
    rig.trade("LEAD", 1)
    rows = rig.orders("A1")
    assert [(r["qty"], r["kind"], r["status"]) for r in rows] == [(1, "copy", "sent")]
    working = rig.broker.working_orders("A1")
    assert [w.client_order_id for w in working] == [rows[0]["client_order_id"]]
    rig.broker.release("c")
    rig.idle()
    assert rig.orders("A1")[0]["status"] == "filled"
    assert rig.position("A1") == 1


# --- S3.5: unknown is not flat --------------------------------------------------------------------


class HeldSnapshots(PaperBroker):
    """A paper broker whose snapshot answers wait until the test gives them, as a remote
    broker's answer takes its time (or never comes)."""

    def __init__(self, clock: VirtualClock, contracts: ContractTable) -> None:
        super().__init__(clock, contracts)
        self.holding = False
        self.requests: list[tuple[PaperSession, str]] = []

    def _request_snapshot(self, session: PaperSession, request_id: str) -> None:
        if not self.holding:
            super()._request_snapshot(session, request_id)
            return
        self.requests.append((session, request_id))

    def answer(self, request_id: str) -> None:
        session = next(s for s, r in self.requests if r == request_id)
        self.requests = [(s, r) for s, r in self.requests if r != request_id]
        super()._request_snapshot(session, request_id)

    def held(self) -> list[str]:
        return [r for _, r in self.requests]


def attempts(rig: Rig) -> int:
    """Snapshot attempts of connection ``c`` so far: each one takes the next request number."""
    value: int = rig.rows("SELECT reconnects FROM connections WHERE id = 'c'")[0]["reconnects"]
    return value


def confirmed(rig: Rig, account: str) -> bool:
    view = rig.engine.account_view(account)
    assert view is not None
    return view.positions_confirmed


def unknown_warnings(rig: Rig, account: str) -> list[str]:
    return [
        r["message"]
        for r in rig.activity(account, "reconciliation")
        if r["level"] == "warning" and "unknown" in r["message"]
    ]


def missed_exit(rig: Rig) -> None:
    """A1 and A2 hold +2 when their login drops and the leader closes: both are owed a
    reconciliation to 0 when it returns."""
    rig.trade("LEAD", 2)
    rig.broker.drop("c")
    rig.idle()
    rig.trade("LEAD", -2)
    assert rig.position("A1") == rig.position("A2") == 2


def test_s3_5_a_failed_snapshot_is_asked_again_after_1_2_4_s_on_the_engine_clock(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = rig_for(make_engine, tmp_path, runtime)
    missed_exit(rig)
    rig.broker.fail_snapshot("c", 3)
    first = attempts(rig)
    rig.engine.reconnect("c")
    rig.idle()
    assert rig.engine.connection_state("c") == "connected"
    assert attempts(rig) == first + 1
    for wait, number in ((1, 2), (2, 3), (4, 4)):
        # nothing is decided from an unknown answer: no follower is closed or reduced
        assert rig.broker_position("A1") == rig.broker_position("A2") == 2
        assert rig.reconciliations("A1") == rig.reconciliations("A2") == []
        assert not confirmed(rig, "A1")
        rig.advance(wait - 0.001)
        assert attempts(rig) == first + number - 1
        rig.advance(0.001)
        assert attempts(rig) == first + number
    assert confirmed(rig, "A1")
    assert rig.position("A1") == rig.position("A2") == 0  # once, when the answer is in
    assert len(rig.reconciliations("A1")) == len(rig.reconciliations("A2")) == 1
    rig.advance(300)
    assert attempts(rig) == first + 4  # answered: no more requests
    for account in ("A1", "A2", "A3"):  # one warning each, after the first failure
        (warning,) = unknown_warnings(rig, account)
        assert f"positions of {account} unknown" in warning
        assert SNAPSHOT_FORCED in warning
        assert "asked again in 1 s" in warning
    assert unknown_warnings(rig, "LEAD") == []  # another login


def test_s3_5_the_retry_stops_when_the_connection_leaves_and_a_return_asks_afresh(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = rig_for(make_engine, tmp_path, "deterministic")
    missed_exit(rig)
    rig.broker.fail_snapshot("c", 3)
    first = attempts(rig)
    rig.engine.reconnect("c")
    rig.idle()
    rig.advance(1)  # the second failure: the next attempt would be in 2 s
    assert attempts(rig) == first + 2
    rig.broker.drop("c")
    rig.idle()
    rig.advance(300)
    assert attempts(rig) == first + 2  # no retry while not connected
    rig.engine.reconnect("c")
    rig.idle()
    assert attempts(rig) == first + 3  # asked afresh: the third failure
    assert rig.reconciliations("A1") == []
    rig.advance(1)  # the schedule starts again at 1 s
    assert attempts(rig) == first + 4
    assert rig.position("A1") == 0
    assert len(rig.reconciliations("A1")) == 1
    assert len(unknown_warnings(rig, "A1")) == 2  # one per wait


def test_s3_5_a_partial_answer_is_unknown_for_every_account_of_the_login(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = rig_for(make_engine, tmp_path, "deterministic")
    missed_exit(rig)
    rig.broker.add_accounts("other", ("A2",))  # the broker's answer for c now lacks A2
    rig.engine.reconnect("c")
    rig.idle()
    assert rig.position("A1") == 2  # A1's part of the answer is not used either
    assert rig.reconciliations("A1") == []
    assert not confirmed(rig, "A1")
    for account in ("A1", "A2", "A3"):
        (warning,) = unknown_warnings(rig, account)
        assert "partial answer: no positions for A2" in warning
    rig.broker.add_accounts("c", ("A2",))
    rig.advance(1)
    assert rig.position("A1") == rig.position("A2") == 0
    assert len(rig.reconciliations("A1")) == len(rig.reconciliations("A2")) == 1


def test_s3_5_at_most_one_snapshot_attempt_is_in_flight_per_connection(
    make_engine: MakeEngine, tmp_path: Path, runtime: str
) -> None:
    rig = make_engine(
        tmp_path,
        runtime,
        connections=CONNECTIONS,
        accounts=ACCOUNTS,
        groups=GROUPS,
        make_broker=HeldSnapshots,
    )
    broker = rig.broker
    assert isinstance(broker, HeldSnapshots)
    missed_exit(rig)
    broker.holding = True
    rig.engine.reconnect("c")
    rig.idle()
    (request,) = broker.held()
    # a restarted account, and the supervisor's resync, take the attempt in flight
    rig.tell(("connection", "c"), ResyncAccount("A1"))
    rig.engine.inject_failure("account", "A2")
    rig.idle()
    assert broker.held() == [request]
    broker.answer(request)
    rig.idle()
    assert rig.position("A1") == rig.position("A2") == 0
    assert len(rig.reconciliations("A1")) == len(rig.reconciliations("A2")) == 1


def test_s3_5_an_unanswered_attempt_times_out_and_its_late_answer_is_ignored(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(
        tmp_path,
        connections=CONNECTIONS,
        accounts=ACCOUNTS,
        groups=GROUPS,
        make_broker=HeldSnapshots,
    )
    broker = rig.broker
    assert isinstance(broker, HeldSnapshots)
    missed_exit(rig)
    broker.holding = True
    rig.engine.reconnect("c")
    rig.idle()
    (first,) = broker.held()
    timeout = SNAPSHOT_TIMEOUT.total_seconds()
    rig.advance(timeout - 0.001)
    assert unknown_warnings(rig, "A1") == []
    rig.advance(0.001)
    (warning,) = unknown_warnings(rig, "A1")
    assert f"no answer within {timeout:g} s" in warning
    rig.advance(1)  # asked again: a second attempt, while the first one's answer never came
    again, second = broker.held()
    assert again == first
    broker.answer(first)  # too late: that attempt was given up
    rig.idle()
    assert not confirmed(rig, "A1")
    assert rig.position("A1") == 2
    assert rig.reconciliations("A1") == []
    broker.answer(second)
    rig.idle()
    assert confirmed(rig, "A1")
    assert rig.position("A1") == 0
    assert len(rig.reconciliations("A1")) == 1


def test_s3_5_an_answer_to_an_attempt_given_up_when_the_connection_left_is_ignored(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    rig = make_engine(
        tmp_path,
        connections=CONNECTIONS,
        accounts=ACCOUNTS,
        groups=GROUPS,
        make_broker=HeldSnapshots,
    )
    broker = rig.broker
    assert isinstance(broker, HeldSnapshots)
    missed_exit(rig)
    broker.holding = True
    rig.engine.reconnect("c")
    rig.idle()
    broker.drop("c")
    rig.idle()
    rig.engine.reconnect("c")
    rig.idle()
    first, second = broker.held()
    broker.answer(first)
    rig.idle()
    assert not confirmed(rig, "A1")
    assert rig.reconciliations("A1") == []
    broker.answer(second)
    rig.idle()
    assert rig.position("A1") == 0
    assert len(rig.reconciliations("A1")) == 1
    rig.advance(SNAPSHOT_TIMEOUT.total_seconds() * 3)  # the timers of both find nothing to do
    assert len(rig.reconciliations("A1")) == 1
    assert unknown_warnings(rig, "A1") == []
