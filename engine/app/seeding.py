"""Writing a configuration's ``[[connections]]``, ``[[accounts]]`` (with their own risk keys and
profile), ``[[groups]]``, ``[profiles.NAME]`` tables (S9.7) and ``[[blackout]]`` intervals (S9.5)
into an empty store (``Engine.seed`` checks them as a whole first). A store that already has a
setup is left alone: after the first start, the setup changes through commands (the API, the
CLI)."""

from __future__ import annotations

from engine.app.config import Config
from engine.core.engine import Engine
from engine.core.setup_changes import initial_state
from engine.core.topology import AccountConfig, ConnectionConfig, GroupConfig


def seed_from_config(engine: Engine, config: Config) -> None:
    connections = []
    for c in config.connections:
        broker = c.broker or config.broker.kind
        state = initial_state(broker)
        connections.append(
            ConnectionConfig(c.id, broker, state, token_expired=state != "connected")
        )
    accounts = [
        AccountConfig(a.id, a.connection, a.balance, dict(a.limits), a.profile)
        for a in config.accounts
    ]
    groups = [
        GroupConfig(
            g.id,
            g.leader,
            [f.membership() for f in g.followers],
            g.on_drift,
        )
        for g in config.groups
    ]
    engine.seed(
        connections,
        accounts,
        groups,
        profiles=config.profile_keys,
        blackouts=config.blackouts,
    )


__all__ = ["seed_from_config"]
