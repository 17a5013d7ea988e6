"""``python -m engine setup diff FILE`` and ``python -m engine setup apply FILE``: the setup a
configuration file describes (its ``[[connections]]``, ``[[accounts]]``, ``[[groups]]``,
``[profiles.NAME]`` and ``[[blackout]]``) against the store's, key by key — the file seeds an
empty store, and from then on the store is the truth (decision 0017).

``diff`` lists each difference with the file's value and the store's. It reads the store
through the running engine's API when one runs on the data directory, else the store file
itself, read only: it works with the engine stopped, before a restart. Exit 0 when the file and
the store agree, 1 when they differ, 2 when the file or the store cannot be read.

``apply`` makes the store the file's through the running engine's API, with the same commands
the Cockpit and the other commands use: it shows every change first, and what each deletion
removes, and asks (``--yes`` to skip), as a delete does. A limit set or lowered takes effect at
once. A difference no command can make (an account moved to another connection, a connection's
broker) is shown with what to do instead, and left. Exit 0 when the store is the file's
afterwards, 1 when something was left or refused, 2 as for ``diff``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from engine.app.config import ConfigError, load_config
from engine.app.setup_diff import Account as AccountSetup
from engine.app.setup_diff import (
    AddBlackout,
    AddConnection,
    AddFollower,
    AddGroup,
    Connection,
    DeleteAccount,
    DeleteConnection,
    DeleteGroup,
    DeleteProfile,
    Follower,
    Group,
    Plan,
    RemoveBlackout,
    RemoveFollower,
    SetAccountProfile,
    SetFollower,
    SetLimits,
    SetOnDrift,
    SetProfile,
    Setup,
    Step,
    compare,
    make_setup,
    setup_of_config,
    setup_of_topology,
)
from engine.cli.commands import EXIT_USAGE, Client, CliError, _common, confirm
from engine.cli.commands import connect as connect_api
from engine.cli.tables import describe_deletion, table
from engine.domain import risk_profile
from engine.domain.copying import CopyMode
from engine.domain.decimals import plain
from engine.domain.risk_profile import RiskValue, RiskValueError
from engine.domain.sessions import Blackout
from engine.domain.watching import OnDrift
from engine.storage.datadir import STORE_FILE, read_url
from engine.storage.setup_rows import read_setup
from engine.storage.store import StoreError

COMMAND = "setup"
EXIT_SAME = 0
EXIT_DIFFERENT = 1


# --- the two setups -----------------------------------------------------------------------------


def file_setup(path: str) -> Setup:
    """The setup the configuration file describes; :class:`CliError` when it cannot be read or
    describes none."""
    try:
        config = load_config(Path(path))
    except ConfigError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    setup = setup_of_config(config)
    if setup is None:
        raise CliError(
            f"{path}: no [[connections]]: the file describes no setup to compare with the store",
            EXIT_USAGE,
        )
    return setup


def _keys_of_api(keys: Mapping[str, Any], where: str) -> dict[str, RiskValue]:
    """Risk keys as the API lists them (decimal strings, words, tables), as values."""
    try:
        return risk_profile.parse_values(keys)
    except RiskValueError as error:
        raise CliError(f"the engine's answer: {where}: {error}") from None


def _blackouts_of_api(listed: Sequence[Mapping[str, Any]]) -> list[Blackout]:
    try:
        return [
            Blackout(
                datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"]), b["label"]
            )
            for b in listed
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise CliError(f"the engine's answer: blackouts: {error}") from None


def setup_of_api(client: Client) -> Setup:
    """The setup the running engine holds, as its API lists it."""
    connections = client.call("GET", "/api/connections")
    accounts = client.call("GET", "/api/accounts")
    groups = client.call("GET", "/api/groups")
    profiles = client.call("GET", "/api/profiles")
    blackouts = client.call("GET", "/api/blackouts")
    return make_setup(
        {c["id"]: Connection(c["id"], c["broker"]) for c in connections},
        [
            AccountSetup(
                a["id"],
                a["connection"],
                _keys_of_api(a["limits"], f"account {a['id']}"),
                Decimal(a["balance"]),
                a.get("profile"),
            )
            for a in accounts
        ],
        {
            g["id"]: Group(
                g["id"],
                g["leader"],
                tuple(
                    Follower(
                        f["account"],
                        Decimal(f["ratio"]),
                        f["max_qty"],
                        tuple(sorted(f["symbol_map"].items())),
                        CopyMode(f["copy"]),
                    )
                    for f in g["followers"]
                ),
                OnDrift(g.get("on_drift", OnDrift.ALERT.value)),
            )
            for g in groups
        },
        {p["name"]: _keys_of_api(p["limits"], f"profile {p['name']}") for p in profiles},
        _blackouts_of_api(blackouts),
    )


def store_setup(args: argparse.Namespace) -> tuple[Setup, str]:
    """The store's setup and where it was read: through the API of the engine running on the
    data directory, else (none runs there) from the store file, read only."""
    data_dir = Path(args.data_dir)
    given = args.url or os.environ.get("MIMIK_URL")
    if given or read_url(data_dir):
        client = connect_api(args)
        try:
            return setup_of_api(client), f"the engine running at {client.url}"
        except CliError as error:
            # An address left by an engine that did not stop cleanly: read its store instead.
            if given or error.code != EXIT_USAGE:
                raise
        finally:
            client.close()
    path = data_dir / STORE_FILE
    try:
        rows = read_setup(path)
    except StoreError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    if rows is None:
        raise CliError(
            f"no store in {data_dir}/ (no engine has run there): the first start seeds it from"
            " the file; --data-dir names another",
            EXIT_USAGE,
        )
    return setup_of_topology(rows), f"the store {path} (no engine running)"


# --- showing a plan -----------------------------------------------------------------------------


def show_differences(plan: Plan, file: str, source: str, out: TextIO) -> None:
    count = len(plan.differences)
    if not count:
        out.write(f"{file} and {source} have the same setup\n")
        return
    out.write(f"{file} against {source}: {count} difference{'s' if count > 1 else ''}\n\n")
    table([(d.key, d.file, d.store) for d in plan.differences], ("KEY", "FILE", "STORE"), out)
    left = [d for d in plan.differences if d.why_not]
    if left:
        out.write("\nNot applied by setup apply:\n")
        for d in left:
            out.write(f"  {d.key}: {d.why_not}\n")


def _json_plan(plan: Plan, source: str) -> dict[str, Any]:
    return {
        "store": source,
        "differences": [asdict(d) for d in plan.differences],
        "steps": [step.describe() for step in plan.steps],
    }


# --- applying a step through the API ------------------------------------------------------------


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


def _follower_body(follower: Follower) -> dict[str, Any]:
    body: dict[str, Any] = {
        "account": follower.account,
        "ratio": plain(follower.ratio),
        "symbol_map": dict(follower.symbol_map),
        "copy": follower.copy.value,
    }
    if follower.max_qty is not None:
        body["max_qty"] = follower.max_qty
    return body


def _deletion_path(step: Step) -> str | None:
    """The API resource a deleting step removes (its ``?dry_run=true`` lists what goes)."""
    if isinstance(step, DeleteGroup):
        return _path("api", "groups", step.group)
    if isinstance(step, RemoveFollower):
        return _path("api", "groups", step.group, "followers", step.account)
    if isinstance(step, DeleteAccount):
        return _path("api", "accounts", step.account)
    if isinstance(step, DeleteConnection):
        return _path("api", "connections", step.connection)
    return None


def _value_json(value: RiskValue) -> str | dict[str, str]:
    """A risk key's value for the API: exact decimal strings, words, tables of them."""
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, str):
        return value
    return {root: plain(v) for root, v in value.items()}


