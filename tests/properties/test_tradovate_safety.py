"""Trading safety through the Tradovate adapter: a Hypothesis state machine drives the real
engine on the local Tradovate server while it misbehaves.

Each example sets up a leader login (``lead``: account ``LEAD``) and one or two follower logins
(``f1``, ``f2``: ``F1``, ``F2``) of one group — ratios from {0.5, 1, 1.5, 2}, an optional
``max_qty``, an optional ``ES → MES`` map — as ``broker = "tradovate-sim"`` connections in the
replay harness: the engine, the real adapter and the local server on loopback sockets, the
virtual clock from 2026-01-05 09:00 Chicago, each step settled before the next (every request
answered, every push handled, every login that reconnects by itself back). The rules are the
leader's trades (in partial fills), its reversals, rare trades by a follower's owner, outages
and reconnections, failed snapshots, and the server's faults (:class:`~tests.properties.
tradovate_model.Fault`): penalty tickets (over HTTP and in socket replies, the sync request's
included, within the adapter's retries and beyond), captchas, 423, 429, 401, sync requests
answered with an error or split in parts, ``props`` entities as arrays (several events a frame),
fills pushed again as ``Updated``, fills withdrawn, sockets ended by ``c[code,"reason"]`` or a
``shutdown`` event; time moves on so retries, backoffs and the hour-long lock-outs run on the
virtual clock; and a settle step that plans no more faults, brings every login back and lets
every wait pass, after which everything must be connected, confirmed and equal to the broker.

After every step :class:`~tests.properties.tradovate_model.TradovateChecker` checks the paper
suite's invariants against the local server's book, and that no follower is ever closed past
its target, no client order id reaches the broker twice, and no fill counts twice. A failure
prints the seed (``HYPOTHESIS_SEED`` replays it) and the steps of the shrunk sequence. ``make
soak`` runs it far longer (``HYPOTHESIS_PROFILE=soak``).
"""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from engine.app.config import TRADOVATE_SIM
from engine.replay.scenario import (
    DEFAULT_START,
    AccountSpec,
    ConnectionSpec,
    FailSnapshotStep,
    FollowerSpec,
    GroupSpec,
    PriceStep,
    Scenario,
    TradeStep,
)
from tests.properties.engine_model import ES, MES, quiet_logs
from tests.properties.profiles import hit_known_bugs, seeded, tradovate_settings
from tests.properties.tradovate_model import (
    ACCOUNTS,
    MAX_TICKETS,
    OPEN_KNOWN_BUGS,
    PLACE,
    RENEW,
    SYNC,
    Fault,
    TradovateChecker,
)

GROUP = "g1"
LEADER = "LEAD"
LEAD_LOGIN = "lead"
PRICE = Decimal(5000)
RATIOS = (Decimal("0.5"), Decimal(1), Decimal("1.5"), Decimal(2))
# From a second to past a lock-out's hour (the token is renewed on the way).
ADVANCES = tuple(timedelta(seconds=s) for s in (1, 2, 5, 30, 5 * 60, 61 * 60))
# The requests a fault can meet, and how many of it: tickets on a request the adapter makes as a
# login comes up stay within its retries (more would fail the connection attempt, which is
# retried at once: the same outcome, slower); on orders and the engine's syncs they go beyond.
TICKETS = {PLACE: MAX_TICKETS + 2, SYNC: MAX_TICKETS + 2, ACCOUNTS: 3, RENEW: 3}
REQUEST_FAULTS = ("ticket", "ticket", "captcha", "throttle", "lockout", "unauthorized")
SYNC_ERRORS = ("Service unavailable", "Access denied")
SHUTDOWNS = ("Maintenance", "ConnectionQuotaReached", "IPQuotaReached")
# What the broker does by itself (the ``broker`` rule), weighted toward planned faults.
BROKER_DOINGS = (
    "request",
    "request",
    "request",
    "sync_error",
    "framing",
    "push_again",
    "withdraw",
    "end_socket",
    "owner_trade",
)


