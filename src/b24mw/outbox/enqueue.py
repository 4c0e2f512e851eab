"""Job builders.  Payload shapes (the worker's contract):

- ``b24.call``: ``{"method", "params", "marker"?, "on_result"?, "on_dead"?,
  "context"?}`` (``outbox.hooks``).
  ``marker`` is a unique text embedded in a comment or a new task's
  description, so a retry after a lost answer can look for it before writing
  again (``outbox.verify``).
- ``event.publish``: ``{"sink", "event"}``; ``event`` is a CloudEvents 1.0
  structured-mode JSON object, built once so retries send the same ``id``.
- ``onec.push``: ``{"url", "body", "idempotency_key"}``.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.kit.bbcode import without_hashtags
from b24mw.kit.request_context import current_request_id
from b24mw.kit.staging import StagedRow
from b24mw.models.base import utcnow
from b24mw.models.enums import JobKind, OutboxStatus
from b24mw.outbox.repository import OutboxRepository
from b24mw.settings import Settings

DEFAULT_EVENT_SINK = "file://./var/events.jsonl"


def new_marker() -> str:
    """``b24mw:<12 hex>``: written as ``[b24mw:...]`` on a line of its own.
    No ``#`` (a portal turns ``#word`` into a tag) and no BBCode tag a person
    would see rendered."""
    return f"b24mw:{uuid.uuid4().hex[:12]}"


def with_marker(text: str, marker: str) -> str:
    return f"{text}\n[{marker}]"


def task_key(task_id_b24: int | None) -> str | None:
    """Ordering key: jobs for one Bitrix24 task run in creation order."""
    return f"task:{task_id_b24}" if task_id_b24 else None


class Outbox:
    def __init__(self, settings: Settings) -> None:
        self.event_sinks = settings.event_sink_list or [DEFAULT_EVENT_SINK]
        self.onec_url = settings.onec_url.rstrip("/") if settings.onec_url else None
        # The stage a lost deal goes to, per pipeline (crm.closing).
        self.crm_lost_stages = settings.crm_lost_stage_map

    @classmethod
    def for_events(cls, event_sinks: list[str]) -> Outbox:
        """An outbox for a result hook: the worker's sinks, as recorded in the
        job that runs it (a hook receives no outbox of its own)."""
        outbox = cls.__new__(cls)
        outbox.event_sinks = list(event_sinks) or [DEFAULT_EVENT_SINK]
        outbox.onec_url = None
        outbox.crm_lost_stages = {}
        return outbox

    def _add(
        self,
        session: AsyncSession,
        kind: JobKind,
        payload: dict[str, Any],
        ordering_key: str | None,
    ) -> StagedRow:
        now = utcnow()
        return OutboxRepository(session).add(
            {
                "kind": kind,
                "payload": payload,
                "ordering_key": ordering_key,
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "request_id": current_request_id(),
                "error_history": [],
                "created_at": now,
                "updated_at": now,
            }
        )

    def b24_call(
        self,
        session: AsyncSession,
        method: str,
        params: dict[str, Any],
        *,
        ordering_key: str | None = None,
        marker: str | None = None,
        on_result: str | None = None,
        on_dead: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> StagedRow:
        payload: dict[str, Any] = {"method": method, "params": params}
        if marker:
            payload["marker"] = marker
        if on_result:
            payload["on_result"] = on_result
        if on_dead:
            payload["on_dead"] = on_dead
        if on_result or on_dead:
            payload["context"] = context or {}
        return self._add(session, JobKind.B24_CALL, payload, ordering_key)

    def b24_comment(
        self,
        session: AsyncSession,
        task_id_b24: int | None,
        text: str,
        *,
        author_id: int | None = None,
        ordering_key: str | None = None,
    ) -> StagedRow:
        """A task comment carrying a job marker, so retries never post it twice.
        ``ordering_key`` defaults to the task's; a delivery whose task does not
        exist yet passes its own (and no task id)."""
        marker = new_marker()
        fields: dict[str, Any] = {"POST_MESSAGE": with_marker(text, marker)}
        if author_id:
            fields["AUTHOR_ID"] = author_id
        return self.b24_call(
            session,
            "task.commentitem.add",
            {"TASKID": task_id_b24, "FIELDS": fields},
            ordering_key=ordering_key or task_key(task_id_b24),
            marker=marker,
        )

    def b24_task_add(
        self,
        session: AsyncSession,
        fields: dict[str, Any],
        *,
        ordering_key: str | None,
        on_result: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> StagedRow:
        """``tasks.task.add`` whose description carries a job marker: if the
        answer is lost, the task is looked for before it is created again.

        Our texts (1C's addresses and notes, item names) may hold "#5": the
        portal would make tags of them, so the title and description go out
        without hashtags."""
        marker = new_marker()
        description = without_hashtags(str(fields.get("DESCRIPTION") or ""))
        marked = {**fields, "DESCRIPTION": with_marker(description, marker)}
        if "TITLE" in fields:
            marked["TITLE"] = without_hashtags(str(fields["TITLE"]))
        return self.b24_call(
            session,
            "tasks.task.add",
            {"fields": marked},
            ordering_key=ordering_key,
            marker=marker,
            on_result=on_result,
            context=context,
        )

    def event(
        self, session: AsyncSession, event: dict[str, Any], *, ordering_key: str | None = None
    ) -> list[StagedRow]:
        """One job per sink, so each sink retries (or dead-letters) on its own."""
        return [
            self._add(session, JobKind.EVENT_PUBLISH, {"sink": sink, "event": event}, ordering_key)
            for sink in self.event_sinks
        ]

    def onec(
        self,
        session: AsyncSession,
        path: str,
        body: dict[str, Any],
        *,
        idempotency_key: str,
        ordering_key: str | None = None,
    ) -> StagedRow | None:
        if self.onec_url is None:
            return None
        payload = {
            "url": f"{self.onec_url}/{path.lstrip('/')}",
            "body": body,
            "idempotency_key": idempotency_key,
        }
        return self._add(session, JobKind.ONEC_PUSH, payload, ordering_key)
