"""What the engine's applications share: configuration, logs, metrics, secrets, OAuth states,
the demo setup and market, and the broker wiring (Tradovate, and its local server)."""
