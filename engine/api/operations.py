"""One table of the API's operations, from which both the routes and the OpenAPI document are
built — so the published schema is the API, by construction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.api.context import ApiContext

Handler = Callable[[Request, ApiContext], Awaitable[Response]]


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # with {name} path parameters
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    response: Any = None  # a model, ``list[Model]``, or None
    status: int = 200
    query: tuple[Query, ...] = ()
    errors: tuple[int, ...] = ()  # beyond 401 (and 400/413/422 with a body)
    public: bool = False
    media: str = "application/json"
    command: bool = False  # refused with 503 while the engine stops
    description: str = ""
    body_optional: bool = False  # an empty body is the body model's defaults
    also: tuple[int, ...] = ()  # other success statuses with the same answer (a dry run's 200)

    @property
    def operation_id(self) -> str:
        return getattr(self.handler, "__name__", "op").strip("_")


def json_of(model: BaseModel | Sequence[BaseModel], status: int = 200) -> JSONResponse:
    if not isinstance(model, BaseModel):
        return JSONResponse([m.model_dump(mode="json") for m in model], status_code=status)
    return JSONResponse(model.model_dump(mode="json"), status_code=status)


# Shared query parameters.
DRY_RUN = Query(
    "dry_run",
    {"type": "boolean", "default": False},
    "List exactly what would be removed, and remove nothing",
)
LIMIT = Query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100})
BEFORE = Query(
    "before",
    {"type": "integer", "minimum": 1, "maximum": 2**62},
    "Only records older than this sequence number (the previous page's next_before)",
)
SINCE = Query(
    "since", {"type": "string", "format": "date-time"}, "From this instant (with an offset)"
)
UNTIL = Query("until", {"type": "string", "format": "date-time"}, "Before this instant")
ACCOUNT = Query("account", {"type": "string", "minLength": 1, "maxLength": 128})
CONNECTION = Query("connection", {"type": "string", "minLength": 1, "maxLength": 128})


__all__ = [
    "ACCOUNT",
    "BEFORE",
    "CONNECTION",
    "DRY_RUN",
    "LIMIT",
    "SINCE",
    "UNTIL",
    "Handler",
    "Operation",
    "Query",
    "json_of",
]
