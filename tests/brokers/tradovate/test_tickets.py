"""Penalty tickets everywhere, and an unknown sync answer is never a snapshot (TRADOVATE.md,
"What the real API does": penalty tickets; SEMANTICS S3.5).

A ticket can come back on any HTTP request and inside any socket reply's ``d``
(``user/syncrequest``, ``md/subscribeQuote``): it is never data — the login waits ``p-time``
and sends the identical request again plus ``p-ticket``; a captcha locks the login out. A sync
answer that is a ticket not waited out, an error, a non-200 status, a string, a time-out or
short of a list is ``SnapshotFailed``, and the socket stays up."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from brokers.base import (
    PricesUnavailable,
    Quote,
    SessionLost,
    SessionRestored,
    Snapshot,
    SnapshotFailed,
)
from brokers.tradovate.callback import serve_callback
from tests.brokers.tradovate.conftest import ES, logins

SYNC = "user/syncrequest"


@pytest.mark.trio
async def test_a_ticket_in_the_sync_reply_is_waited_out_then_sent_again_with_it(
    tmp_path: Path,
) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.trade("A1", ES, 2)
            await rig.broker.settled()
            rig.sim.penalize_next("alice", 1, 0.3, endpoint=SYNC)
            session.request_snapshot("s1")
            await rig.broker.settled()
        sink = rig.sink("alice")
        assert sink.of(SnapshotFailed) == []
        (snapshot,) = sink.of(Snapshot)
        assert snapshot.request_id == "s1"
        assert snapshot.accounts["A1"].positions[ES].qty == 2  # the real answer, not the ticket
        ticketed, again = rig.mine("alice", SYNC)[-2:]
        assert "p-ticket" not in ticketed.body
        assert again.body == {**ticketed.body, "p-ticket": again.body["p-ticket"]}
        assert (again.at_ns - ticketed.at_ns) / 1e9 >= 0.3
        assert rig.sim.tickets_issued("alice") == 1


@pytest.mark.trio
async def test_a_ticket_on_the_first_sync_delays_the_login_not_its_positions(
    tmp_path: Path,
) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        rig.sim.trade("A1", ES, -3)
        rig.sim.penalize_next("alice", 1, 0.1, endpoint=SYNC)
        session = rig.session("alice")
        session.request_snapshot("s0")  # before the login is up: answered from its first sync
        async with rig.broker.running():
            await rig.broker.settled()
        sink = rig.sink("alice")
        (snapshot,) = sink.of(Snapshot)
        assert snapshot.accounts["A1"].positions[ES].qty == -3
        assert sink.of(SessionLost) == [] and sink.of(SessionRestored)
        assert len(rig.mine("alice", SYNC)) == 2  # the ticket, then the answer


def _string(rig: Any) -> None:
    rig.sim.answer_next("alice", SYNC, "Sync is not available")


def _status(rig: Any) -> None:
    rig.sim.answer_next("alice", SYNC, "Internal error", status=500)


def _refusal(rig: Any) -> None:
    rig.sim.answer_next("alice", SYNC, {"errorText": "Access is denied"})


def _bad_request(rig: Any) -> None:
    rig.sim.answer_next("alice", SYNC, None, status=400)


def _silence(rig: Any) -> None:
    rig.sim.silence_next("alice", SYNC)


def _missing(rig: Any) -> None:
    rig.sim.drop_sync_keys("alice", ["positions"])


def _tickets_keep_coming(rig: Any) -> None:
    rig.sim.penalize_next("alice", 3, 0.05, endpoint=SYNC)


def _ticket_too_long(rig: Any) -> None:
    rig.sim.penalize_next("alice", 1, 90.0, endpoint=SYNC)


@pytest.mark.trio
@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (_string, "str, not a sync"),
        (_status, "HTTP 500"),
        (_refusal, "Access is denied"),
        (_bad_request, "HTTP 400"),
        (_silence, "no answer to user/syncrequest"),
        (_missing, "missing positions"),
        (_tickets_keep_coming, "still throttled"),
        (_ticket_too_long, "asks to wait 90 s"),
    ],
)
async def test_an_unknown_sync_answer_is_a_failed_snapshot_never_an_empty_one(
    tmp_path: Path, fault: Any, said: str
) -> None:
    settings = {"request_timeout_s": 1.0, "max_penalty_retries": 1}
    async with logins(tmp_path, {"alice": ["A1"]}, settings=settings) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.trade("A1", ES, 1)
            await rig.broker.settled()
            sockets = len(rig.sim.authorized_at("alice"))
            fault(rig)
            session.request_snapshot("s1")
            await rig.broker.settled()
            sink = rig.sink("alice")
            (failed,) = sink.of(SnapshotFailed)
            assert failed.request_id == "s1" and said in failed.reason
            assert sink.of(Snapshot) == []  # nothing pretends to know the account
            assert sink.of(SessionLost) == [] and session.live  # the socket stays up
            if fault is _ticket_too_long:
                return  # the login waits out the ticket's 90 s before anything else
            session.request_snapshot("s2")
            await rig.broker.settled()
            (snapshot,) = sink.of(Snapshot)
            assert snapshot.request_id == "s2" and snapshot.accounts["A1"].positions[ES].qty == 1
            assert len(rig.sim.authorized_at("alice")) == sockets  # on the same socket


@pytest.mark.trio
async def test_a_captcha_in_the_sync_reply_locks_the_login_out(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        session = rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.captcha_next("alice", endpoint=SYNC)
            session.request_snapshot("s1")
            await rig.broker.settled()
            sent = len(rig.of_user("alice"))
            session.request_snapshot("s2")
            await rig.broker.settled()
            assert len(rig.of_user("alice")) == sent  # nothing more of the login goes out
        sink = rig.sink("alice")
        (lost,) = sink.of(SessionLost)
        assert lost.reason.startswith("rate_limited") and "captcha" in lost.reason
        assert [f.request_id for f in sink.of(SnapshotFailed)] == ["s1"]
        assert sink.of(Snapshot) == []


@pytest.mark.trio
async def test_a_ticket_on_a_quote_subscription_is_waited_out_then_sent_again(
    tmp_path: Path,
) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}, settings={"quote_symbols": (ES,)}) as rig:
        rig.sim.penalize_next("alice", 1, 0.2, endpoint="md/subscribeQuote")
        rig.session("alice")
        async with rig.broker.running():
            await rig.broker.settled()
            rig.sim.set_price(ES, Decimal(5001))
            await rig.broker.settled()
        sink = rig.sink("alice")
        assert Decimal(5001) in [q.last for q in sink.of(Quote)]
        assert sink.of(PricesUnavailable) == []
        ticketed, again = rig.mine("alice", "md/subscribequote")
        assert again.body == {"symbol": ES, "p-ticket": again.body["p-ticket"]}
        assert "p-ticket" not in ticketed.body


@pytest.mark.trio
async def test_a_ticket_on_the_code_exchange_is_waited_out(tmp_path: Path) -> None:
    async with logins(tmp_path, {"alice": ["A1"]}) as rig:
        rig.broker.tokens.delete("alice")
        rig.session("alice")
        async with rig.broker.running(), serve_callback(rig.broker) as callback:
            url = callback.begin("alice")
            state = httpx.URL(url).params["state"]
            rig.sim.penalize_next("alice", 1, 0.2, endpoint="auth/oauthtoken")
            async with httpx.AsyncClient() as browser:
                approved = await browser.post(
                    f"{rig.sim.base_url}/oauth/approve",
                    data={
                        "user": "alice",
                        "client_id": rig.sim.client_id,
                        "redirect_uri": callback.redirect_uri,
                        "state": state,
                    },
                )
                await browser.get(approved.headers["location"])
            assert await callback.outcome(state) is None
            await rig.broker.settled()
            assert rig.broker.sessions()[0].live
        exchanges = rig.mine("alice", "auth/oauthtoken")
        assert len(exchanges) == 2
        assert rig.sim.tickets_issued("alice") == 1