# --- the setup ------------------------------------------------------------------------------------


@st.composite
def setups(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(1, 2))
    mapped = draw(st.one_of(st.none(), st.integers(1, count)))
    logins = [LEAD_LOGIN, *(f"f{n}" for n in range(1, count + 1))]
    accounts = [AccountSpec(LEADER, LEAD_LOGIN)]
    followers: list[FollowerSpec] = []
    for number in range(1, count + 1):
        accounts.append(AccountSpec(f"F{number}", f"f{number}"))
        ratio = draw(st.sampled_from(RATIOS))
        max_qty = draw(st.one_of(st.none(), st.sampled_from((1, 2, 3, 5))))
        symbol_map = (("ES", "MES"),) if mapped == number else ()
        followers.append(FollowerSpec(f"F{number}", ratio, max_qty, symbol_map))
    return Scenario(
        name="tradovate safety",
        description="",
        file="<hypothesis>",
        start=DEFAULT_START,
        instruments=(),
        connections=tuple(ConnectionSpec(c, TRADOVATE_SIM) for c in logins),
        accounts=tuple(accounts),
        groups=(GroupSpec(GROUP, LEADER, tuple(followers)),),
        steps=(),
    )


def partial_fills(draw: st.DrawFn, qty: int) -> tuple[int, ...]:
    """``qty`` in one fill or in parts."""
    cuts = draw(st.sets(st.integers(1, qty - 1), max_size=qty - 1)) if qty > 1 else set()
    edges = [0, *sorted(cuts), qty]
    return tuple(b - a for a, b in itertools.pairwise(edges))


# --- the machine --------------------------------------------------------------------------------


