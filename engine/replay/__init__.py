"""Replaying scenario files against the engine on a virtual clock (SCENARIOS.md)."""
