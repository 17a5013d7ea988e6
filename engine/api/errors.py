"""Errors of the control API, and reading what a request sends, strictly.

Every error is a JSON :class:`~engine.api.schemas.Problem`: 400 malformed JSON (or a number
longer than any field takes), 401 no token, 404 unknown id or path, 405 wrong method, 409 a
command the rules forbid (the reason as the engine words it), 413 body too large, 422 a wrong
field (named), 503 the engine is stopping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import aclosing
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from engine.app.config_errors import describe_errors

M = TypeVar("M", bound=BaseModel)
MAX_NUMBER_CHARS = 40  # no field takes a longer number (money is at most 10**12, 2 decimals)
E = TypeVar("E", bound=Enum)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        field: str | None = None,
        details: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field
        self.details = details or []
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return problem(
            self.status, self.error, self.message, self.field, self.details, self.headers
        )


def problem(
    status: int,
    error: str,
    message: str,
    field: str | None = None,
    details: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "message": message, "field": field}
    body["details"] = details or []
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def invalid(errors: ValidationError, model: type[BaseModel], where: str = "") -> ApiError:
    found = describe_errors(errors, model)
    details = [
        {"field": f"{where}.{key}" if where and key else (key or where), "message": message}
        for key, message in found
    ]
    first = details[0] if details else {"field": where, "message": "invalid"}
    return ApiError(
        422,
        "invalid",
        f"{first['field'] or 'body'}: {first['message']}",
        first["field"] or None,
        details,
    )


async def read_json(request: Request, limit: int, *, required: bool = True) -> Any:
    """The request's JSON body; 413 past ``limit`` bytes, 400 when it is not JSON; an empty
    object for an empty body when none is ``required``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if size > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    total = 0
    async with aclosing(request.stream()) as stream:
        async for chunk in stream:
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip() and not required:
        return {}
    if not raw.strip():
        raise ApiError(400, "malformed_json", "the request needs a JSON body")
    try:
        return json.loads(raw, parse_int=_parse_int, parse_float=_parse_float)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {error}") from None


def _too_long(text: str) -> ApiError:
    return ApiError(
        400,
        "number_too_long",
        f"the body has a number of {len(text)} characters ({text[:12]}...); no field takes one"
        f" longer than {MAX_NUMBER_CHARS}",
    )


def _parse_int(text: str) -> int:
    """Checked before ``int()``: Python refuses to convert more than 4,300 digits, and a
    number that long is never a value any field takes."""
    if len(text) > MAX_NUMBER_CHARS:
        raise _too_long(text)
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _too_long(text)
    return float(text)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the body is larger than {limit} bytes")


async def body(request: Request, model: type[M], limit: int) -> M:
    return _validated(await read_json(request, limit), model)


async def optional_body(request: Request, model: type[M], limit: int) -> M:
    """As :func:`body`, and an empty body is the model's defaults."""
    return _validated(await read_json(request, limit, required=False), model)


def _validated(data: Any, model: type[M]) -> M:
    if not isinstance(data, dict):
        raise ApiError(
            422,
            "invalid",
            "body: expected a JSON object",
            None,
            [{"field": "", "message": "expected a JSON object"}],
        )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise invalid(error, model) from None
    except RecursionError:
        raise ApiError(400, "malformed_json", "the body is nested too deeply") from None


# --- query parameters ---------------------------------------------------------------------------


def _bad_query(name: str, expected: str, got: str) -> ApiError:
    shown = got if len(got) <= 40 else got[:37] + "..."
    return ApiError(
        422,
        "invalid",
        f"{name}: expected {expected} (got {shown!r})",
        name,
        [{"field": name, "message": f"expected {expected}"}],
    )


def query_int(request: Request, name: str, low: int, high: int, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_query(name, f"an integer from {low} to {high}", raw) from None
    if not low <= value <= high:
        raise _bad_query(name, f"an integer from {low} to {high}", raw)
    return value


def query_bool(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    lowered = raw.lower()
    if lowered in ("true", "1", "yes", ""):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise _bad_query(name, "true or false", raw)


def query_time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _bad_query(name, "an ISO 8601 instant with an offset", raw) from None
    if value.tzinfo is None:
        raise _bad_query(name, "an ISO 8601 instant with an offset", raw)
    return value


def query_enum(request: Request, name: str, kind: type[E]) -> E | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        names = ", ".join(str(m.value) for m in kind)
        raise _bad_query(name, f"one of {names}", raw) from None


def query_text(request: Request, name: str, max_length: int = 128) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw or len(raw) > max_length:
        raise _bad_query(name, f"a non-empty string of at most {max_length} characters", raw)
    return raw


__all__ = [
    "MAX_NUMBER_CHARS",
    "ApiError",
    "body",
    "invalid",
    "problem",
    "query_bool",
    "query_enum",
    "query_int",
    "query_text",
    "query_time",
    "read_json",
]
