"""``python -m engine status | connections | accounts | groups | limits | flatten | lock | unlock |
activity``: the control API from a terminal — readable tables for a person, ``--json`` for
scripts (the API's own JSON, unchanged).

The engine is found through its data directory: ``DATA/api.url`` (written by a running engine)
and ``DATA/api.token``; ``--url`` and ``--token-file`` (or ``MIMIK_URL`` and ``MIMIK_TOKEN``)
override them. Deleting, and flattening everything, ask for confirmation on a terminal after
showing what would happen (decision 0004); ``--yes`` skips the question (and is required when
no one is there to answer).

Exit codes: 0 done, 1 the engine refused or failed (its message is printed), 2 the engine
cannot be reached or the command line is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlencode

import httpx

from engine.app.config import DEFAULT_PORT
from engine.cli.limit_table import limits_table, rules_table
from engine.cli.risk_text import (
    EXAMPLE,
    RiskArgumentError,
    blackout_text,
    check_names,
    keys_text,
    parse_assignments,
    value_text,
)
from engine.cli.tables import (
    accounts_table,
    activity_line,
    activity_table,
    connections_table,
    describe_deletion,
    drift_table,
    groups_table,
    positions_text,
    table,
)
from engine.storage.datadir import read_url

MAX_LOSS = "max_loss"
EXIT_REFUSED = 1
EXIT_USAGE = 2
TIMEOUT = 15.0
COMMANDS = ("status", "connections", "accounts", "groups", "limits", "flatten", "lock", "unlock")
ALL_COMMANDS = (*COMMANDS, "activity")


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


# --- talking to the engine ----------------------------------------------------------------------


class Client:
    def __init__(
        self,
        url: str,
        token: str,
        transport: httpx.BaseTransport | None = None,
        *,
        token_source: str = "",
    ) -> None:
        self.url = url.rstrip("/")
        self.token_source = token_source  # where the token was read, for a refused one
        self.http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
            transport=transport,
        )

    def call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = self.http.request(method, path, json=body)
        except httpx.HTTPError as error:
            raise CliError(f"cannot reach the engine at {self.url}: {error}", EXIT_USAGE) from None
        try:
            data = response.json()
        except ValueError:
            data = {"message": response.text}
        if response.status_code >= 400:
            message = data.get("message") if isinstance(data, dict) else None
            if response.status_code == 401:
                raise CliError(self._refused_token(message))
            raise CliError(f"{response.status_code}: {message or response.reason_phrase}")
        return data

    def _refused_token(self, message: str | None) -> str:
        """A 401: the token was sent and not taken; say where it came from, so the user knows
        which file or variable to mend (a missing token never gets this far)."""
        source = f" (read from {self.token_source})" if self.token_source else ""
        return f"401: token not accepted by the engine at {self.url}{source}: {message or ''}"

    def stream(self, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Server-Sent Events as (kind, data), until interrupted."""
        try:
            with self.http.stream("GET", path, timeout=httpx.Timeout(TIMEOUT, read=None)) as r:
                if r.status_code == 401:
                    raise CliError(self._refused_token("the event stream was refused"))
                if r.status_code >= 400:
                    raise CliError(f"{r.status_code}: the event stream was refused")
                kind, data = "message", ""
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].strip()
                    elif not line and data:
                        yield kind, json.loads(data)
                        kind, data = "message", ""
        except httpx.HTTPError as error:
            raise CliError(f"the event stream broke: {error}", EXIT_USAGE) from None

    def close(self) -> None:
        self.http.close()


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


def connect(args: argparse.Namespace) -> Client:
    data_dir = Path(args.data_dir)
    url = args.url or os.environ.get("MIMIK_URL") or read_url(data_dir)
    if not url:
        url = f"http://127.0.0.1:{DEFAULT_PORT}"
    token = os.environ.get("MIMIK_TOKEN", "").strip()
    token_file = Path(args.token_file) if args.token_file else data_dir / "api.token"
    source = "the environment variable MIMIK_TOKEN" if token else str(token_file)
    if not token:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise CliError(
                f"no API token: cannot read {token_file} ({error.strerror or error});"
                " pass --data-dir, --token-file or set MIMIK_TOKEN",
                EXIT_USAGE,
            ) from None
    return Client(url, token, token_source=source)


