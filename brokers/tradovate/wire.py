"""Tradovate's WebSocket framing, both ways (TRADOVATE.md, "WebSocket").

Server frames start with one letter: ``o`` open, ``h`` heartbeat, ``a[...]`` a JSON array of
messages, ``c[code,"reason"]`` closed. A message is a reply ``{"s": status, "i": id, "d": ...}``
or a pushed event ``{"e": "props"|"md"|"clock"|..., "d": ...}``. Client frames are ``[]`` (the
heartbeat) or a request ``endpoint\\nid\\nquery\\nbody`` with blank lines kept.

Numbers are parsed as :class:`~decimal.Decimal` (prices must stay exact). Anything that does
not have this shape raises :class:`FrameError`, whose message says what was wrong and never
repeats the frame (it may carry a token).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

HEARTBEAT = "[]"


class FrameError(ValueError):
    """A frame or message that is not Tradovate's framing."""


# --- server → client ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenFrame:
    pass


@dataclass(frozen=True, slots=True)
class HeartbeatFrame:
    pass


@dataclass(frozen=True, slots=True)
class CloseFrame:
    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Reply:
    request_id: int
    status: int
    data: Any


@dataclass(frozen=True, slots=True)
class Push:
    event: str
    data: Any


@dataclass(frozen=True, slots=True)
class MessagesFrame:
    messages: tuple[Reply | Push, ...]


ServerFrame = OpenFrame | HeartbeatFrame | CloseFrame | MessagesFrame


def loads(text: str | bytes) -> Any:
    """JSON with exact decimals; raises :class:`FrameError` on anything else."""
    try:
        return json.loads(text, parse_float=Decimal)
    except (ValueError, TypeError) as error:
        raise FrameError(f"not JSON ({type(error).__name__} at {_where(error)})") from None


def _where(error: Exception) -> str:
    position = getattr(error, "pos", None)
    return f"char {position}" if position is not None else "start"


def parse_server_frame(text: str) -> ServerFrame:
    if not isinstance(text, str) or not text:
        raise FrameError("empty or binary frame")
    kind, rest = text[0], text[1:]
    if kind == "o":
        return OpenFrame()
    if kind == "h":
        return HeartbeatFrame()
    if kind == "c":
        code: int | None = None
        reason = ""
        if rest:
            body = loads(rest)
            if isinstance(body, list) and body:
                code = body[0] if isinstance(body[0], int) else None
                reason = str(body[1]) if len(body) > 1 else ""
        return CloseFrame(code, reason)
    if kind == "a":
        items = loads(rest)
        if not isinstance(items, list):
            raise FrameError("an 'a' frame must carry a JSON array")
        return MessagesFrame(tuple(parse_message(item) for item in items))
    raise FrameError(f"unknown frame type {kind!r}")


def parse_message(item: Any) -> Reply | Push:
    if not isinstance(item, Mapping):
        raise FrameError("a message must be a JSON object")
    if "e" in item:
        event = item["e"]
        if not isinstance(event, str):
            raise FrameError("a pushed event's 'e' must be a string")
        return Push(event, item.get("d"))
    request_id, status = item.get("i"), item.get("s")
    if not isinstance(request_id, int) or not isinstance(status, int):
        raise FrameError("a reply needs integer 's' and 'i'")
    if isinstance(request_id, bool) or isinstance(status, bool):
        raise FrameError("a reply needs integer 's' and 'i'")
    return Reply(request_id, status, item.get("d"))


def encode_request(endpoint: str, request_id: int, query: str = "", body: Any = None) -> str:
    """A client request; ``body`` is sent as JSON, or as is when it is already a string."""
    if body is None:
        text = ""
    elif isinstance(body, str):
        text = body
    else:
        text = dumps(body)
    return f"{endpoint}\n{request_id}\n{query}\n{text}"


def dumps(value: Any) -> str:
    """JSON as Tradovate sends it: decimals as numbers, no spaces."""
    return json.dumps(value, default=_number, separators=(",", ":"))


def _number(value: object) -> Any:
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


# --- client → server (what the local server parses) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    endpoint: str
    request_id: int
    query: str
    body: str


def parse_client_frame(text: str) -> Request | None:
    """``None`` for the heartbeat; a :class:`Request` otherwise."""
    if text.strip() == HEARTBEAT:
        return None
    parts = text.split("\n", 3)
    if len(parts) < 2:
        raise FrameError("a request needs at least 'endpoint\\nid'")
    endpoint = parts[0].strip().strip("/")
    try:
        request_id = int(parts[1])
    except ValueError:
        raise FrameError("a request id must be an integer") from None
    query = parts[2] if len(parts) > 2 else ""
    body = parts[3] if len(parts) > 3 else ""
    return Request(endpoint, request_id, query, body)


def encode_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    return "a" + dumps(messages)


def encode_close(code: int, reason: str) -> str:
    return "c" + dumps([code, reason])
