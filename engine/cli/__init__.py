"""The command line (``python -m engine status`` …): a client of a running engine's control API;
and ``backup`` and ``restore`` of a data directory, which work on its files."""
