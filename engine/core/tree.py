"""The actor tree as setup changes and the supervisor handle it.

Every actor is built by one factory, always from the store (S7.2): spawning a new one and
restarting a failed one in place go through it alike. The engine hands this, not itself, to
what changes the tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.host.address import Address
from engine.host.base import Factory, Runtime


class ActorTree:
    def __init__(self, runtime: Runtime, factory: Callable[[Address], Factory]) -> None:
        self._runtime = runtime
        self.factory = factory

    def spawn(self, address: Address, placement: str) -> None:
        """Build the actor at ``address`` from the store, hosted with those of ``placement``."""
        self._runtime.spawn(address, self.factory(address), placement)

    def restart(self, address: Address) -> None:
        """Rebuild the actor at ``address`` from the store: same address, same mailbox."""
        self._runtime.restart(address, self.factory(address))

    def stop(self, address: Address) -> None:
        self._runtime.stop(address)

    def exists(self, address: Address) -> bool:
        return self._runtime.exists(address)

    def tell(self, to: Address, message: object) -> None:
        self._runtime.tell(to, message)

    def inspect(self, address: Address, reader: Callable[[Any], Any]) -> Any:
        """Run ``reader`` on the actor between its messages (None if there is no such actor)."""
        return self._runtime.inspect(address, reader)

    def view(self, address: Address) -> Any:
        """The view the actor last published (None if there is no such actor): never waits."""
        return self._runtime.view(address)


__all__ = ["ActorTree"]
