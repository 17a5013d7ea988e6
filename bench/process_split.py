"""What a second process for the logins' connection actors would give (decision 0027).

The idea: the connection actors (intent log, broker calls, the broker's events coming in) run
in a second process, so their work leaves the engine's interpreter lock; the engine process and
that one exchange msgpack frames over a pipe — the orders to place one way, the broker's events
the other. It pays only if the engine process saves more per order than the crossing costs it.

Measured here, per follower order, on the paper broker, in batches of a login's 20 orders:

- ``moved_us``: what would leave the engine process — the batch's intent write and the
  broker calls, with the events they produce handed to a sink;
- ``crossing_us``: what the engine process would pay instead — the order encoded and framed,
  the events of its fill (accepted, fill, done) decoded and rebuilt as objects, with the
  event codec the journal already uses;
- ``round_trip_us``: the wall time of a batch sent to a real child process over a pipe, which
  decodes it and answers with the batch's events, per order.

    .venv/bin/python -m bench.process_split [--batches 500]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgpack

from bench.results import update_results
from brokers.base import BrokerEvent, OrderRequest
from brokers.clock import WallClock
from brokers.instruments import ContractTable
from brokers.paper import PaperBroker
from engine.domain.ledger import LedgerRow
from engine.storage import event_codec
from engine.storage.records import Records
from engine.storage.store import Store

SYMBOL = "ESZ6"
PER_LOGIN = 20


def _order_frame(order: OrderRequest) -> list[Any]:
    """An order as plain data: what the engine process would send."""
    return [order.client_order_id, order.account, order.symbol, order.qty, order.order_type.value]


def _echo(pipe: Connection) -> None:
    """The second process: takes a batch of orders and answers with its events."""
    while True:
        blob = pipe.recv_bytes()
        if not blob:
            return
        orders = msgpack.unpackb(blob)
        pipe.send_bytes(
            msgpack.packb([[order[0], "accepted", "filled", "done"] for order in orders])
        )


def measure(batches: int, tmp: Path) -> dict[str, float]:
    clock = WallClock()
    paper = PaperBroker(clock, ContractTable())
    accounts = tuple(f"F{i}" for i in range(PER_LOGIN))
    paper.add_accounts("p", accounts)
    events: list[BrokerEvent] = []
    session = paper.session("p", accounts, events.append)
    paper.set_price(SYMBOL, Decimal(5000))
    store = Store(tmp / "split.sqlite")
    records = Records(store, clock)

    moved = 0
    recorded: list[Any] = []
    for n in range(batches):
        side = 1 if n % 2 == 0 else -1
        orders = [OrderRequest(f"C{n}-{i}", f"F{i}", SYMBOL, side) for i in range(PER_LOGIN)]
        rows = [
            LedgerRow(o.client_order_id, o.account, "p", SYMBOL, o.qty, "market", "copy", str(n))
            for o in orders
        ]
        started = time.perf_counter_ns()
        records.orders_sending(rows)
        session.place_orders(orders)
        moved += time.perf_counter_ns() - started
        if n == 0:
            recorded = [msgpack.packb(event_codec.encode(e)) for e in events]
        events.clear()
    orders_total = batches * PER_LOGIN

    crossing = 0
    per_order_events = max(1, len(recorded) // PER_LOGIN)
    for n in range(batches):
        orders = [OrderRequest(f"C{n}-{i}", f"F{i}", SYMBOL, 1) for i in range(PER_LOGIN)]
        started = time.perf_counter_ns()
        msgpack.packb([_order_frame(o) for o in orders])
        for blob in recorded[: PER_LOGIN * per_order_events]:
            event_codec.decode(msgpack.unpackb(blob))
        crossing += time.perf_counter_ns() - started

    parent, child = multiprocessing.Pipe()
    worker = multiprocessing.Process(target=_echo, args=(child,), daemon=True)
    worker.start()
    round_trip = 0
    for n in range(batches):
        orders = [OrderRequest(f"C{n}-{i}", f"F{i}", SYMBOL, 1) for i in range(PER_LOGIN)]
        started = time.perf_counter_ns()
        parent.send_bytes(msgpack.packb([_order_frame(o) for o in orders]))
        msgpack.unpackb(parent.recv_bytes())
        round_trip += time.perf_counter_ns() - started
    parent.send_bytes(b"")
    worker.join(5)
    store.close()
    return {
        "events_per_order": per_order_events,
        "moved_us": round(moved / orders_total / 1000, 1),
        "crossing_us": round(crossing / orders_total / 1000, 1),
        "round_trip_us": round(round_trip / orders_total / 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-split-") as tmp:
        row = measure(args.batches, Path(tmp))
    print(
        f"per follower order: would leave the engine process {row['moved_us']} µs; the crossing "
        f"would cost it {row['crossing_us']} µs ({row['events_per_order']} events decoded); "
        f"pipe round trip {row['round_trip_us']} µs"
    )
    update_results("process_split", row)


if __name__ == "__main__":
    main()
