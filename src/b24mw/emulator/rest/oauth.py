"""The portal's side of a local application: OAuth tokens, `auth=<token>` calls,
`event.bind`/`event.get`/`event.unbind`, `app.info`.

Rules (sources: the official REST docs, `settings/oauth/index.md`,
`auto-renewal.md`, `error-codes.md`, `api-reference/events/event-bind.md`,
`_includes/system-errors.md`; BITRIX24.md §4):

- An access token lives `access_token_lifetime_s` (3600 by default); a call
  with an expired one is 401 `expired_token`, with an unknown one 401
  `invalid_token`, without `auth` 401 `NO_AUTH_FOUND`.
- `grant_type=refresh_token` returns a new pair and retires the old refresh
  token (`invalid_grant` from then on) — and, stricter than the docs say, the
  access token it replaced (`invalid_token`).  Refresh tokens live 180 days.
- Uninstalling revokes every token; the token endpoint then answers
  `invalid_client` (the application is not installed).
- `event.*` and `app.info` work only with an application's token.
"""

from __future__ import annotations

import contextvars
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from b24mw.emulator.rest import scopes
from b24mw.emulator.rest.methodkit import Args, Handler, MethodContext, MethodResult, named
from b24mw.emulator.wire.errors import B24Error

REFRESH_LIFETIME_S = 180 * 86_400
# Events a handler may be bound to (others: ERROR_EVENT_NOT_FOUND).
BINDABLE_EVENTS = frozenset(
    {
        "ONTASKADD",
        "ONTASKUPDATE",
        "ONTASKDELETE",
        "ONTASKCOMMENTADD",
        "ONTASKCOMMENTUPDATE",
        "ONTASKCOMMENTDELETE",
        "ONAPPUNINSTALL",
        # CRM activities and open lines (emulator/openlines.py).
        "ONCRMACTIVITYADD",
        "ONCRMACTIVITYUPDATE",
        "ONCRMACTIVITYDELETE",
        "ONSESSIONSTART",
        "ONSESSIONFINISH",
        "ONOPENLINEMESSAGEADD",
        "ONOPENLINEMESSAGEUPDATE",
        "ONOPENLINEMESSAGEDELETE",
        *(
            f"ONCRM{kind}{action}"
            for kind in ("DEAL", "LEAD")
            for action in ("ADD", "UPDATE", "DELETE")
        ),
    }
)

# Who is calling: "webhook" or "app" (set per request by the portal).
CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("b24_emulator_caller", default="")


def expired_token() -> B24Error:
    return B24Error("expired_token", "The access token provided has expired.", 401)


def invalid_token() -> B24Error:
    return B24Error("invalid_token", "The access token provided is invalid.", 401)


def wrong_auth_type() -> B24Error:
    return B24Error("WRONG_AUTH_TYPE", "Current authorization type is denied for this method", 403)


@dataclass
class _Access:
    user_id: int
    expires_at: float


@dataclass
class Binding:
    event: str
    handler: str
    auth_type: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "handler": self.handler, "auth_type": str(self.auth_type)}


@dataclass
class TokenAnswer:
    status: int
    body: dict[str, Any]


