"""Installing b24mw as a local application: what Bitrix24 POSTs, and how far it can be trusted.

Two shapes reach the installation handler (official docs:
``settings/app-installation/local-apps/installation-callback.md``,
``api-reference/common/events/on-app-install.md``, ``settings/oauth/simple-way.md``):

- an application that "uses API only": ``event=ONAPPINSTALL`` (or no ``event``)
  with ``auth[access_token]``, ``auth[refresh_token]``, ``auth[expires_in]``,
  ``auth[domain]``, ``auth[client_endpoint]``, ``auth[server_endpoint]``,
  ``auth[member_id]``, ``auth[application_token]``, ``auth[scope]``,
  ``auth[status]``;
- an application with an interface, whose install page opens in a frame:
  ``AUTH_ID``, ``AUTH_EXPIRES``, ``REFRESH_ID``, ``member_id``,
  ``APPLICATION_TOKEN``, ``APPLICATION_SCOPE``, ``status``, with ``DOMAIN`` and
  ``PROTOCOL`` in the query string.

Bitrix24 signs neither.  What can be checked: the refresh token is exchanged
at the configured OAuth server with *our* client id and secret, which works
only for a token issued to this application (a local application's keys are
valid in its own portal only), and the answer's ``member_id`` and endpoint
must match the request and ``B24MW_B24_PORTAL_URL``.  The exchange also
rotates the token, so a captured install request cannot be replayed.  What
cannot be checked: who sent the request (no signature, no documented source
addresses) — only that its tokens are genuine.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from b24mw.b24app.oauth_server import TokenError, TokenPair, TokenServer
from b24mw.b24app.repository import ACTIVE, UNINSTALLED, AppRepository
from b24mw.history.repository import log_exchange
from b24mw.kit.db import Database
from b24mw.kit.errors import AppError, FieldError, MalformedBody
from b24mw.models.b24app import AppInstallation
from b24mw.models.enums import LogDirection
from b24mw.settings import Settings

INSTALL = "ONAPPINSTALL"
UNINSTALL = "ONAPPUNINSTALL"


class InstallRejected(Exception):
    """Not a genuine installation; the reason goes to the SIEM stream only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OAuthServerUnavailable(AppError):
    status = 503
    code = "dependency.b24_oauth_unavailable"
    title = "The Bitrix24 OAuth server did not answer"


@dataclass(frozen=True, slots=True)
class InstallRequest:
    framed: bool  # the install page of an application with an interface
    member_id: str
    domain: str
    refresh_token: str
    application_token: str | None
    scope: str | None
    status: str | None

    def public(self) -> dict[str, Any]:
        """What may be logged: no token of any kind."""
        return {
            "form": "frame" if self.framed else "event",
            "member_id": self.member_id,
            "domain": self.domain,
            "scope": self.scope,
            "status": self.status,
            "application_token": "present" if self.application_token else "absent",
        }


@dataclass(frozen=True, slots=True)
class UninstallRequest:
    member_id: str | None
    application_token: str | None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _require(fields: dict[str, str | None]) -> None:
    missing = [name for name, value in fields.items() if value is None]
    if missing:
        raise MalformedBody(
            "not a Bitrix24 installation request",
            errors=[FieldError(name, "required", "validation.required") for name in missing],
        )


def read_request(
    payload: dict[str, Any] | None, query: Mapping[str, str]
) -> InstallRequest | UninstallRequest:
    """The installation (or uninstallation) a request carries; ``MalformedBody`` if none."""
    if payload is None:
        raise MalformedBody("the body is neither a form nor a JSON object")
    event = (_text(payload.get("event")) or "").upper()
    auth = payload.get("auth")
    if event == UNINSTALL:
        block = auth if isinstance(auth, dict) else {}
        return UninstallRequest(
            _text(block.get("member_id")), _text(block.get("application_token"))
        )
    if event and event != INSTALL:
        raise MalformedBody(
            f"{event} is not an installation event",
            errors=[FieldError("event", f"must be {INSTALL} or {UNINSTALL}", "validation.enum")],
        )
    if isinstance(auth, dict):
        fields = {
            "auth[refresh_token]": _text(auth.get("refresh_token")),
            "auth[member_id]": _text(auth.get("member_id")),
            "auth[domain]": _text(auth.get("domain")),
        }
        _require(fields)
        return InstallRequest(
            framed=False,
            member_id=fields["auth[member_id]"] or "",
            domain=fields["auth[domain]"] or "",
            refresh_token=fields["auth[refresh_token]"] or "",
            application_token=_text(auth.get("application_token")),
            scope=_text(auth.get("scope")),
            status=_text(auth.get("status")),
        )
    fields = {
        "REFRESH_ID": _text(payload.get("REFRESH_ID")),
        "member_id": _text(payload.get("member_id")),
        "DOMAIN": _text(query.get("DOMAIN")) or _text(payload.get("DOMAIN")),
    }
    _require(fields)
    return InstallRequest(
        framed=True,
        member_id=fields["member_id"] or "",
        domain=fields["DOMAIN"] or "",
        refresh_token=fields["REFRESH_ID"] or "",
        application_token=_text(payload.get("APPLICATION_TOKEN")),
        scope=_text(payload.get("APPLICATION_SCOPE")),
        status=_text(payload.get("status")),
    )


