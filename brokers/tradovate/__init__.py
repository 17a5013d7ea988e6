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
- What a session tells the engine besides orders, fills and its state: ``SnapshotFailed`` (a sync
  answer that is unknown: never an empty account), ``FillCorrected`` (a fill the broker
  withdrew), ``PricesUnavailable``/``PricesRestored`` (a refused quote subscription).
- The faults Tradovate's API has (penalty tickets anywhere, 423/429, 401, budgets per login and
  per host, split sync answers, pushed arrays, duplicate and withdrawn fills, broker-ended
  sockets) and how each is handled: docs/tradovate.md, "How each fault is handled".
- ``brokers.tradovate.sim`` — a local Tradovate-compatible server (``serve_sim``) for tests,
  scenarios (``broker = "tradovate-sim"``), the bench and demos.

Inside, imports point one way: ``broker`` → ``session`` → ``snapshots`` → ``stream``, and
``broker``, ``session`` → ``market_data``. A part takes a protocol of what it uses of the part
that made it (``SessionHost``, ``MarketDataHost``, ``StreamOwner``, ``SyncOwner``,
``LinkOwner``), never the part itself.

See docs/tradovate.md.
"""

from __future__ import annotations

from brokers.tradovate import redaction
from brokers.tradovate.broker import TradovateBroker
from brokers.tradovate.session import TradovateSession
from brokers.tradovate.settings import TradovateSettings

redaction.install()

__all__ = ["TradovateBroker", "TradovateSession", "TradovateSettings"]