def _keys_body(keys: Mapping[str, RiskValue], removed: Sequence[str] = ()) -> dict[str, Any]:
    """Keys to set, and to remove (``null``), as a body of the API."""
    body: dict[str, Any] = {k: _value_json(v) for k, v in keys.items()}
    body.update(dict.fromkeys(removed))
    return body


def _account_body(account: AccountSetup) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": account.id,
        "balance": plain(account.balance),
        "limits": _keys_body(account.limits),
    }
    if account.profile is not None:
        body["profile"] = account.profile
    return body


def _apply_risk_step(client: Client, step: Step) -> None:
    """A step of the risk keys (S9.7) or the blackouts (S9.5)."""
    if isinstance(step, SetLimits):
        body = _keys_body(step.limits, step.removed)
        client.call("PUT", _path("api", "accounts", step.account, "limits"), body)
    elif isinstance(step, SetAccountProfile):
        body = {"profile": step.profile}
        client.call("PUT", _path("api", "accounts", step.account, "limits"), body)
    elif isinstance(step, SetProfile):
        client.call("PUT", _path("api", "profiles", step.profile),
                    _keys_body(step.keys, step.removed))  # fmt: skip
    elif isinstance(step, DeleteProfile):
        client.call("DELETE", _path("api", "profiles", step.profile))
    elif isinstance(step, AddBlackout):
        b = step.blackout
        body = {"start": b.start.isoformat(), "end": b.end.isoformat(), "label": b.label}
        client.call("POST", "/api/blackouts", body)
    elif isinstance(step, RemoveBlackout):
        client.call("DELETE", f"/api/blackouts?key={quote(step.blackout.key(), safe='')}")


