"""The live process (``python -m engine run``): the engine, its brokers, the control API and the
simulated market in one trio loop, until Ctrl-C or SIGTERM."""
