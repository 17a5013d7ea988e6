"""Named risk profiles (S9.7): list, show, create or change keys, remove keys, delete — refused
while an account uses the profile. An account chooses its profile through its limits."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from engine.api import risk_views, schemas
from engine.api.context import ApiContext
from engine.api.errors import ApiError, body
from engine.api.operations import Operation, json_of
from engine.app.config import ID_PATTERN
from engine.app.config_errors import ID_FORM
from engine.core.engine import Engine
from engine.core.topology import Topology
from engine.domain.risk_profile import RiskValue

TAG = "profiles"
_PATH = "/api/profiles/{profile}"


def unknown_profile(topology: Topology, name: str, field: str = "profile") -> ApiError:
    """A 422 for an account given a profile that does not exist."""
    known = ", ".join(sorted(topology.profiles)) or "none yet (PUT /api/profiles/NAME)"
    message = f"no profile {name!r}; profiles: {known}"
    return ApiError(
        422, "invalid", f"{field}: {message}", field, [{"field": field, "message": message}]
    )


def _name(request: Request) -> str:
    name = str(request.path_params["profile"])
    if not re.fullmatch(ID_PATTERN, name):
        message = f"expected a profile name of {ID_FORM} (got {name[:64]!r})"
        raise ApiError(422, "invalid", f"profile: {message}", "profile",
                       [{"field": "profile", "message": message}])  # fmt: skip
    return name


async def list_profiles(request: Request, ctx: ApiContext) -> Response:
    return json_of(ctx.view(risk_views.profiles_out, ctx.engine))


async def get_profile(request: Request, ctx: ApiContext) -> Response:
    topology = ctx.engine.topology_snapshot()
    return json_of(risk_views.profile_out(topology, _name(request)))


def _set_profile(
    engine: Engine, name: str, values: dict[str, RiskValue], removed: tuple[str, ...]
) -> schemas.ProfileOut:
    if values or name not in engine.topology_snapshot().profiles:
        engine.set_profile(name, values)
    if removed:
        engine.unset_profile_keys(name, removed)
    return risk_views.profile_out(engine.topology_snapshot(), name)


async def set_profile(request: Request, ctx: ApiContext) -> Response:
    """Only the keys given change: a value sets the key, null removes it; a new name creates
    the profile. Every account using it takes the change at once (S9.7)."""
    name = _name(request)
    change = await body(request, schemas.ProfileChange, ctx.max_body_bytes)
    values, removed = change.changes()
    return json_of(await ctx.command(_set_profile, ctx.engine, name, values, removed))


async def delete_profile(request: Request, ctx: ApiContext) -> Response:
    name = _name(request)
    await ctx.command(ctx.engine.delete_profile, name)
    return json_of(schemas.Done(message=f"profile {name} deleted"))


OPERATIONS = [
    Operation(
        "GET", "/api/profiles", list_profiles, "Every named risk profile and who uses it (S9.7)",
        TAG, response=list[schemas.ProfileOut],
    ),
    Operation(
        "GET", _PATH, get_profile, "One named risk profile", TAG,
        response=schemas.ProfileOut, errors=(404, 422),
    ),
    Operation(
        "PUT",
        _PATH,
        set_profile,
        "Create a profile, or set or remove its keys",
        TAG,
        body=schemas.ProfileChange,
        response=schemas.ProfileOut,
        errors=(404, 409),
        command=True,
        description="Only the keys given change: a value sets the key (checked as the"
        " configuration's are), null removes it. The accounts using the profile take the"
        " change at once, except where their own keys override it.",
    ),
    Operation(
        "DELETE",
        _PATH,
        delete_profile,
        "Delete a profile (refused while an account uses it)",
        TAG,
        response=schemas.Done,
        errors=(404, 409, 422),
        command=True,
    ),
]  # fmt: skip
