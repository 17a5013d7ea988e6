"""The OpenAPI 3.1 document of the control API, built from the operation table and the pydantic
models (``model_json_schema``), served at ``/openapi.json``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from engine.api import schemas
from engine.api.operations import Operation

REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "Malformed request (the body is not JSON, or the callback's answer is refused)",
    401: "No or wrong bearer token",
    404: "Unknown id",
    409: "The rules forbid this command; the message says why",
    413: "Body too large",
    422: "A field is wrong; `field` names it",
    503: "The engine is stopping or cannot make its state durable (or the event stream is full)",
    504: "The broker did not answer in time",
}


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: str) -> dict[str, Any]:
        name = model.__name__
        if name not in self.schemas:
            schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
            for sub, definition in schema.pop("$defs", {}).items():
                self.schemas.setdefault(sub, definition)
            self.schemas[name] = schema
        return {"$ref": REF.format(model=name)}

    def of(self, annotation: Any, mode: str) -> dict[str, Any]:
        if get_origin(annotation) is list:
            (item,) = get_args(annotation)
            return {"type": "array", "items": self.of(item, mode)}
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.ref(annotation, mode)
        raise TypeError(f"no schema for {annotation!r}")


def _path_params(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def _operation(op: Operation, components: _Components) -> dict[str, Any]:
    problem = {"application/json": {"schema": components.ref(schemas.Problem, "serialization")}}
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^/]+$"},
        }
        for name in _path_params(op.path)
    ]
    parameters += [
        {
            "name": q.name,
            "in": "query",
            "required": q.required,
            "schema": q.schema,
            **({"description": q.description} if q.description else {}),
        }
        for q in op.query
    ]
    responses: dict[str, Any] = {}
    if op.media == "application/json":
        content: dict[str, Any] = (
            {"application/json": {"schema": components.of(op.response, "serialization")}}
            if op.response is not None
            else {}
        )
    else:
        content = {op.media: {"schema": {"type": "string"}}}
    responses[str(op.status)] = {"description": "OK", "content": content}
    for status in op.also:
        responses[str(status)] = {"description": "OK", "content": content}
    codes = set(op.errors)
    if not op.public:
        codes.add(401)
    if op.body is not None:
        codes |= {400, 413, 422}
    if op.query and not op.public:
        codes.add(422)
    if op.command:
        codes.add(503)
    if _path_params(op.path):
        codes.add(404)
    for code in sorted(codes):
        entry: dict[str, Any] = {"description": ERROR_TEXT.get(code, "Error")}
        if op.public and op.media == "application/json":
            entry["content"] = content  # a public JSON answer says why in its own body
        else:
            entry["content"] = (
                {"text/html": {"schema": {"type": "string"}}} if op.public else problem
            )
        responses[str(code)] = entry
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": responses,
    }
    if op.description:
        out["description"] = op.description
    if op.body is not None:
        out["requestBody"] = {
            "required": not op.body_optional,
            "content": {"application/json": {"schema": components.ref(op.body, "validation")}},
        }
    if op.public:
        out["security"] = []
    return out


def build_openapi(operations: Iterable[Operation], version: str) -> dict[str, Any]:
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mimik-engine control API",
            "version": version,
            "description": "Connections, accounts, copy groups, flatten, records and live"
            " events of a running engine. Every call needs `Authorization: Bearer <token>`"
            " (the token is in the data directory's `api.token`), except the OAuth callback.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


__all__ = ["build_openapi"]
