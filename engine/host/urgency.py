"""Messages that must not wait behind bookkeeping: a tick that may breach, a liquidation.

A thread hands out its actors' messages in the order they came. A message that is
:class:`Urgent` (and says so for this instance) goes ahead of that queue, with every earlier
message to its own actor taken out of the queue before it: no message ever overtakes another to
the same actor; only messages to other actors wait. The deterministic runtime keeps one FIFO,
urgent or not (its replays are a fixed order, and its time does not pass while it works). See
decision 0030.
"""

from __future__ import annotations


class Urgent:
    """A message its thread hands out before the messages of other actors waiting there."""

    __slots__ = ()

    @property
    def urgent(self) -> bool:
        """Whether this message is urgent; a message type that is urgent only sometimes says
        which with a field of this name."""
        return True


def is_urgent(message: object) -> bool:
    return isinstance(message, Urgent) and message.urgent
