"""An actor's address: a stable id, ``(kind, id)`` such as ``("account", "F1")``, so a restarted
actor keeps its address and its mailbox. The runtimes deliver to it and the market nudges it."""

from __future__ import annotations

Address = tuple[str, str]

__all__ = ["Address"]
