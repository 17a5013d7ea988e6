"""The messages each actor receives, one module per receiving actor: frozen dataclasses, no
behaviour. A sender imports the receiver's module; actor modules hold behaviours only."""
