"""Failure injection: the ``crash`` scenario step makes an actor raise inside a handler."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InjectedFailure:
    """Told to an actor: raise :class:`InjectedFailureError` while handling this message."""


class InjectedFailureError(RuntimeError):
    """Raised on purpose by an actor that received :class:`InjectedFailure`."""


def fail(actor: str) -> None:
    raise InjectedFailureError(f"injected failure in {actor}")
