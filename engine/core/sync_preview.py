"""What ``sync`` would send, shown before a person confirms it (S6.2, decision 0008).

Computed with the rule the follower's actor applies (``engine.domain.sync_rule``) on the views
the actors published last: the follower's positions, the engine's orders still working for it,
whether its broker confirmed them, and the leader's confirmed positions its group holds. The
confirmed command carries the orders shown, and the follower sends nothing if its plan differs
by then (``actors/sync.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.account import AccountView
from actors.group import GroupView
from actors.risk import RiskView
from engine.core.topology import CommandRefused, Topology
from engine.domain.gate import gate
from engine.domain.risk_status import RiskStatus
from engine.domain.sync_rule import FollowerState, SyncPlan, SyncTerms, plan_sync


@dataclass(frozen=True, slots=True)
class SyncPreview:
    account: str
    group: str
    connection: str
    connection_state: str
    status: str
    disable_reason: str
    plan: SyncPlan
    gate: str  # what the risk gate would refuse (S5.4, S5.5), empty when it passes them all


def group_of(topology: Topology, account: str) -> str:
    """The group ``account`` follows; refused for a leader or an account in no group."""
    topology.require_account(account)
    for group in topology.groups.values():
        if group.leader == account:
            raise CommandRefused(
                f"account {account!r} leads group {group.id!r}: sync brings a follower to its"
                " leader"
            )
        if any(m.account == account for m in group.members):
            return group.id
    raise CommandRefused(f"account {account!r} follows no group: there is nothing to sync to")


def preview(
    topology: Topology,
    account: str,
    group_id: str,
    view: AccountView | None,
    risk: RiskView | None,
    group: GroupView | None,
) -> SyncPreview:
    """``account``, a follower of ``group_id`` (:func:`group_of`), with its actors' views."""
    config = topology.require_account(account)
    # The terms the group actor will send with (its view), the setup's until it has one.
    members = (*(group.members if group is not None else ()), *topology.groups[group_id].members)
    member = next(m for m in members if m.account == account)
    if view is None or group is None:
        # Its actors are being built (the setup just changed): nothing is known of it yet.
        state = FollowerState(config.connection, "unknown", False, False, {}, {})
    else:
        state = FollowerState(
            config.connection,
            view.connection_state,
            view.positions_confirmed,
            view.flattening or (risk is not None and risk.flattening),
            view.positions,
            view.projected,
        )
    leader = group.leader_positions if group is not None and group.leader_confirmed else None
    plan = plan_sync(state, leader, SyncTerms(member.ratio, member.max_qty, member.symbol_map))
    status = risk.status if risk is not None else RiskStatus.OK
    return SyncPreview(
        account=account,
        group=group_id,
        connection=config.connection,
        connection_state=state.connection_state,
        status=status.value,
        disable_reason=member.disable_reason,
        plan=plan,
        gate=_gate(plan, state, status),
    )


def _gate(plan: SyncPlan, state: FollowerState, status: RiskStatus) -> str:
    """What the risk gate would do to the orders, judged as the risk actor judges them
    (S5.4, S5.5); empty when every order passes whole."""
    refused: list[str] = []
    clipped: list[str] = []
    text = ""
    for symbol, qty in plan.orders.items():
        verdict = gate(status, state.projected.get(symbol, state.positions.get(symbol, 0)), qty)
        if verdict.refusal:
            refused.append(symbol)
            text = verdict.refusal
        elif verdict.allowed != qty:
            clipped.append(f"{symbol} to {verdict.allowed:+d}")
    said = []
    if refused:
        which = "every order" if len(refused) == len(plan.orders) else f"{', '.join(refused)}"
        said.append(f"{which} would be rejected: {text}")
    if clipped:
        said.append(f"clipped to what closes ({', '.join(clipped)}): {status.value}")
    return "; ".join(said)
