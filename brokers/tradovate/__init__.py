"""The Tradovate adapter: REST + WebSocket + OAuth, behind the engine's broker interface.

Entry points:

- :class:`TradovateBroker` (``brokers.tradovate.broker``) — ``TradovateBroker(settings, clock)``
  is a :class:`brokers.base.Broker`; give it to ``Engine(brokers={"tradovate": broker})`` and run
  its trio side with ``async with broker.running():`` (or ``await nursery.start(broker.run)``)
  in the process's trio loop. Sessions created before that wait for it.
- :class:`TradovateSettings` (``brokers.tradovate.settings``) — hosts (``.demo(...)``,
  ``.live(...)``), the app registration (``client_id``, ``client_secret``) and ``token_dir``
  (where tokens are kept, 0600), plus pacing and timing knobs.
- OAuth (S1.2): ``broker.authorize_url(connection, state, redirect_uri)`` and
  ``await broker.exchange_code(connection, code, redirect_uri)``; the engine owns ``state``.
- ``brokers.tradovate.sim`` — a local Tradovate-compatible server (``serve_sim``) for tests,
  scenarios (``broker = "tradovate-sim"``), the bench and demos.

See docs/tradovate.md.
"""

from __future__ import annotations

from brokers.tradovate import redaction
from brokers.tradovate.broker import TradovateBroker
from brokers.tradovate.session import TradovateSession
from brokers.tradovate.settings import TradovateSettings

redaction.install()

__all__ = ["TradovateBroker", "TradovateSession", "TradovateSettings"]
