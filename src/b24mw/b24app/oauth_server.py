"""The Bitrix24 OAuth server (``oauth.bitrix.info``): exchanging a refresh token.

``GET <server>?grant_type=refresh_token&client_id=..&client_secret=..&refresh_token=..``
answers a new pair (``access_token``, ``refresh_token``, ``expires_in``,
``client_endpoint``, ``member_id``, ``user_id``...) or ``{"error",
"error_description"}`` (``invalid_grant``, ``invalid_client``,
``PAYMENT_REQUIRED``...).  Source: ``settings/oauth/auto-renewal.md`` and
``error-codes.md`` of the official REST documentation.

The client secret goes to this server only, never to the portal, and the
token URL comes from the settings, never from a request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from b24mw.settings import Settings

# Refusals: the same request would be refused again; only a new installation
# (or a paid plan, a fixed client id/secret) brings the application back.
REFUSALS = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "invalid_request",
        "invalid_scope",
        "insufficient_scope",
        "PAYMENT_REQUIRED",
        "unauthorized_client",
        "unsupported_grant_type",
    }
)
_SNIPPET = 200


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_at: float  # unix seconds, from our clock plus ``expires_in``
    client_endpoint: str
    server_endpoint: str | None
    member_id: str
    scope: str | None
    status: str | None
    user_id: int | None

    def public(self) -> dict[str, Any]:
        """The answer as it may be logged: everything but the tokens."""
        return {
            "client_endpoint": self.client_endpoint,
            "server_endpoint": self.server_endpoint,
            "member_id": self.member_id,
            "scope": self.scope,
            "status": self.status,
            "user_id": self.user_id,
            "expires_at": int(self.expires_at),
        }


class TokenError(Exception):
    """No token pair: ``refused`` (for good) or the server unreachable (try later)."""

    def __init__(
        self, code: str, description: str, *, refused: bool, http_status: int | None = None
    ) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.refused = refused
        self.http_status = http_status

    @property
    def text(self) -> str:
        status = f" (HTTP {self.http_status})" if self.http_status else ""
        return f"{self.code}{status}: {self.description}" if self.description else self.code


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_pair(data: Any, now: float) -> TokenPair | None:
    """The pair in a token answer, or ``None`` when it is not one."""
    if not isinstance(data, dict):
        return None
    access, refresh = _text(data.get("access_token")), _text(data.get("refresh_token"))
    endpoint, member = _text(data.get("client_endpoint")), _text(data.get("member_id"))
    lifetime = _int(data.get("expires_in"))
    if not (access and refresh and endpoint and member) or lifetime is None or lifetime <= 0:
        return None
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        # Our clock plus the lifetime: a portal clock that differs from ours
        # (``expires`` is the server's) does not move the refresh moment.
        expires_at=now + lifetime,
        client_endpoint=endpoint if endpoint.endswith("/") else endpoint + "/",
        server_endpoint=_text(data.get("server_endpoint")),
        member_id=member,
        scope=_text(data.get("scope")),
        status=_text(data.get("status")),
        user_id=_int(data.get("user_id")),
    )


class TokenServer:
    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.clock = clock
        self.url = settings.b24_oauth_server
        self.client_id = settings.b24_client_id or ""
        secret = settings.b24_client_secret
        self._client_secret = secret.get_secret_value() if secret is not None else ""
        self.timeout_s = settings.b24_oauth_timeout_s

    async def refresh(self, refresh_token: str) -> TokenPair:
        """A new pair for ``refresh_token`` (which stops working); raises ``TokenError``."""
        params = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "refresh_token": refresh_token,
        }
        try:
            response = await self.http.get(
                self.url, params=params, timeout=self.timeout_s, follow_redirects=False
            )
        except httpx.TimeoutException as exc:
            raise TokenError("OAUTH_TIMEOUT", type(exc).__name__, refused=False) from None
        except httpx.HTTPError as exc:
            raise TokenError("OAUTH_NETWORK_ERROR", type(exc).__name__, refused=False) from None
        status = response.status_code
        try:
            data = response.json()
        except ValueError:
            snippet = response.text[:_SNIPPET]
            raise TokenError(
                "OAUTH_BAD_RESPONSE", f"not JSON: {snippet}", refused=False, http_status=status
            ) from None
        if isinstance(data, dict) and data.get("error"):
            code = str(data["error"])
            description = str(data.get("error_description") or "")[:_SNIPPET]
            refused = code in REFUSALS or (400 <= status < 500 and status not in (408, 429))
            raise TokenError(code, description, refused=refused, http_status=status)
        pair = parse_pair(data, self.clock()) if status == 200 else None
        if pair is None:
            raise TokenError(
                "OAUTH_BAD_RESPONSE",
                "the answer holds no token pair",
                refused=False,
                http_status=status,
            )
        return pair
