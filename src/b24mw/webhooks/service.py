"""Ingest: store an authenticated event in the inbox so that no change is lost
and no delivery is processed twice.

Bitrix24 events carry ids and a second-resolution ``ts`` only, so two
genuine changes of one task in one second arrive as byte-identical bodies
(signed by the proxy with the same second, too).  Identical content is
therefore not proof of a repeat.  What is:

- the same ``X-Request-Id`` with the same signed bytes: one delivery sent
  twice (a proxy retry) → ``duplicate``, nothing new;
- a known ``X-Request-Id`` with other bytes: the signer never reuses an id,
  so the headers of one request were put on the body of another → ``replayed``
  (401, SIEM).

Content already seen under another delivery is a possible second change: it
must lead to a read of the task made after it arrived.  A row with the same
content that is still ``pending`` will make exactly that read, so the event
is folded into it (``duplicate``, reason ``coalesced``); otherwise a new row
is opened.  A replayed capture can do no more than a genuine repeat: effects
are idempotent per task state (``docs/webhooks.md``), and one content opens
at most ``MAX_ROWS_PER_DIGEST`` rows — past that, with nothing pending to fold
into, it is ``replayed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from b24mw.kit.db import WriteSession
from b24mw.models.enums import InboxStatus
from b24mw.webhooks.auth import Reason, Verified, WebhookRejected
from b24mw.webhooks.events import without_secrets
from b24mw.webhooks.inbox_pg import PgInbox, Placement
from b24mw.webhooks.repository import WebhookRepository
from b24mw.webhooks.schemas import IngestOutcome

# Reads one event content may cause.  The signed material includes the
# second it was signed in, so genuine repeats are changes of one task within
# one second that arrived after the previous row was already being read:
# people make two or three; ten leaves room for automation rules.
MAX_ROWS_PER_DIGEST = 10
COALESCED = "coalesced"


@dataclass(frozen=True, slots=True)
class Ingested:
    outcome: IngestOutcome
    # Why a duplicate is one: "" (the same delivery again) or "coalesced".
    reason: str = ""


async def ingest(
    session: WriteSession,
    verified: Verified,
    *,
    pg_inbox: PgInbox | None,
    request_id: str,
    source_ip: str | None,
    now: datetime,
) -> Ingested:
    """Add the event to ``webhook_inbox``, fold it into a pending row with the
    same content, or raise ``WebhookRejected``.  On PostgreSQL the row is
    committed by the ingest pool when this returns (``inbox_pg``); on SQLite
    it is written through ``session``, the request's unit of work, which
    commits it before the answer is sent."""
    values: dict[str, Any] = {
        "dedupe_key": verified.dedupe_key,
        "digest": verified.digest,
        "event": verified.ref.name,
        "task_id_b24": verified.ref.task_id,
        "payload": without_secrets(verified.payload),
        "status": InboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "errors": [],
        "request_id": request_id,
        "source_ip": source_ip,
        "received_at": now,
    }
    if pg_inbox is not None:
        placement = await pg_inbox.add(values, MAX_ROWS_PER_DIGEST)
    else:
        placement = await _place(WebhookRepository(session), values)
    return _decide(placement, verified.digest)


async def _place(repo: WebhookRepository, values: dict[str, Any]) -> Placement:
    """The SQLite twin of ``PgInbox.add`` (writers take turns: no races)."""
    known, known_digest = await repo.digest_of(values["dedupe_key"])
    if known:
        return Placement(known=True, known_digest=known_digest)
    if await repo.waiting_with_digest(values["digest"]) is not None:
        return Placement(waiting=True)
    if await repo.rows_with_digest(values["digest"]) >= MAX_ROWS_PER_DIGEST:
        return Placement()
    return Placement(inbox_id=await repo.add_if_new(values))


def _decide(placement: Placement, digest: str) -> Ingested:
    if placement.inbox_id is not None:
        return Ingested(IngestOutcome.ACCEPTED)
    if placement.known:
        # The delivery id is taken: by this very content (a repeat), or by
        # other bytes (headers moved onto another body).
        if placement.known_digest == digest:
            return Ingested(IngestOutcome.DUPLICATE)
        raise WebhookRejected(Reason.REPLAYED)
    if placement.waiting:
        return Ingested(IngestOutcome.DUPLICATE, COALESCED)
    # This content has opened MAX_ROWS_PER_DIGEST reads already.
    raise WebhookRejected(Reason.REPLAYED)
