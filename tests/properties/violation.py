"""What an invariant check raises: the message says which step broke which rule, and the
``expect`` steps carried with it would catch the same in a scenario file (the machine writes them
after a shrunk failing sequence)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.replay.scenario import Expectation


class InvariantViolation(AssertionError):
    """An invariant does not hold after a step; ``expects`` would catch it in a scenario file."""

    def __init__(self, message: str, expects: Sequence[Expectation] = ()) -> None:
        super().__init__(message)
        self.expects = tuple(expects)
