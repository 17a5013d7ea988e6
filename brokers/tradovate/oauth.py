"""OAuth authorization-code flow (S1.2) and token renewal, the way Tradovate speaks them.

- :func:`authorize_url`: Tradovate's authorize page with our client id, the callback and the
  engine's single-use ``state`` (the engine owns and checks ``state``; this only carries it).
- :func:`exchange_code`: ``POST .../auth/oauthtoken`` with the code, form-encoded to the host
  without ``/v1`` as Tradovate's sample does, then the ``/v1`` JSON form if that one is not
  there. The answer's ``access_token`` + ``expires_in`` (or ``accessToken`` + ``expirationTime``)
  become a :class:`~brokers.tradovate.tokens.Token`.
- :func:`renew`: ``GET /auth/renewaccesstoken`` with the current token.

No password ever enters: the credentials flow is not implemented. Errors say what failed in
words fit for the user and never carry the code, the secret or a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from brokers.base import AuthorizationError
from brokers.tradovate.rest import BadResponse, RestClient
from brokers.tradovate.settings import TradovateSettings
from brokers.tradovate.tokens import Token
from brokers.tradovate.wire import FrameError, loads


def authorize_url(settings: TradovateSettings, state: str, redirect_uri: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    separator = "&" if "?" in settings.auth_url else "?"
    return f"{settings.auth_url}{separator}{query}"


async def exchange_code(
    http: httpx.AsyncClient,
    settings: TradovateSettings,
    code: str,
    redirect_uri: str,
    now: datetime,
) -> Token:
    """The token for ``code``; raises :class:`AuthorizationError` when Tradovate refuses it."""
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": settings.client_id,
        "client_secret": settings.client_secret.get_secret_value(),
        "redirect_uri": redirect_uri,
    }
    formats = [settings.token_format, "json" if settings.token_format == "form" else "form"]
    last_problem = "no token endpoint answered"
    for url in settings.token_urls():
        for form in formats:
            try:
                if form == "form":
                    response = await http.post(url, data=fields)
                else:
                    response = await http.post(url, json=fields)
            except httpx.HTTPError as error:
                raise AuthorizationError(
                    f"Tradovate's token endpoint could not be reached ({type(error).__name__})"
                ) from None
            if response.status_code == 404:
                last_problem = "the token endpoint was not found (HTTP 404)"
                break  # the next URL
            if response.status_code == 415:
                last_problem = "the token endpoint refused the request format (HTTP 415)"
                continue  # the other format
            return _token_answer(response, now, secrets=(code, fields["client_secret"]))
    raise AuthorizationError(f"Tradovate did not issue a token: {last_problem}")


def _token_answer(response: httpx.Response, now: datetime, secrets: tuple[str, ...]) -> Token:
    try:
        data = loads(response.content)
    except FrameError:
        raise AuthorizationError(
            f"Tradovate's token endpoint answered HTTP {response.status_code} without JSON"
        ) from None
    if isinstance(data, Mapping) and data.get("error"):
        description = str(data.get("error_description") or data["error"])
        for secret in secrets:
            description = description.replace(secret, "[redacted]")
        raise AuthorizationError(f"Tradovate refused the authorization: {description}")
    if response.status_code >= 400:
        raise AuthorizationError(f"Tradovate's token endpoint answered HTTP {response.status_code}")
    try:
        return token_from(data, now)
    except BadResponse as error:
        raise AuthorizationError(f"Tradovate's token answer is unusable: {error}") from None


def token_from(data: Any, now: datetime) -> Token:
    """A token from either answer form; raises :class:`BadResponse` when neither fits."""
    if not isinstance(data, Mapping):
        raise BadResponse("not a JSON object")
    value = data.get("access_token") or data.get("accessToken")
    if not isinstance(value, str) or not value:
        raise BadResponse("no access token in the answer")
    if data.get("expirationTime"):
        try:
            expires_at = datetime.fromisoformat(str(data["expirationTime"]).replace("Z", "+00:00"))
        except ValueError:
            raise BadResponse("expirationTime is not an ISO 8601 instant") from None
        if expires_at.tzinfo is None:
            raise BadResponse("expirationTime has no time zone")
        return Token(value, expires_at)
    seconds = data.get("expires_in")
    if seconds is None or isinstance(seconds, bool):
        raise BadResponse("neither expires_in nor expirationTime in the answer")
    try:
        lifetime = timedelta(seconds=float(seconds))
    except (TypeError, ValueError):
        raise BadResponse("neither expires_in nor expirationTime in the answer") from None
    return Token(value, now + lifetime)


async def renew(rest: RestClient, now: datetime) -> Token:
    """A renewed token; raises the REST errors (401 as ``Unauthorized``)."""
    return token_from(await rest.get("auth/renewaccesstoken"), now)
