"""Which capabilities the replay harness can exercise; a scenario needing one that is off is
refused as "not supported yet" (exit 2) rather than run with wrong results."""

RISK_TRIGGERS = True
