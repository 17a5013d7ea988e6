"""The command line (``python -m engine status`` …): a client of a running engine's control API."""
