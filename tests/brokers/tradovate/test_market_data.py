"""Market data (TRADOVATE.md, "What the real API does": market data; SEMANTICS S10.3): a quote
subscription the broker refuses (not entitled, an error, a captcha) is asked again with a capped
backoff, and every live session hears ``PricesUnavailable`` for the symbol once per outage —
the risk guard is blind there and the engine says so — then ``PricesRestored``."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from brokers.base import PricesRestored, PricesUnavailable, Quote, SessionLost
from tests.brokers.tradovate.conftest import ES, Logins, logins, until

SUBSCRIBE = "md/subscribequote"
RETRY = {"quote_retry_initial_s": 0.1, "quote_retry_max_s": 0.4, "quote_symbols": (ES,)}


def _not_entitled(rig: Logins) -> None:
    rig.sim.refuse_quotes(ES)


def _error_status(rig: Logins) -> None:
    rig.sim.refuse_quotes(ES, status=403, data="Not entitled to CME data")


@pytest.mark.trio
@pytest.mark.parametrize(
    ("refuse", "said"), [(_not_entitled, "Not entitled"), (_error_status, "HTTP 403")]
)
async def test_a_refused_subscription_is_retried_reported_once_then_restored(
    tmp_path: Path, refuse: Any, said: str
) -> None:
    async with logins(tmp_path, {"alice": ["A1"], "bob": ["B1"]}, settings=RETRY) as rig:
        refuse(rig)
        rig.session("alice")
        rig.session("bob")
        async with rig.broker.running():
            # The md socket opens with either login's token.
            await until(rig.broker, lambda: len(rig.sim.requests_to(SUBSCRIBE)) >= 4)
            assert rig.sink("alice").of(Quote) == []
            rig.sim.refuse_quotes(ES, on=False)
            await until(rig.broker, lambda: bool(rig.sink("alice").of(PricesRestored)))
            rig.sim.set_price(ES, Decimal(5002))
            await rig.broker.settled()
        subscriptions = rig.sim.requests_to(SUBSCRIBE)
        gaps = [(b.at_ns - a.at_ns) / 1e9 for a, b in itertools.pairwise(subscriptions)]
        assert gaps[0] >= 0.09 and gaps[1] >= 0.19  # 0.1 s, then 0.2 s, ...
        assert all(gap < 0.4 + 0.3 for gap in gaps)  # capped at 0.4 s
        for user in ("alice", "bob"):
            sink = rig.sink(user)
            (unavailable,) = sink.of(PricesUnavailable)  # once per outage, whatever the retries
            assert (unavailable.connection, unavailable.symbol) == (user, ES)
            assert said in unavailable.reason
            assert sink.of(PricesRestored) == [PricesRestored(user, ES)]
        assert Decimal(5002) in [q.last for q in rig.sink("alice").of(Quote)]


@pytest.mark.trio
async def test_a_session_that_comes_up_during_the_outage_hears_of_it(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"], "bob": ["B1"]}, settings=RETRY) as rig:
        rig.sim.refuse_quotes(ES)
        rig.session("alice")
        async with rig.broker.running():
            await until(rig.broker, lambda: bool(rig.sink("alice").of(PricesUnavailable)))
            bob = rig.session("bob")
            await until(rig.broker, lambda: bob.live)
            await rig.broker.settled()
            assert [e.symbol for e in rig.sink("bob").of(PricesUnavailable)] == [ES]


@pytest.mark.trio
async def test_a_captcha_on_a_subscription_locks_that_login_out_and_prices_go_unavailable(
    tmp_path: Path,
) -> None:
    async with logins(tmp_path, {"alice": ["A1"], "bob": ["B1"]}, settings=RETRY) as rig:
        rig.sim.captcha_next("alice", endpoint="md/subscribeQuote")  # alice's token opens md
        rig.session("alice")
        async with rig.broker.running():
            await until(rig.broker, lambda: bool(rig.sink("alice").of(SessionLost)))
            bob = rig.session("bob")  # a login that comes up meanwhile hears of it, then md
            await until(rig.broker, lambda: bool(rig.sink("bob").of(PricesRestored)))
            rig.sim.set_price(ES, Decimal(5004))
            await rig.broker.settled()
            assert bob.live
        (lost,) = rig.sink("alice").of(SessionLost)
        assert lost.reason.startswith("rate_limited") and "captcha" in lost.reason
        assert len(rig.mine("alice", SUBSCRIBE)) == 1  # nothing more of a locked-out login
        (unavailable,) = rig.sink("bob").of(PricesUnavailable)
        assert unavailable.symbol == ES and "captcha" in unavailable.reason
        assert rig.mine("bob", SUBSCRIBE)  # the md socket moved to bob's token
        assert Decimal(5004) in [q.last for q in rig.sink("bob").of(Quote)]
