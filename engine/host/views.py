"""What the actors show readers outside them: each actor's latest view, read without touching
the actor or its mailbox.

An actor that has a ``view()`` method (an immutable value: a frozen dataclass) publishes it here
after every batch of messages it handled — the runtime calls it once its queue is empty, after
the batch's deferred work — and when it is spawned or restarted. A reader (the API, the metrics,
the replay checks) gets the last published value with a dictionary lookup: it never waits for an
actor's messages, however many are queued, nor for a handler that is blocked in a broker call.

What a reader sees is the actor's state as it was between two of its messages, at most one batch
old; once the engine is idle (``Runtime.wait_idle``) every view is the actor's current one, as
``Runtime.inspect`` would read it. Writers take a lock so a view of a replaced or stopped actor is
never published after its successor's; readers take none (one ``dict`` lookup is atomic).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import structlog

from engine.host.address import Address

log = structlog.get_logger("engine.host")


def view_of(behaviour: object) -> Any:
    """The behaviour's view, or ``None`` when it has none (or failed to make it)."""
    make = getattr(behaviour, "view", None)
    if make is None:
        return None
    try:
        return make()
    except Exception as error:  # a broken view must never break message delivery
        log.error("actor view failed", behaviour=type(behaviour).__name__, error=repr(error))
        return None


class Views:
    def __init__(self) -> None:
        self._views: dict[Address, Any] = {}
        self._owners: dict[Address, object] = {}  # the behaviour whose views stand
        self._lock = threading.Lock()

    def get(self, address: Address) -> Any:
        """The last view the actor at ``address`` published (``None``: no such actor)."""
        return self._views.get(address)

    def own(self, address: Address, behaviour: object) -> None:
        """A behaviour now lives at ``address`` (spawned, or restarted in place): its views are
        the ones that stand, starting with the one it has now."""
        view = view_of(behaviour)
        with self._lock:
            self._owners[address] = behaviour
            if view is None:
                self._views.pop(address, None)
            else:
                self._views[address] = view

    def publish(self, handled: Iterable[tuple[Address, object]]) -> None:
        """After a batch: the view of each actor that handled messages in it."""
        made = [(address, b, view_of(b)) for address, b in handled]
        with self._lock:
            owners, views = self._owners, self._views
            for address, behaviour, view in made:
                if view is not None and owners.get(address) is behaviour:
                    views[address] = view

    def drop(self, address: Address) -> None:
        with self._lock:
            self._owners.pop(address, None)
            self._views.pop(address, None)

    def clear(self) -> None:
        with self._lock:
            self._owners.clear()
            self._views.clear()


__all__ = ["Views", "view_of"]
