"""Stable actor addresses: an actor keeps its address across restarts."""

from __future__ import annotations

from engine.host.address import Address


def connection(connection_id: str) -> Address:
    return ("connection", connection_id)


def account(account_id: str) -> Address:
    return ("account", account_id)


def risk(account_id: str) -> Address:
    return ("risk", account_id)


def group(group_id: str) -> Address:
    return ("group", group_id)
