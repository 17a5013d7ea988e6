"""Budgets (TRADOVATE.md, "What the real API does": budgets): besides each login's budget, the
endpoints Tradovate limits per IP address (``user/syncrequest``, ``auth/renewaccesstoken``)
have a budget per host shared by every login of the process, counting successful requests;
and the token renewals of many logins are spread in time."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from brokers.base import Snapshot, SnapshotFailed
from tests.brokers.tradovate.conftest import logins, until
from tests.conftest import START

SYNC = "user/syncrequest"
RENEW = "auth/renewaccesstoken"


@pytest.mark.trio
@pytest.mark.parametrize("host_budget", [True, False])
async def test_syncs_of_many_logins_stay_within_the_hosts_budget(
    tmp_path: Path, host_budget: bool
) -> None:
    users = {f"u{i}": [f"A{i}"] for i in range(5)}
    # The broker allows 2 syncs from this host at once, then 2 a second.
    server = {"ip_rate_limit": {SYNC: (2.0, 2.0)}}
    # The engine's budget keeps a margin under the broker's: at exactly its rate, requests the
    # engine spaced can reach the broker closer together than they left.
    settings = {"host_sync_burst": 2, "host_sync_per_hour": 5400.0}
    if not host_budget:
        settings = {"host_sync_burst": 100, "host_sync_per_hour": 360_000.0}
    async with logins(tmp_path, users, settings=settings, server=server) as rig:
        sessions = [rig.session(user) for user in users]
        for session in sessions:
            session.request_snapshot(f"{session.connection}#1")
        async with rig.broker.running():
            await until(rig.broker, lambda: all(s.live for s in sessions))
            await rig.broker.settled()
        for user, accounts in users.items():
            (snapshot,) = rig.sink(user).of(Snapshot)
            assert set(snapshot.accounts) == set(accounts)
            assert rig.sink(user).of(SnapshotFailed) == []
        if host_budget:
            assert rig.sim.faults.ip_tickets == 0  # the host's budget kept under the broker's
            assert rig.broker.host_budget.waited > 0
        else:
            assert rig.sim.faults.ip_tickets > 0  # without it, the broker throttles the host


@pytest.mark.trio
async def test_renewals_of_many_logins_are_spread_and_paced_by_the_host(tmp_path: Path) -> None:
    users = {f"u{i:02}": [f"A{i}"] for i in range(20)}
    server = {"ip_rate_limit": {RENEW: (5.0, 5.0)}}
    # As for syncs, the engine's budget keeps a margin under the broker's (5 a second): at
    # exactly its rate, renewals the engine spaced can reach the broker closer together.
    settings = {
        "host_renewal_burst": 4,
        "host_renewal_per_hour": 16_200.0,  # 4.5 a second
        "host_sync_burst": 100,
    }
    async with logins(tmp_path, users, settings=settings, server=server) as rig:
        sessions = [rig.session(user) for user in users]
        renewed_at: Counter[int] = Counter()  # minute after START -> renewals
        async with rig.broker.running():
            await until(rig.broker, lambda: all(s.live for s in sessions))
            # Every token expires at START + 80 min; the renewal window opens 15 min before.
            while (due := rig.broker.next_due()) is not None and due < START + timedelta(
                hours=1, minutes=15
            ):
                before = len(rig.sim.requests_to(RENEW))
                rig.clock.set(due)
                await rig.broker.run_due()
                await rig.broker.settled()
                minute = int((due - START).total_seconds() // 60)
                renewed_at[minute] += len(rig.sim.requests_to(RENEW)) - before
        assert sum(renewed_at.values()) == 20  # each login once
        assert max(renewed_at.values()) <= 3  # never all in the same minute
        assert min(renewed_at) >= 65 and max(renewed_at) <= 72  # inside the window's first half
        assert rig.sim.faults.ip_tickets == 0
        assert all(s.link.renewals == 1 for s in sessions)
