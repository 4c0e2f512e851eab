from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from b24mw.b24app import install
from b24mw.b24app.repository import AppRepository
from b24mw.b24app.schemas import AppStatus, InstallAck, InstallOutcome
from b24mw.deps import ReadSessionDep, state_of
from b24mw.kit.auth import Actor, Role, require
from b24mw.kit.errors import NotFound
from b24mw.kit.request_context import current_request_id
from b24mw.kit.schemas import COMMON_ERRORS, problem_responses
from b24mw.siem import SecurityEvent
from b24mw.webhooks.auth import Reason
from b24mw.webhooks.formdata import parse_body
from b24mw.webhooks.runtime import WebhookUnauthorized

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
admin_router = APIRouter(prefix="/admin", tags=["admin"], responses=COMMON_ERRORS)
Admin = Annotated[Actor, Depends(require(Role.ADMIN))]

# An application with an interface is "not installed" until its install page
# calls BX24.installFinish() in the admin's browser (installation-finish.md).
_FINISH_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>b24mw</title>
<script src="//api.bitrix24.com/api/v1/"></script></head>
<body><p>b24mw is installed.</p>
<script>BX24.init(function () { BX24.installFinish(); });</script>
</body></html>
"""

_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "description": (
            "What Bitrix24 POSTs to a local application's installation handler: "
            "`event=ONAPPINSTALL` with `auth[access_token]`, `auth[refresh_token]`, "
            "`auth[member_id]`, `auth[domain]`, `auth[application_token]`... (form "
            "encoding, PHP-style keys, or the same as JSON); or the install page of an "
            "application with an interface (`AUTH_ID`, `REFRESH_ID`, `member_id`, "
            "`APPLICATION_TOKEN`, `DOMAIN` in the query). `event=ONAPPUNINSTALL` with the "
            "stored `auth[application_token]` marks the application uninstalled."
        ),
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@router.post(
    "/bitrix24/install",
    response_model=InstallAck,
    responses=problem_responses(400, 401, 404, 500, 503),
    openapi_extra=_OPENAPI_BODY,
)
async def install_application(request: Request) -> Response:
    """Bitrix24's installation handler for b24mw as a local application (`B24MW_B24_AUTH=oauth`).

    The tokens are verified by exchanging the refresh token at the OAuth server
    with our client id and secret, then stored; the worker then binds the
    event handlers. 200 `{"status": "installed"}` (an HTML page that finishes the
    installation for the frame form); 400 when the body is no installation; the
    generic 401 when it is not genuine or for another portal (reason on the SIEM
    stream); 503 when the OAuth server did not answer (nothing stored).
    """
    state = state_of(request)
    settings = state.settings
    if settings.b24_auth != "oauth":
        raise NotFound("the installation handler works with B24MW_B24_AUTH=oauth")
    hooks = state.webhooks
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > hooks.max_body_bytes:
            raise hooks.reject(request.scope, Reason.TOO_LARGE)
    parsed = install.read_request(
        parse_body(bytes(body), request.headers.get("content-type")), request.query_params
    )
    db = state.db
    installer = state.b24app.installer
    try:
        if isinstance(parsed, install.UninstallRequest):
            await installer.uninstall(parsed)
            ack = InstallAck(status=InstallOutcome.UNINSTALLED, member_id=parsed.member_id)
        else:
            base = settings.public_url or f"{request.url.scheme}://{request.url.netloc}"
            row = await installer.install(parsed, handler_base=base)
            ack = InstallAck(status=InstallOutcome.INSTALLED, member_id=row.member_id)
    except install.InstallRejected as exc:
        client = request.client
        hooks.siem.emit(
            SecurityEvent(
                reason=exc.reason,
                kind="b24app_install_rejected",
                source_ip=client.host if client else None,
                request_id=current_request_id(),
                path=request.url.path,
                user_agent=request.headers.get("user-agent"),
            )
        )
        raise WebhookUnauthorized() from None
    if hooks.installed is not None:
        # This process authenticates the application's events from now on.
        await hooks.installed.reload(db, refused_at=time.monotonic())
    if isinstance(parsed, install.InstallRequest) and parsed.framed:
        return HTMLResponse(_FINISH_PAGE)
    return Response(ack.model_dump_json(), media_type="application/json")


@admin_router.get("/b24app", response_model=AppStatus)
async def application_status(request: Request, session: ReadSessionDep, _: Admin) -> AppStatus:
    """How calls to Bitrix24 authenticate; in oauth mode the local application's
    installation: its state (`active`, `refused`, `uninstalled`), when its token
    expires and was refreshed, whether its event handlers are bound, the last
    refusal. Tokens are never shown."""
    mode = state_of(request).settings.b24_auth
    row = await AppRepository(session).current() if mode == "oauth" else None
    if row is None:
        return AppStatus(auth=mode, installed=False)
    return AppStatus(
        auth=mode,
        installed=True,
        state=row.state,
        member_id=row.member_id,
        domain=row.domain,
        client_endpoint=row.client_endpoint,
        scope=row.scope,
        user_id=row.user_id,
        version=row.version,
        expires_at=row.expires_at,
        installed_at=row.installed_at,
        refreshed_at=row.refreshed_at,
        events_bound_at=row.events_bound_at,
        last_error=row.last_error,
    )
