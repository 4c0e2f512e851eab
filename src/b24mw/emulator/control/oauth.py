"""Routes of the local application: the OAuth server's token endpoint and the
control API that installs, uninstalls and ages the application.

The token endpoint stands in for `https://oauth.bitrix.info/oauth/token/`
(point `B24MW_B24_OAUTH_SERVER` at `http://<emulator>/oauth/token/`): `GET`
with the query the docs show, or a `POST` form.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from b24mw.emulator.config import OAUTH_SERVER_ENDPOINT
from b24mw.emulator.control.core import ControlError, guarded, json_object, portal_of
from b24mw.emulator.portal import Portal
from b24mw.emulator.wire.phpquery import flatten

FORMS = ("event", "frame")


def portal_identity(portal: Portal) -> dict[str, str]:
    config = portal.config
    return {
        "domain": config.portal_domain,
        "client_endpoint": config.client_endpoint,
        "server_endpoint": OAUTH_SERVER_ENDPOINT,
        "member_id": config.portal_member_id,
    }


async def token(request: Request) -> Response:
    portal: Portal = request.app.state.portal
    params = dict(request.query_params)
    if request.method == "POST":
        body = (await request.body()).decode("utf-8", "replace")
        params.update(parse_qsl(body, keep_blank_values=True))
    if portal.app.token_latency_s:
        await asyncio.sleep(portal.app.token_latency_s)
    answer = portal.app.grant(params, portal_identity(portal))
    return JSONResponse(answer.body, answer.status)


def _install_request(
    portal: Portal, form: str, issued: dict[str, Any], ts: int
) -> tuple[str, dict[str, str]]:
    """The body and extra query of the installation POST, as Bitrix24 sends it."""
    identity = portal_identity(portal)
    app = portal.app
    if form == "frame":
        query = {
            "DOMAIN": identity["domain"],
            "PROTOCOL": "1" if identity["client_endpoint"].startswith("https") else "0",
            "LANG": "ru",
            "APP_SID": uuid.uuid4().hex,
        }
        body: dict[str, Any] = {
            "AUTH_ID": issued["access_token"],
            "AUTH_EXPIRES": str(issued["expires_in"]),
            "REFRESH_ID": issued["refresh_token"],
            "SERVER_ENDPOINT": identity["server_endpoint"],
            "APPLICATION_TOKEN": app.application_token,
            "APPLICATION_SCOPE": app.scope,
            "member_id": identity["member_id"],
            "status": "L",
            "PLACEMENT": "DEFAULT",
            "PLACEMENT_OPTIONS": "{}",
        }
        return urlencode(flatten(body)), query
    event = {
        "event": "ONAPPINSTALL",
        "data": {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "ru"},
        "ts": str(ts),
        "auth": {
            "domain": identity["domain"],
            "scope": app.scope,
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expires_in": str(issued["expires_in"]),
            "server_endpoint": identity["server_endpoint"],
            "status": "L",
            "client_endpoint": identity["client_endpoint"],
            "member_id": identity["member_id"],
            "application_token": app.application_token,
        },
    }
    return urlencode(flatten(event)), {}


@guarded
async def install(request: Request) -> Response:
    """Install the application and POST its tokens to ``handler_url`` (the
    "initial installation path"), as saving the local application form does."""
    portal = portal_of(request)
    body = await json_object(request)
    unknown = set(body) - {"handler_url", "scope", "form"}
    if unknown:
        raise ControlError(400, "bad_request", f"unknown fields: {', '.join(sorted(unknown))}")
    url = body.get("handler_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ControlError(400, "bad_request", "handler_url must be an http(s) URL")
    scope = body.get("scope", "task,user,im,imopenlines,crm")
    if not isinstance(scope, str) or not scope.strip():
        raise ControlError(400, "bad_request", "scope must be a comma-separated string")
    form = body.get("form", "event")
    if form not in FORMS:
        raise ControlError(400, "bad_request", f"form must be one of: {', '.join(FORMS)}")
    # The installing user is the webhook user: calls with either credential act as it.
    issued = portal.app.install(user_id=portal.config.rest_user, scope=scope)
    content, query = _install_request(portal, form, issued, int(portal.clock()))
    target = f"{url}{'&' if '?' in url else '?'}{urlencode(query)}" if query else url
    status: int | None = None
    answer, error = "", None
    async with httpx.AsyncClient(
        transport=portal.config.handler_transport,
        timeout=portal.config.event_timeout_s,
        follow_redirects=False,
    ) as http:
        try:
            response = await http.post(
                target,
                content=content.encode(),
                headers={
                    "content-type": "application/x-www-form-urlencoded",
                    "user-agent": "Bitrix24 Webhook Engine",
                },
            )
            status, answer = response.status_code, response.text[:2000]
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}".strip()
    return JSONResponse(
        {
            "status": status,
            "body": answer,
            "error": error,
            # What was sent (tokens included: this is the portal's own record).
            "url": target,
            "form": dict(parse_qsl(content, keep_blank_values=True)),
            "member_id": portal.config.portal_member_id,
            "application_token": portal.app.application_token,
            "client_id": portal.app.client_id,
        },
        201,
    )


@guarded
async def uninstall(request: Request) -> Response:
    """Uninstall: every token is revoked; handlers bound to ONAPPUNINSTALL hear of it."""
    portal = portal_of(request)
    if portal.app.installed:
        portal.events.emit("ONAPPUNINSTALL", {"LANGUAGE_ID": "ru", "CLEAN": "0"}, app_only=True)
    portal.app.uninstall()
    return JSONResponse({"installed": False})


@guarded
async def expire(request: Request) -> Response:
    """Every access token expires now (the refresh token stays valid)."""
    return JSONResponse({"expired": portal_of(request).app.expire_all()})


@guarded
async def state(request: Request) -> Response:
    portal = portal_of(request)
    app = portal.app
    if request.method == "POST":
        body = await json_object(request)
        known = {"access_token_lifetime_s", "token_latency_s", "client_id", "client_secret"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ControlError(400, "bad_request", f"unknown settings: {', '.join(unknown)}")
        lifetime = body.get("access_token_lifetime_s", app.access_token_lifetime_s)
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            raise ControlError(400, "bad_request", "access_token_lifetime_s must be positive")
        latency = body.get("token_latency_s", app.token_latency_s)
        if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
            raise ControlError(400, "bad_request", "token_latency_s must be a non-negative number")
        for key in ("client_id", "client_secret"):
            if key in body and (not isinstance(body[key], str) or not body[key]):
                raise ControlError(400, "bad_request", f"{key} must be a non-empty string")
        app.access_token_lifetime_s = float(lifetime)
        app.token_latency_s = float(latency)
        app.client_id = body.get("client_id", app.client_id)
        app.client_secret = body.get("client_secret", app.client_secret)
    return JSONResponse(app.state())


ROUTES = [
    Route("/oauth/token/", token, methods=["GET", "POST"]),
    Route("/oauth/token", token, methods=["GET", "POST"]),
    Route("/_emulator/oauth", state, methods=["GET", "POST"]),
    Route("/_emulator/oauth/install", install, methods=["POST"]),
    Route("/_emulator/oauth/uninstall", uninstall, methods=["POST"]),
    Route("/_emulator/oauth/expire", expire, methods=["POST"]),
]