@dataclass
class LocalApp:
    """One local application, installed or not, in this portal."""

    client_id: str
    client_secret: str
    access_token_lifetime_s: float
    clock: Callable[[], float]
    installed: bool = False
    # Simulated time the token endpoint takes (tests widen races with it).
    token_latency_s: float = 0.0
    user_id: int = 1
    scope: str = "task,user,im,imopenlines,crm"
    application_token: str | None = None
    bindings: list[Binding] = field(default_factory=list)
    refreshes: int = 0
    refused: int = 0
    token_log: list[dict[str, Any]] = field(default_factory=list)
    _access: dict[str, _Access] = field(default_factory=dict)
    _chain: str | None = None  # the access token the current refresh token was issued with
    _refresh: str | None = None
    _refresh_expires_at: float = 0.0

    # -- installation -------------------------------------------------------

    def install(self, *, user_id: int, scope: str) -> dict[str, Any]:
        """A fresh installation: new tokens, no handlers (a re-install drops the old ones)."""
        self.uninstall()
        self.installed = True
        self.user_id = user_id
        self.scope = scope
        self.application_token = secrets.token_hex(16)
        return self._issue()

    def uninstall(self) -> None:
        self.installed = False
        self.bindings.clear()
        self._access.clear()
        self._chain = self._refresh = None

    def expire_all(self) -> int:
        now = self.clock()
        for token in self._access.values():
            token.expires_at = min(token.expires_at, now)
        return len(self._access)

    def _issue(self) -> dict[str, Any]:
        now = self.clock()
        if self._chain is not None:
            self._access.pop(self._chain, None)
        access, refresh = secrets.token_hex(35), secrets.token_hex(35)
        self._access[access] = _Access(self.user_id, now + self.access_token_lifetime_s)
        self._chain, self._refresh = access, refresh
        self._refresh_expires_at = now + REFRESH_LIFETIME_S
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires": int(now + self.access_token_lifetime_s),
            "expires_in": int(self.access_token_lifetime_s),
        }

    def event_token(self) -> str:
        """An access token for one event delivery (not part of the refresh chain)."""
        token = secrets.token_hex(35)
        self._access[token] = _Access(self.user_id, self.clock() + self.access_token_lifetime_s)
        return token

    # -- the OAuth server ---------------------------------------------------

    def grant(self, params: dict[str, str], portal: dict[str, str]) -> TokenAnswer:
        answer = self._grant(params, portal)
        ok = answer.status == 200
        self.refreshes += ok and params.get("grant_type") == "refresh_token"
        self.refused += not ok
        self.token_log.append(
            {
                "t": self.clock(),
                "grant_type": params.get("grant_type"),
                "status": answer.status,
                "error": answer.body.get("error"),
            }
        )
        return answer

    def _grant(self, params: dict[str, str], portal: dict[str, str]) -> TokenAnswer:
        grant_type = params.get("grant_type", "")
        if grant_type not in ("refresh_token", "authorization_code"):
            return _token_error(400, "invalid_request", "grant_type is not supported")
        given_id, given_secret = params.get("client_id", ""), params.get("client_secret", "")
        if not (
            secrets.compare_digest(given_id.encode(), self.client_id.encode())
            and secrets.compare_digest(given_secret.encode(), self.client_secret.encode())
        ):
            return _token_error(401, "invalid_client", "Invalid client credentials")
        if not self.installed:
            return _token_error(401, "invalid_client", "The application is not installed")
        if grant_type == "authorization_code":
            # The emulator never redirects a person through /oauth/authorize/.
            return _token_error(400, "invalid_grant", "Invalid authorization code")
        token = params.get("refresh_token", "")
        if (
            self._refresh is None
            or not secrets.compare_digest(token.encode(), self._refresh.encode())
            or self.clock() >= self._refresh_expires_at
        ):
            return _token_error(400, "invalid_grant", "Invalid refresh token")
        issued = self._issue()
        body = {
            **issued,
            "client_endpoint": portal["client_endpoint"],
            "domain": "oauth.bitrix.info",
            "member_id": portal["member_id"],
            "scope": self.scope,
            "server_endpoint": portal["server_endpoint"],
            "status": "L",
            "user_id": self.user_id,
        }
        return TokenAnswer(200, body)

    # -- REST ---------------------------------------------------------------

    def check(self, token: str) -> B24Error | None:
        """Why a call with ``token`` is refused, or None."""
        access = self._access.get(token) if token else None
        if access is None:
            return invalid_token()
        if self.clock() >= access.expires_at:
            return expired_token()
        return None

    def targets(self, event: str) -> list[str]:
        return [b.handler for b in self.bindings if b.event == event]

    def state(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "installed": self.installed,
            "client_id": self.client_id,
            "access_token_lifetime_s": self.access_token_lifetime_s,
            "token_latency_s": self.token_latency_s,
            "user_id": self.user_id,
            "scope": self.scope,
            "application_token": self.application_token,
            "bindings": [b.to_dict() for b in self.bindings],
            "refreshes": self.refreshes,
            "refused": self.refused,
            "valid_access_tokens": sum(1 for a in self._access.values() if a.expires_at > now),
            "token_requests": list(self.token_log),
        }

    def methods(self) -> dict[str, Handler]:
        return {
            "event.bind": self._bind,
            "event.get": self._get,
            "event.unbind": self._unbind,
            "app.info": self._info,
        }

    def _require_app(self) -> None:
        if CALLER.get() != "app":
            raise wrong_auth_type()

    def _bind(self, ctx: MethodContext, args: Args) -> MethodResult:
        self._require_app()
        params = named(args)
        event = str(params.get("event") or "").strip().upper()
        handler = str(params.get("handler") or "").strip()
        # A CRM event exists for an application with the crm scope only (UNCONFIRMED
        # which error a portal gives without it: the stricter "not found").
        crm_hidden = event.startswith("ONCRM") and "crm" not in scopes.parse(self.scope)
        if event not in BINDABLE_EVENTS or crm_hidden:
            raise B24Error("ERROR_EVENT_NOT_FOUND", "Event not found", 400)
        if not handler.startswith(("http://", "https://")):
            raise B24Error("ERROR_CORE", "Handler URL is invalid", 400)
        if any(b.event == event and b.handler == handler for b in self.bindings):
            raise B24Error("ERROR_CORE", "Handler already binded", 400)
        self.bindings.append(Binding(event, handler))
        return MethodResult(True)

    def _get(self, ctx: MethodContext, args: Args) -> MethodResult:
        self._require_app()
        return MethodResult([b.to_dict() for b in self.bindings])

    def _unbind(self, ctx: MethodContext, args: Args) -> MethodResult:
        self._require_app()
        params = named(args)
        event = str(params.get("event") or "").strip().upper()
        handler = str(params.get("handler") or "").strip()
        keep = [
            b
            for b in self.bindings
            if (event and b.event != event) or (handler and b.handler != handler)
        ]
        count = len(self.bindings) - len(keep)
        self.bindings[:] = keep
        return MethodResult({"count": count})

    def _info(self, ctx: MethodContext, args: Args) -> MethodResult:
        if CALLER.get() != "app":
            raise B24Error("ACCESS_DENIED", "Access denied! Application context required", 400)
        return MethodResult(
            {
                "ID": 1,
                "CODE": self.client_id,
                "VERSION": 1,
                "STATUS": "L",
                "INSTALLED": self.installed,
                "PAYMENT_EXPIRED": "N",
                "DAYS": None,
                "LANGUAGE_ID": "ru",
                "LICENSE": "ru_pro100",
                "LICENSE_TYPE": "pro100",
                "LICENSE_FAMILY": "pro",
            }
        )


def _token_error(status: int, code: str, description: str) -> TokenAnswer:
    return TokenAnswer(status, {"error": code, "error_description": description})
