"""Ingest: store an authenticated event in the inbox, once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from b24mw.kit.db import Database
from b24mw.models.enums import InboxStatus
from b24mw.webhooks.auth import Reason, Verified, WebhookRejected
from b24mw.webhooks.events import without_secrets
from b24mw.webhooks.inbox_pg import PgInbox
from b24mw.webhooks.repository import WebhookRepository
from b24mw.webhooks.schemas import IngestOutcome


async def ingest(
    db: Database,
    verified: Verified,
    *,
    pg_inbox: PgInbox | None,
    request_id: str,
    source_ip: str | None,
    now: datetime,
) -> IngestOutcome:
    """Add the event to ``webhook_inbox`` unless it is already there; the row
    is committed when this returns.

    An exact repeat (same request id and signed bytes, or for unsigned events
    the same content) is a duplicate.  Signed bytes seen under another request
    id, or a known request id with other bytes, is a replay (raised).
    """
    values: dict[str, Any] = {
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
    digest = verified.signed_digest
    if pg_inbox is not None and not db.is_sqlite:
        inbox = pg_inbox
        if digest is None:
            stored = await inbox.add_unsigned(values)
            return IngestOutcome.ACCEPTED if stored is not None else IngestOutcome.DUPLICATE
        inbox_id, owner = await inbox.add_signed(values, digest)
        if inbox_id is not None:
            return IngestOutcome.ACCEPTED
        if owner == request_id:
            return IngestOutcome.DUPLICATE
        raise WebhookRejected(Reason.REPLAYED)

    async with db.unit_of_work() as session:
        repo = WebhookRepository(session)
        if digest is None:
            inserted = await repo.add_if_new(values)
            return IngestOutcome.ACCEPTED if inserted is not None else IngestOutcome.DUPLICATE
        result = await repo.add_signed(values, digest)
        if result.inbox_id is not None:
            return IngestOutcome.ACCEPTED
        if not result.fresh_signature:
            earlier = await repo.signature_request_id(digest)
            if earlier == request_id:
                return IngestOutcome.DUPLICATE
        # Leaving the unit of work by this exception rolls back the signature.
        raise WebhookRejected(Reason.REPLAYED)