def apply_step(client: Client, step: Step) -> None:
    """One step, through the command the API (and the Cockpit) uses for it."""
    deletion = _deletion_path(step)
    if deletion is not None:
        client.call("DELETE", deletion)
    elif isinstance(step, AddConnection):
        accounts = [_account_body(a) for a in step.accounts]
        body = {"id": step.connection.id, "broker": step.connection.broker, "accounts": accounts}
        client.call("POST", "/api/connections", body)
    elif isinstance(step, AddGroup):
        followers = [_follower_body(f) for f in step.group.followers]
        body = {
            "id": step.group.id,
            "leader": step.group.leader,
            "followers": followers,
            "on_drift": step.group.on_drift.value,
        }
        client.call("POST", "/api/groups", body)
    elif isinstance(step, SetOnDrift):
        body = {"on_drift": step.on_drift.value}
        client.call("PATCH", _path("api", "groups", step.group), body)
    elif isinstance(step, AddFollower):
        path = _path("api", "groups", step.group, "followers")
        client.call("POST", path, _follower_body(step.follower))
    elif isinstance(step, SetFollower):
        change = _follower_body(step.follower)
        del change["account"]
        if step.follower.max_qty is None:
            change["clear_max_qty"] = True
        client.call("PATCH", _path("api", "groups", step.group, "followers", step.follower.account),
                    change)  # fmt: skip
    else:
        _apply_risk_step(client, step)


# --- the commands -------------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace, out: TextIO) -> int:
    wanted = file_setup(args.file)
    have, source = store_setup(args)
    plan = compare(wanted, have)
    if args.json:
        out.write(json.dumps(_json_plan(plan, source), indent=2) + "\n")
    else:
        show_differences(plan, args.file, source, out)
        if plan.steps:
            where = "" if args.data_dir == "data" else f" --data-dir {shlex.quote(args.data_dir)}"
            out.write(
                f"\nTo apply them: python -m engine setup apply {shlex.quote(args.file)}{where}\n"
            )
    return EXIT_DIFFERENT if plan.differences else EXIT_SAME


