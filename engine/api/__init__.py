"""The control API and the Cockpit page: HTTP + JSON on Starlette, served by hypercorn's trio
worker inside the engine's own trio loop (``engine/live.py``)."""

from __future__ import annotations

from engine.api.app import OPERATIONS, build_app
from engine.api.context import ApiContext
from engine.api.events import EventHub

__all__ = ["OPERATIONS", "ApiContext", "EventHub", "build_app"]
