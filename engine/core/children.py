"""The child specs of the engine's supervisor: for each kind of actor, what a restart re-links
and what too many restarts hold (ARCHITECTURE: Supervisor).

A restarted account re-reads its positions and working orders from the broker; a restarted risk
actor asks its account for the book; a restarted group asks its leader for the positions; a
restarted connection asks its risk actors for their breach prices and the broker for a fresh
snapshot. Past the restart intensity, the accounts the actor serves are held (``SupervisorHold``).
"""

from __future__ import annotations

from collections.abc import Callable

from actors import addresses
from actors.messages.account import SendBook, SendPositions
from actors.messages.connection import ResyncAccount
from actors.messages.risk import RepublishBands, SupervisorHold
from engine.core.supervisor import ChildSpec
from engine.core.topology import Topology
from engine.core.tree import ActorTree


def child_specs(tree: ActorTree, topology: Callable[[], Topology]) -> list[ChildSpec]:
    """The specs of the four kinds of actor; ``topology`` gives the engine's current one."""
    tell = tree.tell

    def hold(accounts: list[str], reason: str) -> None:
        for account in accounts:
            tell(addresses.risk(account), SupervisorHold(reason))

    def relink_account(account: str) -> None:
        connection = topology().accounts[account].connection
        tell(addresses.connection(connection), ResyncAccount(account))

    def relink_risk(account: str) -> None:
        tell(addresses.account(account), SendBook())

    def relink_group(group: str) -> None:
        tell(addresses.account(topology().groups[group].leader), SendPositions())

    def relink_connection(connection: str) -> None:
        for account in topology().accounts_of(connection):
            tell(addresses.risk(account), RepublishBands())
            # A snapshot the old actor still waited for (or retried, S3.5) is asked for again:
            # one request, however many accounts.
            tell(addresses.connection(connection), ResyncAccount(account))

    def connection_accounts(connection: str) -> list[str]:
        return topology().accounts_of(connection)

    def group_accounts(group: str) -> list[str]:
        config = topology().groups[group]
        return [config.leader, *(m.account for m in config.members)]

    return [
        ChildSpec(
            "connection", relink_connection, lambda c, why: hold(connection_accounts(c), why)
        ),
        ChildSpec("account", relink_account, lambda a, why: hold([a], why)),
        ChildSpec("risk", relink_risk, lambda a, why: hold([a], why)),
        ChildSpec("group", relink_group, lambda g, why: hold(group_accounts(g), why)),
    ]


__all__ = ["child_specs"]