def cmd_apply(args: argparse.Namespace, out: TextIO) -> int:
    wanted = file_setup(args.file)
    client = connect_api(args)
    try:
        try:
            have = setup_of_api(client)
        except CliError as error:
            if error.code == EXIT_USAGE:
                raise CliError(
                    f"{error}; setup apply goes through the running engine: start it, then"
                    " apply again",
                    EXIT_USAGE,
                ) from None
            raise
        plan = compare(wanted, have)
        source = f"the engine running at {client.url}"
        show_differences(plan, args.file, source, out)
        if not plan.steps:
            return EXIT_DIFFERENT if plan.differences else EXIT_SAME
        _show_steps(client, plan, out)
        confirm(args, f"Apply these {len(plan.steps)} changes?", out)
        for step in plan.steps:
            try:
                apply_step(client, step)
            except CliError as error:
                raise CliError(
                    f"{step.describe()}: {error} (the changes above it are applied; nothing"
                    " after it)",
                    error.code,
                ) from None
            out.write(f"done: {step.describe()}\n")
    finally:
        client.close()
    if any(d.why_not for d in plan.differences):
        out.write("Some differences were left (above): the store keeps its values for them.\n")
        return EXIT_DIFFERENT
    return EXIT_SAME


def _show_steps(client: Client, plan: Plan, out: TextIO) -> None:
    out.write("\nThe changes, in this order:\n")
    for step in plan.steps:
        out.write(f"  {step.describe()}\n")
    for step in plan.deletions:
        path = _deletion_path(step)
        if path is None or isinstance(step, RemoveFollower):
            continue  # the follower's membership alone: its account and history stay
        out.write(f"\n{step.describe()} is immediate and removes:\n")
        describe_deletion(client.call("DELETE", f"{path}?dry_run=true"), out)


# --- arguments ----------------------------------------------------------------------------------


def add_commands(commands: Any) -> None:
    """Add ``setup`` and its actions to ``python -m engine``'s sub-parsers."""
    setup = commands.add_parser(
        COMMAND, help="the configuration file's setup against the store's: diff, apply"
    )
    actions = setup.add_subparsers(dest="action", required=True, metavar="diff|apply")
    p = actions.add_parser(
        "diff",
        help="list each key where the file's setup differs from the store's",
        description="List each key where FILE's setup ([[connections]], [[accounts]],"
        " [[groups]], [profiles.NAME], [[blackout]]) differs from the store's, with both"
        " values: through the running engine,"
        " or from the store file when none runs. Exit 0: the same; 1: they differ; 2: the"
        " file or the store cannot be read.",
    )
    p.add_argument("file", metavar="FILE", help="the configuration file, e.g. engine.toml")
    _common(p)  # with --json: the differences and the steps, as JSON
    p = actions.add_parser(
        "apply",
        help="make the store's setup the file's, through the running engine's API",
        description="Make the store's setup FILE's through the running engine's API (the"
        " Cockpit's commands): every change is shown first, with what each deletion removes,"
        " and asked (--yes: no question). A limit set or lowered takes effect at once. Exit 0:"
        " the store is the file's; 1: something was left or refused; 2: the file or the"
        " engine cannot be reached.",
    )
    p.add_argument("file", metavar="FILE", help="the configuration file, e.g. engine.toml")
    p.add_argument("--yes", action="store_true", help="apply without a question")
    _where(p)


def _where(parser: argparse.ArgumentParser) -> None:
    """The running engine, found as the other commands find it."""
    parser.add_argument("--data-dir", default="data", help="the engine's data directory (./data)")
    parser.add_argument("--url", default=None, help="the API's URL (default: from the data dir)")
    parser.add_argument("--token-file", default=None, help="default: DATA/api.token")


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        return cmd_diff(args, out) if args.action == "diff" else cmd_apply(args, out)
    except CliError as error:
        print(error, file=sys.stderr)
        return error.code


__all__ = [
    "COMMAND",
    "EXIT_DIFFERENT",
    "EXIT_SAME",
    "add_commands",
    "apply_step",
    "file_setup",
    "main",
    "setup_of_api",
    "store_setup",
]
