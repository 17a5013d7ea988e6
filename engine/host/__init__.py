"""Two runtimes hosting the same actor behaviours: deterministic (one FIFO) and threads (pykka)."""

from engine.host.address import Address
from engine.host.base import ActorContext, Behaviour, Runtime, Services
from engine.host.deterministic import DeterministicRuntime
from engine.host.threads import ThreadsRuntime

__all__ = [
    "ActorContext",
    "Address",
    "Behaviour",
    "DeterministicRuntime",
    "Runtime",
    "Services",
    "ThreadsRuntime",
]


def make_runtime(kind: str, services: Services, threads: int = 0) -> Runtime:
    if kind == "deterministic":
        return DeterministicRuntime(services)
    if kind == "threads":
        return ThreadsRuntime(services, threads)
    raise ValueError(f"unknown runtime {kind!r}: expected 'deterministic' or 'threads'")
