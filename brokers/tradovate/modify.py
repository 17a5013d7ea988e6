"""Modifications of working orders at Tradovate (``order/modifyorder``).

The body carries the order's whole new terms — ``orderQty`` the new total, ``orderType``,
``price``, ``stopPrice``, ``timeInForce`` — the values the request leaves ``None`` taken from
the order as the adapter knows it. The broker's answer is only a ``commandId``: the change is
confirmed by the new ``orderVersion`` it pushes, which the order tracker turns into
``OrderUpdated`` (also when the new terms equal the old). A refusal (a business error, no
permission, a lock-out, the session down, an order not working) is ``ModifyRejected`` with the
broker's text; the order stands as it was. An answer lost on the way is resolved by reading the
order's current version (``orderVersion/deps``): the new terms there are the confirmation,
anything else means it was not applied (S2.6, S8.9).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import structlog

from brokers.base import BrokerEvent, ModifyRejected, ModifyRequest, check_terms
from brokers.tradovate import entities
from brokers.tradovate.entities import EntityError
from brokers.tradovate.orders import OrderTracker
from brokers.tradovate.rest import (
    BadResponse,
    BrokerError,
    NoPermission,
    NotFound,
    RateLimited,
    Rejected,
    RestClient,
    SocketRequest,
    Throttled,
    Unauthorized,
    Unavailable,
)
from brokers.tradovate.tracked import Tracked
from brokers.tradovate.working import modify_body

log = structlog.get_logger("brokers.tradovate")

NOT_CONNECTED = "SessionClosed: the Tradovate session is not connected"


class ModifyOwner(Protocol):
    """What a modification uses of its login's session."""

    @property
    def connection(self) -> str: ...

    @property
    def tracker(self) -> OrderTracker: ...

    @property
    def rest(self) -> RestClient: ...

    @property
    def live(self) -> bool: ...

    def via(self) -> SocketRequest | None:
        """The trading socket's request, while it is up."""

    def emit(self, event: BrokerEvent) -> None: ...


class Modifier:
    def __init__(self, session: ModifyOwner) -> None:
        self.session = session

    def _refuse(self, request: ModifyRequest, reason: str) -> None:
        session = self.session
        session.emit(
            ModifyRejected(
                session.connection,
                request.account,
                request.broker_order_id,
                request.client_order_id,
                reason,
            )
        )

    def _order(self, request: ModifyRequest) -> Tracked | str:
        """The order to modify, or why it cannot be."""
        oid = request.broker_order_id
        tracked = self.session.tracker.find(int(oid)) if oid.isdigit() else None
        if tracked is None or tracked.account != request.account:
            return f"UnknownOrder: {oid} is not an order of {request.account}"
        ended = tracked.finished or tracked.status in entities.TERMINAL
        if ended or not tracked.order_type.working:
            return f"NotWorking: order {oid} is not a working order"
        return tracked

    async def modify(self, request: ModifyRequest) -> None:
        session = self.session
        if not session.live:
            self._refuse(request, NOT_CONNECTED)
            return
        tracked = self._order(request)
        if isinstance(tracked, str):
            self._refuse(request, tracked)
            return
        qty = request.qty if request.qty is not None else abs(tracked.qty or 0)
        price = request.price if request.price is not None else tracked.price
        stop = request.stop if request.stop is not None else tracked.stop
        problem = check_terms(tracked.order_type, price, stop)
        if problem is None and (qty <= 0 or qty < tracked.filled):
            problem = f"quantity {qty} is below the {tracked.filled} filled"
        if problem is not None:
            self._refuse(request, f"InvalidModification: {problem}")
            return
        body = modify_body(tracked.order_id, qty, tracked.order_type, price, stop, tracked.tif)
        session.tracker.expect_update(tracked.order_id)
        try:
            await session.rest.command("order/modifyorder", body, session.via())
        except Rejected as rejected:
            self._refused(request, tracked, rejected.reason)
        except NotFound as error:
            self._refused(request, tracked, f"NotFound: {error}")
        except (NoPermission, Unauthorized) as error:
            self._refused(request, tracked, f"Unauthorized: {error}")
        except RateLimited as error:
            self._refused(request, tracked, f"RateLimited: {error}")
        except Throttled as error:
            self._refused(request, tracked, f"Throttled: {error}")
        except (Unavailable, BadResponse) as error:
            log.error(
                "modification of unknown outcome",
                connection=session.connection,
                order=tracked.order_id,
                problem=str(error),
            )
            await self._resolve(request, tracked, body, str(error))

    def _refused(self, request: ModifyRequest, tracked: Tracked, reason: str) -> None:
        self.session.tracker.expect_update(tracked.order_id, expected=False)
        self._refuse(request, reason)

    async def _resolve(
        self, request: ModifyRequest, tracked: Tracked, body: Mapping[str, Any], problem: str
    ) -> None:
        """Whether the order's current version carries the new terms."""
        session = self.session
        try:
            found = await session.rest.items("orderVersion/deps", {"masterid": tracked.order_id})
            versions = [entities.order_version(v) for v in found]
        except (BrokerError, EntityError) as error:
            self._refused(request, tracked, f"outcome unknown ({problem}; {error})")
            return
        latest = max(versions, key=lambda v: v.id, default=None)
        applied = latest is not None and (
            latest.qty == body["orderQty"]
            and latest.price == body.get("price")
            and latest.stop_price == body.get("stopPrice")
        )
        if latest is None or not applied:
            self._refused(request, tracked, f"not applied by Tradovate ({problem})")
            return
        session.tracker.on_version(latest)  # nothing more when its push came first
        session.tracker.expect_update(tracked.order_id, expected=False)
