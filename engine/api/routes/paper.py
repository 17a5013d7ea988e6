"""The paper trading desk (:mod:`engine.app.paper_desk`): a trade by hand on any paper account,
a symbol's price set by hand. Only on an engine whose broker is the paper broker; on a real one
(``tradovate``, ``tradovate-sim``) every route answers 409, trades and prices being the broker's.

A trade and a price are done at the broker when the answer comes (200, with what was done); the
engine's reaction — copies of a leader's fill, a breach on the new price — follows as events.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from engine.api.context import ApiContext, Stopping
from engine.api.errors import ApiError, body
from engine.api.operations import Operation, json_of
from engine.api.schemas import Id
from engine.api.schemas import Request as RequestModel
from engine.api.schemas import Response as ResponseModel
from engine.app.paper_desk import DeskError, PaperDesk

TAG = "paper"
MAX_QTY = 10_000

Symbol = Annotated[str, Field(min_length=3, max_length=16, description="e.g. ESZ6")]
Price = Annotated[
    Decimal, Field(gt=0, le=10**7, allow_inf_nan=False, max_digits=16, decimal_places=6)
]


class PaperTrade(RequestModel):
    """A market order of the account's owner, filled at once at the symbol's last price."""

    account: Id
    side: Literal["buy", "sell"]
    qty: int = Field(ge=1, le=MAX_QTY)
    symbol: Symbol


class PaperPrice(RequestModel):
    """The symbol's new last price, on the contract's ticks (ESZ6: 0.25)."""

    symbol: Symbol
    last: Price


class PaperDeskOut(ResponseModel):
    broker: str
    market: bool = Field(description="whether a simulated market walks the prices")
    prices: dict[str, str]
    accounts: list[str]


class PaperTradeOut(ResponseModel):
    account: str
    connection: str
    symbol: str
    side: Literal["buy", "sell"]
    qty: int
    price: str
    fills: list[str]
    seen: bool = Field(description="whether the engine hears of it now (its connection delivers)")
    message: str


class PaperPriceOut(ResponseModel):
    symbol: str
    last: str
    quoted: dict[str, str] = Field(description="every symbol quoted: the mirrors move with it")
    walks: bool = Field(description="whether the simulated market walks on from this price")
    message: str


def _desk(ctx: ApiContext) -> PaperDesk:
    if ctx.desk is None:
        brokers = ", ".join(sorted(ctx.engine.brokers)) or "none"
        raise ApiError(
            409,
            "refused",
            f"the paper desk is the paper broker's, and this engine runs on {brokers}: trade"
            " and set prices at that broker",
        )
    if not ctx.accepting:
        raise Stopping
    return ctx.desk


def _refused(error: DeskError) -> ApiError:
    if error.field is None:
        return ApiError(409, "refused", str(error))
    message = str(error).removeprefix(f"{error.field}: ")
    return ApiError(
        422,
        "invalid",
        f"{error.field}: {message}",
        error.field,
        [{"field": error.field, "message": message}],
    )


async def desk(request: Request, ctx: ApiContext) -> Response:
    paper = _desk(ctx)
    return json_of(
        PaperDeskOut(
            broker=paper.kind,
            market=paper.market is not None,
            prices={symbol: str(last) for symbol, last in paper.prices().items()},
            accounts=paper.accounts(),
        )
    )


async def trade(request: Request, ctx: ApiContext) -> Response:
    """On the trio thread, as the demo's own trades: a trade and the walk never interleave."""
    paper = _desk(ctx)
    order = await body(request, PaperTrade, ctx.max_body_bytes)
    qty = order.qty if order.side == "buy" else -order.qty
    try:
        done = paper.trade(order.account, qty, order.symbol)
    except DeskError as error:
        raise _refused(error) from None
    verb = "bought" if qty > 0 else "sold"
    fills = ", ".join(done.fills)
    message = f"{done.account} {verb} {order.qty} {done.symbol} at {done.price} (fill {fills})"
    if not done.seen:
        message += (
            f"; the engine does not hear of it now (connection {done.connection} is not"
            " connected): it reconciles when the connection returns"
        )
    return json_of(
        PaperTradeOut(
            account=done.account,
            connection=done.connection,
            symbol=done.symbol,
            side=order.side,
            qty=order.qty,
            price=str(done.price),
            fills=list(done.fills),
            seen=done.seen,
            message=message,
        )
    )


async def price(request: Request, ctx: ApiContext) -> Response:
    """A market tick: every connection hears it, the risk guard checks it (S5.2)."""
    paper = _desk(ctx)
    change = await body(request, PaperPrice, ctx.max_body_bytes)
    try:
        done = paper.set_price(change.symbol, change.last)
    except DeskError as error:
        raise _refused(error) from None
    message = f"{done.symbol} at {done.last}"
    mirrors = [s for s in done.quoted if s != done.symbol]
    if mirrors:
        message += f" (and {', '.join(mirrors)} with it)"
    if done.walks:
        message += "; the simulated market walks on from there"
    return json_of(
        PaperPriceOut(
            symbol=done.symbol,
            last=str(done.last),
            quoted={symbol: str(last) for symbol, last in done.quoted.items()},
            walks=done.walks,
            message=message,
        )
    )


OPERATIONS = [
    Operation(
        "GET", "/api/paper", desk, "The paper desk: its accounts and every symbol's last price",
        TAG, response=PaperDeskOut, errors=(409,),
    ),
    Operation(
        "POST",
        "/api/paper/trade",
        trade,
        "Trade by hand on a paper account: a market order of its owner, filled at the last price",
        TAG,
        body=PaperTrade,
        response=PaperTradeOut,
        errors=(404, 409),
        command=True,
        description="A leader's trade is copied like any leader fill; a follower's is its"
        " owner's own trade. 409 on a real broker, or for a symbol without a price yet.",
    ),
    Operation(
        "POST",
        "/api/paper/price",
        price,
        "Set a symbol's price by hand: a market tick the risk guard checks",
        TAG,
        body=PaperPrice,
        response=PaperPriceOut,
        errors=(409,),
        command=True,
        description="With the demo's simulated market, the walk goes on from the price set"
        " (and a micro mirror, MESZ6 with ESZ6, moves with it). 409 on a real broker.",
    ),
]  # fmt: skip