# --- confirmation -------------------------------------------------------------------------------


def confirm(args: argparse.Namespace, question: str, out: TextIO) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CliError("not confirmed: pass --yes to do this without a question", EXIT_USAGE)
    out.write(f"{question} [y/N] ")
    out.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise CliError("cancelled, nothing done", EXIT_REFUSED)


# --- commands -----------------------------------------------------------------------------------

Handler = Callable[[Client, argparse.Namespace, TextIO], Any]


def cmd_status(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    status = client.call("GET", "/api/status")
    connections = client.call("GET", "/api/connections")
    accounts = client.call("GET", "/api/accounts")
    if args.json:
        return {"status": status, "connections": connections, "accounts": accounts}
    state = "stopping" if status["stopping"] else "running"
    out.write(
        f"engine {status['version']} {state} at {client.url} since {status['started_at'][:19]}"
        f" — {status['connections']} connections, {status['accounts']} accounts,"
        f" {status['groups']} groups\n\n"
    )
    connections_table(connections, out)
    out.write("\n")
    accounts_table(accounts, out)
    out.write("\n")
    limits_table(accounts, out)
    out.write("\n")
    rules_table(accounts, out)
    if any(a.get("drift") for a in accounts):
        out.write("\n")
        drift_table(accounts, out)
    return None


def cmd_connections(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    action = args.action or "list"
    if action == "list":
        connections = client.call("GET", "/api/connections")
        if not args.json:
            connections_table(connections, out)
        return connections
    ident = _need(args, "id")
    base = _path("api", "connections", ident)
    if action == "add":
        accounts = []
        for spec in args.account or []:
            account, _, balance = spec.partition("=")
            accounts.append({"id": account, **({"balance": balance} if balance else {})})
        body = {"id": ident, "broker": args.broker, "accounts": accounts}
        return _done(client.call("POST", "/api/connections", body), args, out,
                     f"connection {ident} added")  # fmt: skip
    if action in ("offline", "reconnect"):
        return _done(client.call("POST", f"{base}/{action}"), args, out)
    if action == "reauthorize":
        answer = client.call("POST", f"{base}/reauthorize")
        if not args.json:
            out.write(
                f"Open this URL in a browser to re-authorize {ident}:\n{answer['authorize_url']}\n"
            )
        return answer
    if action == "delete":
        return _delete(client, args, out, f"connection {ident}", base)
    raise CliError(f"unknown action {action!r}", EXIT_USAGE)


def cmd_accounts(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    action = args.action or "list"
    if action == "list":
        accounts = client.call("GET", "/api/accounts")
        if not args.json:
            accounts_table(accounts, out)
            out.write("\n")
            rules_table(accounts, out)
        return accounts
    ident = _need(args, "id")
    base = _path("api", "accounts", ident)
    if action == "show":
        account = client.call("GET", base)
        if not args.json:
            for key, value in account.items():
                out.write(f"{key:<18} {_shown(key, value)}\n")
        return account
    if action == "delete":
        return _delete(client, args, out, f"account {ident}", base)
    raise CliError(f"unknown action {action!r}", EXIT_USAGE)


def _shown(key: str, value: Any) -> Any:
    if key == "positions":
        return positions_text(value)
    if key in ("limits", "effective"):
        return keys_text(value)
    if key == "blackout":
        return blackout_text(value) if value else None
    if key == "drift":
        return positions_text(value) if value else "none"
    return value


def cmd_groups(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    action = args.action or "list"
    if action == "list":
        groups = client.call("GET", "/api/groups")
        if not args.json:
            groups_table(groups, out)
        return groups
    ident = _need(args, "id")
    base = _path("api", "groups", ident)
    if action == "create":
        if not args.leader:
            raise CliError("groups create needs --leader ACCOUNT", EXIT_USAGE)
        body = {
            "id": ident,
            "leader": args.leader,
            "followers": [_terms(args, a) for a in args.follower or []],
        }
        if args.on_drift is not None:
            body["on_drift"] = args.on_drift
        return _done(client.call("POST", "/api/groups", body), args, out, f"group {ident} created")
    if action == "set":
        if args.on_drift is None:
            raise CliError("groups set needs --on-drift alert|reduce", EXIT_USAGE)
        changed = client.call("PATCH", base, {"on_drift": args.on_drift})
        return _done(changed, args, out, f"group {ident}: on_drift {args.on_drift}")
    if action == "delete":
        return _delete(client, args, out, f"group {ident}", base)
    account = _need(args, "account")
    if action == "add-follower":
        body = _terms(args, account)
        return _done(client.call("POST", f"{base}/followers", body), args, out,
                     f"{account} follows {ident}")  # fmt: skip
    if action == "set-follower":
        # Only the terms given change: a mode switched alone keeps the ratio and the map.
        body = {k: v for k, v in _terms(args, account).items() if k != "account"}
        if args.ratio is None:
            body.pop("ratio")
        if not args.map:
            body.pop("symbol_map")
        if not body:
            raise CliError(
                "groups set-follower needs --ratio, --max-qty, --map or --copy", EXIT_USAGE
            )
        return _done(client.call("PATCH", f"{base}/followers/{quote(account, safe='')}", body),
                     args, out, f"{account}: terms saved")  # fmt: skip
    if action == "remove-follower":
        return _done(
            client.call("DELETE", f"{base}/followers/{quote(account, safe='')}"), args, out
        )
    raise CliError(f"unknown action {action!r}", EXIT_USAGE)


def _terms(args: argparse.Namespace, account: str) -> dict[str, Any]:
    symbol_map = {}
    for pair in args.map or []:
        if pair.lower() == "none":  # --map none: no map
            continue
        source, sep, target = pair.partition("=")
        if not sep:
            raise CliError(f"--map {pair!r}: expected ROOT=ROOT, e.g. ES=MES", EXIT_USAGE)
        symbol_map[source.upper()] = target.upper()
    body: dict[str, Any] = {
        "account": account,
        "ratio": "1" if args.ratio is None else args.ratio,
        "symbol_map": symbol_map,
    }
    if args.max_qty is not None:
        body["max_qty"] = args.max_qty
    if args.copy is not None:
        body["copy"] = args.copy
    return body


def cmd_limits(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    """S5.2/S9: show the account's risk keys, or set (``KEY=VALUE``) and remove (``--unset``,
    so its profile's value applies) its own."""
    base = _path("api", "accounts", args.account, "limits")
    try:
        body: dict[str, Any] = parse_assignments(args.set)
        body.update(dict.fromkeys(check_names(args.unset or []), None))
    except RiskArgumentError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    limits = client.call("PUT", base, body) if body else client.call("GET", base)
    if not args.json:
        risk_keys_table(limits, out)
    return limits


def risk_keys_table(limits: dict[str, Any], out: TextIO) -> None:
    """Every key in force, and whether the account's own or its profile's."""
    own = limits["limits"]
    profile = limits.get("profile")
    rows = [
        (name, value_text(value), "own" if name in own else f"profile {profile}")
        for name, value in limits["effective"].items()
    ]
    out.write(f"{limits['account']}: profile {profile or 'none'}\n")
    table(rows, ("KEY", "VALUE", "FROM"), out)
    off = limits.get("triggers_off") or []
    resets = [t for t in off if t != MAX_LOSS]
    if resets:
        out.write(f"off until the next reset: {', '.join(resets)}\n")
    if MAX_LOSS in off:  # S9.3: no reset clears it
        out.write("max_loss: off until it is set again (unlocked by hand)\n")


def cmd_flatten(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    if args.scope == "all":
        confirm(args, "Flatten every account (liquidate everything, cancel every order)?", out)
        return _done(client.call("POST", "/api/flatten"), args, out)
    ident = _need(args, "id")
    kind = "accounts" if args.scope == "account" else "groups"
    return _done(client.call("POST", _path("api", kind, ident, "flatten")), args, out)


def cmd_lock(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _done(
        client.call("POST", _path("api", "accounts", args.account, args.command)), args, out
    )


def cmd_activity(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    query = {
        k: v
        for k, v in {
            "account": args.account,
            "connection": args.connection,
            "level": args.level,
            "kind": args.kind,
            "fill": args.fill,
            "since": args.since,
            "until": args.until,
            "before": args.before,
            "limit": args.limit,
        }.items()
        if v is not None
    }
    page = client.call("GET", f"/api/activity?{urlencode(query)}")
    if args.json and not args.follow:
        return page
    widths: list[int] = []
    if not args.json:
        widths = activity_table(list(reversed(page["items"])), out)
    if args.follow:
        # The stream carries every entry; the live part keeps to the same filters as the
        # history part (the ones that mean something live: who, level, kind and leader fill).
        live = ("account", "connection", "level", "kind", "fill")
        wanted = {k: query[k] for k in live if k in query}
        for kind, data in client.stream("/api/events"):
            if kind != "activity" or any(data.get(k) != v for k, v in wanted.items()):
                continue
            out.write((json.dumps(data) if args.json else activity_line(data, widths)) + "\n")
            out.flush()
    return None


def _need(args: argparse.Namespace, name: str) -> str:
    value: str | None = getattr(args, name, None)
    if not value:
        raise CliError(f"this action needs {name.upper()}", EXIT_USAGE)
    return value


def _done(answer: Any, args: argparse.Namespace, out: TextIO, text: str | None = None) -> Any:
    if not args.json:
        message = answer.get("message") if isinstance(answer, dict) else None
        out.write(f"{text or message or 'done'}\n")
    return answer


def _delete(client: Client, args: argparse.Namespace, out: TextIO, what: str, base: str) -> Any:
    plan = client.call("DELETE", f"{base}?dry_run=true")
    if args.dry_run:
        if not args.json:
            out.write(f"Deleting {what} would remove:\n")
            describe_deletion(plan, out)
        return plan
    if not args.json or not args.yes:
        out.write(f"Deleting {what} is immediate and removes:\n")
        describe_deletion(plan, out)
    confirm(args, f"Delete {what}?", out)
    return _done(client.call("DELETE", base), args, out, f"{what} deleted")


HANDLERS: dict[str, Handler] = {
    "status": cmd_status,
    "connections": cmd_connections,
    "accounts": cmd_accounts,
    "groups": cmd_groups,
    "limits": cmd_limits,
    "flatten": cmd_flatten,
    "lock": cmd_lock,
    "unlock": cmd_lock,
    "activity": cmd_activity,
}


# --- arguments ----------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default="data", help="the engine's data directory (./data)")
    parser.add_argument("--url", default=None, help="the API's URL (default: from the data dir)")
    parser.add_argument("--token-file", default=None, help="default: DATA/api.token")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")


def add_commands(commands: Any) -> None:
    """Add the client commands to ``python -m engine``'s sub-parsers."""
    p = commands.add_parser("status", help="the engine, its connections and accounts")
    _common(p)

    p = commands.add_parser(
        "connections", help="list, add, offline, reconnect, reauthorize, delete"
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=("list", "add", "offline", "reconnect", "reauthorize", "delete"),
    )
    p.add_argument("id", nargs="?")
    p.add_argument("--broker", default="paper")
    p.add_argument("--account", action="append", metavar="ID[=BALANCE]", help="with add; repeat")
    p.add_argument("--dry-run", action="store_true", help="with delete: show, remove nothing")
    p.add_argument("--yes", action="store_true", help="with delete: no question")
    _common(p)

    p = commands.add_parser("accounts", help="list, show, delete")
    p.add_argument("action", nargs="?", choices=("list", "show", "delete"))
    p.add_argument("id", nargs="?")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--yes", action="store_true")
    _common(p)

    _add_group_commands(commands)


def _add_group_commands(commands: Any) -> None:
    p = commands.add_parser("groups", help="list, create, delete, add/set/remove followers")
    p.add_argument(
        "action",
        nargs="?",
        choices=(
            "list",
            "create",
            "set",
            "delete",
            "add-follower",
            "set-follower",
            "remove-follower",
        ),
    )
    p.add_argument("id", nargs="?", help="the group")
    p.add_argument("account", nargs="?", help="the follower")
    p.add_argument("--leader")
    p.add_argument("--follower", action="append", help="with create: a follower at ratio 1")
    p.add_argument("--ratio", help="default 1 for a new follower; set-follower: unchanged")
    p.add_argument("--max-qty", type=int, default=None)
    p.add_argument(
        "--map",
        action="append",
        metavar="ROOT=ROOT",
        help="symbol map, e.g. ES=MES (none: no map); set-follower: unchanged if not given",
    )
    p.add_argument(
        "--copy",
        choices=("fills", "orders"),
        help="copy the leader's fills as market orders (the default for a new follower) or"
        " mirror its working orders and brackets (S8)",
    )
    p.add_argument(
        "--on-drift",
        choices=("alert", "reduce"),
        help="create, set: when a follower drifts from its leader, alert only (the default) or"
        " also reduce it toward its expected position, flatten-only (S10.2)",
    )
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--yes", action="store_true")
    _common(p)

    _add_risk_commands(commands)


def _add_risk_commands(commands: Any) -> None:
    p = commands.add_parser(
        "limits",
        help="show, set or remove an account's own risk keys (S5.2, S9)",
        description="KEY=VALUE sets one of the account's own keys: daily_loss_limit=1000,"
        " max_loss=2500, max_loss_mode=eod_trailing, flatten_at=15:10, blackout=block,"
        " commissions=ES:2.10,MES:0.60 ...; KEY=off turns it off (0 for a number); --unset KEY"
        " removes the account's own key so its profile's applies (python -m engine profile"
        " ACCOUNT NAME chooses the profile).",
    )
    p.add_argument("account")
    p.add_argument("set", nargs="*", metavar="KEY=VALUE", help=EXAMPLE)
    p.add_argument(
        "--unset", action="append", metavar="KEY", help="remove an own key; repeat for more"
    )
    _common(p)

    p = commands.add_parser("flatten", help="flatten an account, a group, or all")
    p.add_argument("scope", choices=("account", "group", "all"))
    p.add_argument("id", nargs="?")
    p.add_argument("--yes", action="store_true", help="with all: no question")
    _common(p)

    for name, text in (("lock", "lock an account (manual)"), ("unlock", "unlock an account")):
        p = commands.add_parser(name, help=text)
        p.add_argument("account")
        _common(p)

    p = commands.add_parser("activity", help="the activity log; --follow for live")
    p.add_argument("--account")
    p.add_argument("--connection")
    p.add_argument("--level", choices=("info", "warning", "error"))
    p.add_argument("--kind")
    p.add_argument(
        "--fill", metavar="KEY", help="one leader fill's entries (LEADER:fill id, as shown)"
    )
    p.add_argument("--since", help="ISO instant with offset")
    p.add_argument("--until")
    p.add_argument("--before", type=int)
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--follow", "-f", action="store_true", help="then print new entries live")
    _common(p)


def run_handler(
    handler: Handler,
    args: argparse.Namespace,
    out: TextIO | None = None,
    client: Client | None = None,
    *,
    interrupted: str | None = None,
) -> int:
    """One command against the running engine: connect, run ``handler``, print its result as
    JSON with ``--json``; a failure is one line on stderr and its exit code. Ctrl-C ends it with
    0, or with ``interrupted`` printed and the refused code when the command was asking."""
    out = out or sys.stdout
    try:
        client = client or connect(args)
    except CliError as error:
        print(error, file=sys.stderr)
        return error.code
    try:
        result = handler(client, args, out)
        if args.json and result is not None:
            out.write(json.dumps(result, indent=2) + "\n")
    except CliError as error:
        print(error, file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        if interrupted is None:
            return 0
        print(f"\n{interrupted}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        client.close()
    return 0


def main(args: argparse.Namespace, out: TextIO | None = None, client: Client | None = None) -> int:
    return run_handler(HANDLERS[args.command], args, out, client)


__all__ = ["ALL_COMMANDS", "CliError", "Client", "Handler", "add_commands", "main", "run_handler"]
