"""The REST surface: `/rest/{user}/{secret}/{method}[.json]`, JSON, form or query arguments."""

from __future__ import annotations

import email.policy
import json
from email.parser import BytesParser
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from b24mw.emulator.portal import Portal
from b24mw.emulator.rest.methodkit import Args
from b24mw.emulator.wire.errors import B24Error, invalid_request
from b24mw.emulator.wire.jsonbody import decode_json
from b24mw.emulator.wire.phpquery import parse_pairs, parse_query
from b24mw.emulator.wire.replies import Reply

JSON_MEDIA_TYPE = "application/json; charset=utf-8"


def method_name(raw: str) -> str:
    name = raw.strip().lower()
    return name.removesuffix(".json")


def _merge(base: dict[str, Any], extra: Args) -> Args:
    if isinstance(extra, list):
        # A positional JSON list replaces named query parameters.
        return extra if not base else {**base, **{str(i): v for i, v in enumerate(extra)}}
    base.update(extra)
    return base


async def read_args(request: Request) -> tuple[Args | None, B24Error | None]:
    """Query string first, then the body on top, like PHP's `$_REQUEST`."""
    args: dict[str, Any] = {}
    if request.url.query:
        parsed = parse_query(request.url.query)
        args = parsed if isinstance(parsed, dict) else {str(i): v for i, v in enumerate(parsed)}
    if request.method != "POST":
        return args, None
    body = await request.body()
    if not body.strip():
        return args, None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.endswith("json") or (not content_type and body.lstrip()[:1] in b"{["):
        try:
            data = decode_json(body)
        except ValueError:
            # PHP's json_decode fails on an unpaired surrogate escape too
            # (JSON_ERROR_UTF16), so the portal cannot read the body either.
            return None, invalid_request("Request body is not valid JSON")
        if not isinstance(data, dict | list):
            return None, invalid_request("Request body must be a JSON object")
        return _merge(args, data), None
    if content_type.startswith("multipart/"):
        pairs = multipart_fields(request.headers["content-type"], body)
        return _merge(args, parse_pairs(pairs)), None
    return _merge(args, parse_query(body.decode("utf-8", "replace"))), None


def multipart_fields(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """Text fields of a multipart/form-data body; file parts are ignored.

    The stdlib MIME parser keeps the emulator free of python-multipart.
    """
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    pairs: list[tuple[str, str]] = []
    if not message.is_multipart():
        return pairs
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            pairs.append((name, payload.decode(part.get_content_charset() or "utf-8", "replace")))
    return pairs


def render(reply: Reply) -> Response:
    if reply.html is not None:
        return Response(reply.html, status_code=reply.status, media_type="text/html")
    body = json.dumps(reply.payload, separators=(",", ":"))
    return Response(body, status_code=reply.status, media_type=JSON_MEDIA_TYPE)


async def _call(request: Request, credentials: tuple[str, str] | None) -> Response:
    portal: Portal = request.app.state.portal
    method = method_name(request.path_params["method"])
    headers = dict(request.headers.items())
    args, error = await read_args(request)
    reply = await portal.handle(method, credentials, args, headers, error)
    return render(reply)


async def webhook_call(request: Request) -> Response:
    params = request.path_params
    return await _call(request, (params["user"], params["secret"]))


async def oauth_call(request: Request) -> Response:
    """`/rest/{method}` with `auth=<access token>` (query or body), as a local
    application calls; the token is checked by `emulator/oauth.py`."""
    portal: Portal = request.app.state.portal
    method = method_name(request.path_params["method"])
    headers = dict(request.headers.items())
    args, error = await read_args(request)
    token: str | None = None
    if isinstance(args, dict):
        raw = args.pop("auth", None)
        token = raw if isinstance(raw, str) else None
    reply = await portal.handle(method, token, args, headers, error)
    return render(reply)
