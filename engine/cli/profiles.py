"""``python -m engine profiles | profile | blackouts``: the named risk profiles (S9.7), the one an
account uses, and the engine-wide blackouts (S9.5), through the running engine's API.

    python -m engine profiles                                  # every profile and its accounts
    python -m engine profiles show eval-50k
    python -m engine profiles set eval-50k max_loss=2500 max_loss_mode=eod_trailing \\
        commissions=ES:2.10,MES:0.60
    python -m engine profiles unset eval-50k commissions
    python -m engine profiles delete eval-50k                  # refused while an account uses it
    python -m engine profile DEMO-F1 eval-50k                  # or none
    python -m engine blackouts add 2026-03-12T07:25-05:00 2026-03-12T07:35-05:00 CPI
    python -m engine blackouts remove CPI                      # by label, or by the key listed

Exit codes as the other commands: 0 done, 1 the engine refused (its message is printed), 2 the
engine cannot be reached or the command line is wrong.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO
from urllib.parse import quote

from engine.cli.commands import (
    EXIT_USAGE,
    Client,
    CliError,
    Handler,
    _common,
    _path,
    risk_keys_table,
    run_handler,
)
from engine.cli.risk_text import (
    EXAMPLE,
    RiskArgumentError,
    check_names,
    chicago,
    keys_text,
    parse_assignments,
    value_text,
)
from engine.cli.tables import table

COMMANDS = ("profiles", "profile", "blackouts")
NONE = "none"


def _name(args: argparse.Namespace) -> str:
    if not args.name:
        raise CliError(f"profiles {args.action} needs the profile's NAME", EXIT_USAGE)
    return str(args.name)


def profiles_table(profiles: list[dict[str, Any]], out: TextIO) -> None:
    rows = [(p["name"], ", ".join(p["accounts"]), keys_text(p["limits"])) for p in profiles]
    table(rows, ("PROFILE", "ACCOUNTS", "KEYS"), out)


def profile_text(profile: dict[str, Any], out: TextIO) -> None:
    rows = [(k, value_text(v)) for k, v in profile["limits"].items()]
    out.write(f"profile {profile['name']}: used by {', '.join(profile['accounts']) or 'none'}\n")
    table(rows, ("KEY", "VALUE"), out)


def _change(args: argparse.Namespace) -> dict[str, Any]:
    """The body of ``profiles set`` (KEY=VALUE ...) or ``profiles unset`` (KEY ...)."""
    try:
        if args.action == "set":
            if not args.keys:
                raise RiskArgumentError(f"profiles set needs KEY=VALUE, {EXAMPLE}")
            return parse_assignments(args.keys)
        if not args.keys:
            raise RiskArgumentError("profiles unset needs the KEYs to remove")
        return dict.fromkeys(check_names(args.keys))
    except RiskArgumentError as error:
        raise CliError(str(error), EXIT_USAGE) from None


def cmd_profiles(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    action = args.action or "list"
    if action == "list":
        profiles = client.call("GET", "/api/profiles")
        if not args.json:
            profiles_table(profiles, out)
        return profiles
    path = _path("api", "profiles", _name(args))
    if action in ("show", "delete") and args.keys:
        raise CliError(f"profiles {action} takes only the NAME", EXIT_USAGE)
    if action == "delete":
        answer = client.call("DELETE", path)
        if not args.json:
            out.write(f"{answer['message']}\n")
        return answer
    if action == "show":
        profile = client.call("GET", path)
    else:
        profile = client.call("PUT", path, _change(args))
    if not args.json:
        profile_text(profile, out)
    return profile


def cmd_profile(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    """The profile an account uses (``none``: no profile); its own keys stay."""
    chosen = None if args.name.lower() == NONE else args.name
    limits = client.call("PUT", _path("api", "accounts", args.account, "limits"),
                         {"profile": chosen})  # fmt: skip
    if not args.json:
        risk_keys_table(limits, out)
    return limits


def blackouts_table(blackouts: list[dict[str, Any]], out: TextIO) -> None:
    rows = [
        (b["label"], chicago(b["start"]), chicago(b["end"]), "RUNNING" if b["active"] else "",
         b["key"])
        for b in blackouts
    ]  # fmt: skip
    table(rows, ("LABEL", "START", "END", "NOW", "KEY"), out)


def _blackout_key(client: Client, given: str) -> str:
    """``given`` is a key as listed, or the label of exactly one blackout."""
    blackouts = client.call("GET", "/api/blackouts")
    if any(b["key"] == given for b in blackouts):
        return given
    labelled: list[str] = [b["key"] for b in blackouts if b["label"] == given]
    if len(labelled) == 1:
        return labelled[0]
    if labelled:
        raise CliError(
            f"{len(labelled)} blackouts are labelled {given!r}: give the KEY of one:"
            f" {', '.join(labelled)}",
            EXIT_USAGE,
        )
    raise CliError(f"no blackout {given!r} (python -m engine blackouts lists them)")


def cmd_blackouts(client: Client, args: argparse.Namespace, out: TextIO) -> Any:
    action = args.action or "list"
    if action == "list":
        if args.values:
            raise CliError("blackouts list takes no more arguments", EXIT_USAGE)
        blackouts = client.call("GET", "/api/blackouts")
        if not args.json:
            blackouts_table(blackouts, out)
        return blackouts
    if action == "add":
        if len(args.values) < 3:
            raise CliError(
                "blackouts add needs START END LABEL, each time with its UTC offset, e.g."
                " 2026-03-12T07:25-05:00 2026-03-12T07:35-05:00 CPI",
                EXIT_USAGE,
            )
        start, end, *label = args.values
        body = {"start": start, "end": end, "label": " ".join(label)}
        added = client.call("POST", "/api/blackouts", body)
        if not args.json:
            blackouts_table([added], out)
        return added
    if len(args.values) != 1:
        raise CliError("blackouts remove needs one LABEL or KEY", EXIT_USAGE)
    key = _blackout_key(client, args.values[0])
    answer = client.call("DELETE", f"/api/blackouts?key={quote(key, safe='')}")
    if not args.json:
        out.write(f"{answer['message']}\n")
    return answer


HANDLERS: dict[str, Handler] = {
    "profiles": cmd_profiles,
    "profile": cmd_profile,
    "blackouts": cmd_blackouts,
}


def add_commands(commands: Any) -> None:
    """Add ``profiles``, ``profile`` and ``blackouts`` to ``python -m engine``'s sub-parsers."""
    p = commands.add_parser(
        "profiles",
        help="list, show, set, unset or delete named risk profiles (S9.7)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", nargs="?", choices=("list", "show", "set", "unset", "delete"))
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument(
        "keys",
        nargs="*",
        metavar="KEY=VALUE|KEY",
        help=f"set: {EXAMPLE} (KEY=off turns one off); unset: the KEYs to remove",
    )
    _common(p)

    p = commands.add_parser(
        "profile", help="choose the named risk profile an account uses (none: no profile)"
    )
    p.add_argument("account")
    p.add_argument("name", metavar="NAME|none")
    _common(p)

    p = commands.add_parser(
        "blackouts",
        help="list, add or remove blackout intervals (S9.5)",
        description="add START END LABEL: ISO instants with their UTC offset; remove LABEL or"
        " KEY (as listed).",
    )
    p.add_argument("action", nargs="?", choices=("list", "add", "remove"))
    p.add_argument("values", nargs="*", metavar="START END LABEL | LABEL|KEY")
    _common(p)


def main(args: argparse.Namespace, out: TextIO | None = None, client: Client | None = None) -> int:
    return run_handler(HANDLERS[args.command], args, out, client)


__all__ = ["COMMANDS", "add_commands", "blackouts_table", "main", "profiles_table"]
