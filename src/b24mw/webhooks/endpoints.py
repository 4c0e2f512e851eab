from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from b24mw.deps import WriteSessionDep, state_of
from b24mw.kit.request_context import current_request_id, new_request_id
from b24mw.kit.schemas import problem_responses
from b24mw.models.base import utcnow
from b24mw.webhooks import metrics, service
from b24mw.webhooks.auth import Reason, Verified, WebhookRejected
from b24mw.webhooks.runtime import WebhookRuntime
from b24mw.webhooks.schemas import IngestOutcome, WebhookAck

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_EVENT_EXAMPLE = (
    "event=ONTASKADD&data%5BFIELDS_AFTER%5D%5BID%5D=123&ts=1766047124"
    "&auth%5Bapplication_token%5D=..."
)
_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "description": (
            "A Bitrix24 event: its native form encoding with PHP-style keys, or the same "
            "structure as JSON. Signed (hmac/both): X-Signature: sha256=HMAC-SHA256(secret, "
            '"<X-Request-Timestamp>.<raw body>"), X-Request-Timestamp (unix s, ±300 s), '
            "X-Request-Id."
        ),
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "string"},
                "example": _EVENT_EXAMPLE,
            },
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


# Two constant answers: no model to validate and serialise on the hot path.
_ANSWERS = {o: WebhookAck(status=o).model_dump_json().encode() for o in IngestOutcome}


async def _read_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise WebhookRejected(Reason.TOO_LARGE)
    return bytes(body)


async def _authenticate(runtime: WebhookRuntime, request: Request, body: bytes) -> Verified:
    content_type = request.headers.get("content-type")
    try:
        return runtime.authenticator.authenticate(request.headers, body, content_type)
    except WebhookRejected as exc:
        if exc.reason is not Reason.BAD_TOKEN or runtime.installed is None:
            raise
        # The local application may have been installed through another process
        # a moment ago: look at the stored token once more before refusing.
        refused_at = time.monotonic()
        await runtime.installed.reload(state_of(request).db, refused_at=refused_at)
        return runtime.authenticator.authenticate(request.headers, body, content_type)


@router.post(
    "/bitrix24",
    response_model=WebhookAck,
    responses=problem_responses(400, 401, 500),
    openapi_extra=_OPENAPI_BODY,
)
async def receive_bitrix24_event(request: Request, session: WriteSessionDep) -> Response:
    """Accept a Bitrix24 event: authenticate it, store it in the inbox, answer at once.

    200 `{"status": "accepted"}` when stored, `{"status": "duplicate"}` for a
    repeat of a delivery, or for content a stored event still waiting to be
    read already covers (processed once). Every authentication failure is the
    same 401; its reason goes to the SIEM stream. Processing happens in the
    worker.
    """
    runtime = state_of(request).webhooks
    request_id = current_request_id() or new_request_id()
    try:
        body = await _read_body(request, runtime.max_body_bytes)
        verified = await _authenticate(runtime, request, body)
        ingested = await service.ingest(
            session,
            verified,
            pg_inbox=runtime.pg_inbox,
            request_id=request_id,
            source_ip=request.client.host if request.client else None,
            now=utcnow(),
        )
    except WebhookRejected as exc:
        raise runtime.reject(request.scope, exc.reason) from None
    metrics.count(ingested.outcome.value, ingested.reason)
    return Response(_ANSWERS[ingested.outcome], media_type="application/json")