def _host(value: str) -> str:
    return (urlsplit(value).netloc if "//" in value else value).strip().lower().rstrip("/")


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class Installer:
    def __init__(self, settings: Settings, db: Database, server: TokenServer) -> None:
        self.db = db
        self.server = server
        self.portal = _host(settings.b24_portal_url or "")
        self.member_id = settings.webhook_member_id

    async def install(self, request: InstallRequest, *, handler_base: str) -> AppInstallation:
        """Verify the tokens at the OAuth server and store the installation.

        Raises ``InstallRejected`` (not genuine, or another portal) or
        ``OAuthServerUnavailable`` (nothing was stored; install again later).
        """
        if _host(request.domain) != self.portal:
            raise InstallRejected("install_wrong_portal")
        if self.member_id is not None and request.member_id != self.member_id:
            raise InstallRejected("install_wrong_portal")
        if request.framed:
            # The frame form also arrives whenever anyone opens the application's
            # page: it installs b24mw only when no installation works, so a user
            # opening the page never replaces the integration user's tokens.
            async with self.db.reader() as session:
                current = await AppRepository(session).current()
            if current is not None and current.state == ACTIVE:
                return current
        try:
            pair = await self.server.refresh(request.refresh_token)
        except TokenError as exc:
            if exc.refused:
                raise InstallRejected("install_unverified") from None
            raise OAuthServerUnavailable(
                f"the installation could not be verified ({exc.code}); install the "
                "application again once the OAuth server answers"
            ) from None
        if pair.member_id != request.member_id or _host(pair.client_endpoint) != self.portal:
            raise InstallRejected("install_wrong_portal")
        async with self.db.unit_of_work() as session:
            row = await AppRepository(session).install(_values(request, pair, handler_base))
            log_exchange(
                session,
                direction=LogDirection.IN,
                system="b24",
                endpoint=INSTALL,
                status="ok",
                resource_ref=f"b24app:{row.member_id}",
                request=request.public(),
                response={**pair.public(), "version": row.version},
            )
        return row

    async def uninstall(self, request: UninstallRequest) -> None:
        """``ONAPPUNINSTALL``: its ``application_token`` must be the stored one
        (the only proof Bitrix24 offers for it)."""
        async with self.db.unit_of_work() as session:
            repo = AppRepository(session)
            row = await repo.lock_current()
            if (
                row is None
                or row.state != ACTIVE
                or not row.application_token
                or not _same(request.application_token, row.application_token)
                or not _same(request.member_id, row.member_id)
            ):
                raise InstallRejected("uninstall_unverified")
            repo.refuse(row, "ONAPPUNINSTALL: the application was uninstalled", state=UNINSTALLED)
            log_exchange(
                session,
                direction=LogDirection.IN,
                system="b24",
                endpoint=UNINSTALL,
                status="ok",
                resource_ref=f"b24app:{row.member_id}",
                request={"member_id": row.member_id},
            )


def _values(request: InstallRequest, pair: TokenPair, handler_base: str) -> dict[str, Any]:
    return {
        "member_id": pair.member_id,
        "domain": request.domain,
        "client_endpoint": pair.client_endpoint,
        "server_endpoint": pair.server_endpoint,
        "application_token": request.application_token,
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_at": datetime.fromtimestamp(pair.expires_at, UTC),
        "scope": pair.scope or request.scope,
        "app_status": pair.status or request.status,
        "user_id": pair.user_id,
        "handler_base": handler_base,
    }
