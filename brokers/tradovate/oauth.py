"""OAuth authorization-code flow (S1.2) and token renewal, the way Tradovate speaks them.

- :func:`authorize_url`: Tradovate's authorize page with our client id, the callback and the
  engine's single-use ``state`` (the engine owns and checks ``state``; this only carries it).
- :func:`exchange_code`: ``POST .../auth/oauthtoken`` with the code, form-encoded to the host
  without ``/v1`` as Tradovate's sample does, then the ``/v1`` JSON form if that one is not
  there. The answer's ``access_token`` + ``expires_in`` (or ``accessToken`` + ``expirationTime``)
  become a :class:`~brokers.tradovate.tokens.Token`, with the ``refresh_token`` when there is
  one. A penalty ticket is waited out and the exchange sent again with it; a captcha, HTTP 429
  or a second HTTP 423 is a refusal that says to try again later.
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
import trio

from brokers.base import AuthorizationError
from brokers.tradovate.rest import BadResponse, RestClient, penalty_ticket
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
            response = await _post_paced(http, settings, url, form, fields)
            if response.status_code == 404:
                last_problem = "the token endpoint was not found (HTTP 404)"
                break  # the next URL
            if response.status_code == 415:
                last_problem = "the token endpoint refused the request format (HTTP 415)"
                continue  # the other format
            return _token_answer(response, now, secrets=(code, fields["client_secret"]))
    raise AuthorizationError(f"Tradovate did not issue a token: {last_problem}")


LATER = "; try again in about an hour"


async def _post_paced(
    http: httpx.AsyncClient,
    settings: TradovateSettings,
    url: str,
    form: str,
    fields: dict[str, str],
) -> httpx.Response:
    """One exchange, through penalty tickets and a 423; a lock-out is an AuthorizationError."""
    body = dict(fields)
    tickets = throttles = 0
    while True:
        try:
            if form == "form":
                response = await http.post(url, data=body)
            else:
                response = await http.post(url, json=body)
        except httpx.HTTPError as error:
            raise AuthorizationError(
                f"Tradovate's token endpoint could not be reached ({type(error).__name__})"
            ) from None
        if response.status_code == 429:
            raise AuthorizationError(f"Tradovate is rate limiting this app (HTTP 429){LATER}")
        if response.status_code == 423:
            throttles += 1
            if throttles > 1:
                raise AuthorizationError(f"Tradovate is throttling this app (HTTP 423){LATER}")
            await trio.sleep(settings.throttle_wait_s)
            continue
        ticket = _ticket_of(response)
        if ticket is None:
            return response
        value, wait, captcha = ticket
        tickets += 1
        if captcha:
            raise AuthorizationError(f"Tradovate asks for a captcha (rate limited){LATER}")
        if tickets > settings.max_penalty_retries or wait > settings.max_ticket_wait_s:
            raise AuthorizationError(f"Tradovate is throttling this app (penalty ticket){LATER}")
        await trio.sleep(wait)
        body = {**fields, "p-ticket": value}


def _ticket_of(response: httpx.Response) -> tuple[str, float, bool] | None:
    if response.status_code != 200:
        return None
    try:
        data = loads(response.content)
    except FrameError:
        return None
    return penalty_ticket(data)


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
    refresh = data.get("refresh_token") or data.get("refreshToken")
    refresh_token = refresh if isinstance(refresh, str) and refresh else None
    if data.get("expirationTime"):
        try:
            expires_at = datetime.fromisoformat(str(data["expirationTime"]).replace("Z", "+00:00"))
        except ValueError:
            raise BadResponse("expirationTime is not an ISO 8601 instant") from None
        if expires_at.tzinfo is None:
            raise BadResponse("expirationTime has no time zone")
        return Token(value, expires_at, refresh_token)
    seconds = data.get("expires_in")
    if seconds is None or isinstance(seconds, bool):
        raise BadResponse("neither expires_in nor expirationTime in the answer")
    try:
        lifetime = timedelta(seconds=float(seconds))
    except (TypeError, ValueError):
        raise BadResponse("neither expires_in nor expirationTime in the answer") from None
    return Token(value, now + lifetime, refresh_token)


async def renew(rest: RestClient, now: datetime, refresh_token: str | None = None) -> Token:
    """A renewed token; raises the REST errors (401 as ``Unauthorized``). The renewal answer
    carries no refresh token: the one from the code exchange is kept with the new token."""
    token = token_from(await rest.get("auth/renewaccesstoken"), now)
    if token.refresh_token is None and refresh_token is not None:
        token = Token(token.value, token.expires_at, refresh_token)
    return token