class TradovateSafety(RuleBasedStateMachine):
    # Across the run, for its report: examples (machines), the steps they took, and how many
    # steps made each notable thing happen (an order's outcome, a snapshot unknown, ...).
    examples = 0
    steps = 0
    seen: ClassVar[Counter[str]] = Counter()

    def __init__(self) -> None:
        super().__init__()
        TradovateSafety.examples += 1
        self.tmp = tempfile.TemporaryDirectory(prefix="tradovate-safety-")
        self.checker: TradovateChecker | None = None
        self.failure: BaseException | None = None

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def c(self) -> TradovateChecker:
        assert self.checker is not None
        return self.checker

    def step(self, action: str, value: object) -> None:
        TradovateSafety.steps += 1
        try:
            self.c.apply(action, value)
        except BaseException as error:
            self.failure = error
            raise
        TradovateSafety.seen.update(self.c.notable(self.c.steps[-1]))

    def fault(self, fault: Fault) -> None:
        self.step("fault", fault)

    def teardown(self) -> None:
        try:
            if (
                self.failure is not None
                and self.checker is not None
                and current_build_context().is_final
            ):
                print(f"the shrunk failing sequence, as applied:\n{self.checker.describe()}")
        finally:
            if self.checker is not None:
                self.checker.close()
            self.tmp.cleanup()

    def logins(self) -> list[str]:
        return sorted(self.c.observed.connections)

    def up(self) -> list[str]:
        return sorted(c for c, s in self.c.observed.connections.items() if s == "connected")

    def down(self) -> list[str]:
        return sorted(c for c, s in self.c.observed.connections.items() if s != "connected")

    def followers(self) -> list[str]:
        return sorted(self.c.observed.members)

    # -- setup ---------------------------------------------------------------------------------

    @initialize(scenario=setups())
    def start(self, scenario: Scenario) -> None:
        try:
            tolerated = frozenset() if hit_known_bugs() else OPEN_KNOWN_BUGS
            self.checker = TradovateChecker(
                scenario, Path(self.tmp.name), group=GROUP, tolerated=tolerated
            )
        except BaseException as error:
            self.failure = error
            raise
        self.step("price", PriceStep(ES, PRICE))
        self.step("price", PriceStep(MES, PRICE))  # mapped copies fill at the same price

    # -- trades ----------------------------------------------------------------------------------

    @rule(data=st.data())
    def leader_trade(self, data: st.DataObject) -> None:
        """The leader trades by hand, in one fill or in parts."""
        qty = data.draw(st.integers(1, 4), label="qty")
        side = data.draw(st.sampled_from(("buy", "sell")), label="side")
        fills = partial_fills(data.draw, qty)
        self.step("trade", TradeStep(LEADER, ES, side, qty, fills))

    @rule(data=st.data())
    def leader_reverse(self, data: st.DataObject) -> None:
        """Close the leader's position and open the other side, in one order."""
        held = self.c.observed.broker_positions.get(LEADER, {}).get(ES, 0)
        qty = abs(held) + data.draw(st.integers(1, 2), label="beyond")
        side = "sell" if held > 0 else "buy"
        self.step("trade", TradeStep(LEADER, ES, side, qty, partial_fills(data.draw, qty)))

    # -- connections -----------------------------------------------------------------------------

    @precondition(lambda self: bool(self.up()))
    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        """An outage: the login's sockets close and new ones are refused until reconnect."""
        self.step("disconnect", data.draw(st.sampled_from(self.up()), label="login"))

    @precondition(lambda self: bool(self.down()))
    @rule(data=st.data())
    def reconnect(self, data: st.DataObject) -> None:
        self.step("reconnect", data.draw(st.sampled_from(self.down()), label="login"))

    @precondition(lambda self: bool(self.up()))
    @rule(data=st.data())
    def outage(self, data: st.DataObject) -> None:
        """An outage and the return from it, step by step: the login goes down, its accounts
        trade at the broker meanwhile, its next answers may fail (S3.5), and it is reconnected.
        The leader's more often than a follower's: its unknown answer is what must not close
        anyone."""
        up = self.up()
        login = data.draw(st.sampled_from([u for u in up if u == LEAD_LOGIN] * 2 + up))
        self.step("disconnect", login)
        for _ in range(data.draw(st.integers(0, 2), label="trades")):
            if login == LEAD_LOGIN:
                self.leader_trade(data)
            else:
                self.follower_trade(data, self.c.accounts_on(login))
        failing = data.draw(st.integers(0, 3), label="failing answers")
        if failing:
            self.step("fail_snapshot", FailSnapshotStep(login, failing))
        self.step("reconnect", login)

    @rule(data=st.data(), count=st.integers(1, 3))
    def fail_snapshot(self, data: st.DataObject, count: int) -> None:
        """The engine's next snapshot attempts of the login meet an error (S3.5)."""
        login = data.draw(st.sampled_from(self.logins()), label="login")
        self.step("fail_snapshot", FailSnapshotStep(login, count))

    # -- the broker's own doings -----------------------------------------------------------------

    @rule(data=st.data())
    def broker(self, data: st.DataObject) -> None:
        """Something the broker does: a fault planned for a login's next requests, a sync
        answered with an error, a change in how it frames what it sends, a fill pushed again
        or withdrawn, a socket it ends, a trade by a follower's owner; then, often, the leader
        trades (which is what meets most of them)."""
        what = data.draw(st.sampled_from(BROKER_DOINGS), label="what")
        if what == "request":
            self.request_fault(data)
        elif what == "sync_error":
            login = data.draw(st.sampled_from(self.logins()), label="login")
            answer = data.draw(st.sampled_from(SYNC_ERRORS), label="answer")
            count = data.draw(st.integers(1, 2), label="count")
            self.fault(Fault("sync_error", login, SYNC, count, answer))
        elif what == "framing":
            login = data.draw(st.sampled_from(self.logins()), label="login")
            if data.draw(st.booleans(), label="arrays"):
                on = data.draw(st.booleans(), label="on")
                self.fault(Fault("arrays", login, count=int(on)))
            else:
                self.fault(Fault("split_sync", login, count=data.draw(st.integers(1, 3))))
        elif what in ("push_again", "withdraw"):
            account = data.draw(st.sampled_from([LEADER, *self.followers()]), label="account")
            count = data.draw(st.integers(1, 3), label="count") if what == "push_again" else 1
            self.fault(Fault(what, account, count=count))
        elif what == "end_socket":
            self.end_socket(data)
        else:
            self.follower_trade(data)
        if data.draw(st.booleans(), label="then the leader trades"):
            self.leader_trade(data)

    def request_fault(self, data: st.DataObject) -> None:
        """A fault planned for a login's next request(s) to one endpoint (orders: a
        follower's login, the one that sends them)."""
        kind = data.draw(st.sampled_from(REQUEST_FAULTS), label="kind")
        if kind == "ticket":
            endpoint = data.draw(st.sampled_from(sorted(TICKETS)), label="endpoint")
            count = data.draw(st.integers(1, TICKETS[endpoint]), label="count")
        else:
            endpoint = data.draw(st.sampled_from((PLACE, SYNC)), label="endpoint")
            single = kind in ("captcha", "lockout")
            count = 1 if single else data.draw(st.integers(1, 2), label="count")
        logins = self.logins()[1:] if endpoint == PLACE else self.logins()
        login = data.draw(st.sampled_from(logins), label="login")
        self.fault(Fault(kind, login, endpoint, count))

    def end_socket(self, data: st.DataObject) -> None:
        """The broker ends the login's trading socket: ``c[code,"reason"]`` or ``shutdown``."""
        login = data.draw(st.sampled_from(self.logins()), label="login")
        if data.draw(st.booleans(), label="close"):
            self.fault(Fault("close", login, detail="Going away"))
        else:
            self.fault(Fault("shutdown", login, detail=data.draw(st.sampled_from(SHUTDOWNS))))

    def follower_trade(self, data: st.DataObject, among: list[str] | None = None) -> None:
        """The follower's owner trades by hand."""
        account = data.draw(st.sampled_from(among or self.followers()), label="account")
        symbol = self.c.mapped_symbol(self.c.observed.members[account])
        qty = data.draw(st.integers(1, 2), label="qty")
        side = data.draw(st.sampled_from(("buy", "sell")), label="side")
        self.step("trade", TradeStep(account, symbol, side, qty, (qty,)))

    # -- time ------------------------------------------------------------------------------------

    @rule(delta=st.sampled_from(ADVANCES))
    def advance(self, delta: timedelta) -> None:
        self.step("advance", delta)

    @rule()
    def settle(self) -> None:
        """No fault left planned; every login back (reconnected, re-authorized if its token
        expired during an outage, its lock-out's hour over); every retry run. Then everything
        is connected, confirmed and the broker's."""
        self.c.bridge.clear_faults()
        self.bring_back()
        self.step("advance", timedelta(minutes=61))
        self.bring_back()
        self.step("advance", timedelta(seconds=10))
        self.c.settled()

    def bring_back(self) -> None:
        """Reconnect every login that is down; re-authorize one whose token is refused."""
        for login in self.down():
            for _ in range(2):
                state = self.c.observed.connections[login]
                if state == "connected":
                    break
                self.step("reauthorize" if state == "reauth_required" else "reconnect", login)


def test_tradovate_safety() -> None:
    machine, _ = seeded(TradovateSafety, "tradovate safety")
    TradovateSafety.examples = TradovateSafety.steps = 0
    TradovateSafety.seen.clear()
    try:
        with quiet_logs():
            run_state_machine_as_test(machine, settings=tradovate_settings())
    finally:
        # Every example counts, the shrinker's replays included; shown with -s (make soak).
        seen = ", ".join(f"{label} {n}" for label, n in sorted(TradovateSafety.seen.items()))
        print(
            f"tradovate safety: {TradovateSafety.examples} examples, "
            f"{TradovateSafety.steps} steps, each followed by the invariant checks; "
            f"steps that saw: {seen}"
        )
