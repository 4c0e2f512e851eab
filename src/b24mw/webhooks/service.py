"""Ingest: store an authenticated event in the inbox, once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.models.enums import InboxStatus
from b24mw.webhooks.auth import Reason, Verified, WebhookRejected
from b24mw.webhooks.events import without_secrets
from b24mw.webhooks.repository import WebhookRepository
from b24mw.webhooks.schemas import IngestOutcome


async def ingest(
    session: AsyncSession,
    verified: Verified,
    *,
    request_id: str,
    source_ip: str | None,
    now: datetime,
) -> IngestOutcome:
    """Add the event to ``webhook_inbox`` unless it is already there.

    An exact repeat (same request id and signed bytes, or for unsigned events
    the same content) is a duplicate.  Signed bytes seen under another request
    id, or a known request id with other bytes, is a replay: raised, so the
    caller's unit of work rolls back whatever this call wrote.
    """
    repo = WebhookRepository(session)
    if verified.signed_digest is not None:
        earlier = await repo.remember_signature(verified.signed_digest, request_id, now)
        if earlier is not None:
            if earlier == request_id:
                return IngestOutcome.DUPLICATE
            raise WebhookRejected(Reason.REPLAYED)
    inbox_id = await repo.add_if_new(
        {
            "dedupe_key": verified.dedupe_key,
            "event": verified.ref.name,
            "task_id_b24": verified.ref.task_id,
            "payload": without_secrets(verified.payload),
            "status": InboxStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "errors": [],
            "request_id": request_id,
            "source_ip": source_ip,
            "received_at": now,
        }
    )
    if inbox_id is not None:
        return IngestOutcome.ACCEPTED
    if verified.signed_digest is not None:
        raise WebhookRejected(Reason.REPLAYED)
    return IngestOutcome.DUPLICATE
