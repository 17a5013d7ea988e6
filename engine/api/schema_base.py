"""What every body of the control API is made of: requests that forbid unknown fields, frozen
responses, and the form of an id."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from engine.app.config import ID_PATTERN

Id = Annotated[str, Field(pattern=ID_PATTERN, description="1-64 letters, digits, . _ -")]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Response(BaseModel):
    model_config = ConfigDict(frozen=True)


__all__ = ["Id", "Request", "Response"]
