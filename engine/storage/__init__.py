"""What survives a crash: the SQLite store and the durable state actors are rebuilt from, the
records (activity, order ledger, reconciliations), the intent, fan-out and status logs, the
journal, start-up recovery and the data directory."""
