"""Did a write whose answer was lost happen?  One read per Bitrix24 method.

Bitrix24 has no idempotency for writes (BITRIX24.md §4): a write whose answer
was lost (timeout, 5xx, a proxy's HTML page, a worker that died holding it)
may have run.  Before such a job is sent again the worker makes the read
this module names for its method; what the read finds decides:

- found: the write happened, the job is done with the found result, and
  its result hook runs as if the answer had arrived (a delivery stores the
  id of the task found);
- not found: it did not happen, and it is sent again at once.

The read is made only after ``B24MW_OUTBOX_LATE_APPLY_S`` has passed since
the write could last have been sent (``outbox.states``): a portal may still
be executing a request whose answer we gave up on, and a read before it
finishes would find nothing and cause the duplicate it exists to prevent.

- ``task.commentitem.add``: the job's marker in the text of one of the
  task's chat messages on the new task card (``tasks.task.get`` names the
  chat, ``chatId``; ``im.dialog.messages.get`` pages back from the newest
  message to those older than the job), or of one of its comments
  (``task.commentitem.getlist``);
- ``tasks.task.add``: the job's marker in the ``DESCRIPTION`` of a task that
  ``tasks.task.list`` finds by documented filters — ``RESPONSIBLE_ID``,
  ``TITLE``, ``>=CREATED_DATE`` (and ``PARENT_ID`` for a subtask);
  ``DESCRIPTION`` itself is not filterable;
- status methods (``tasks.task.start``, ``complete``, ``defer``...) need no
  lookup of their own: a status job is planned from the task's current
  status on every attempt (``outbox.task_status``), and its first read
  shows whether a lost write happened.

A lookup may take more than one read (one per round): a step that neither
finds the write nor proves it absent answers ``Continue`` with the next
step, which the job keeps (``payload["lookup"]``) until the lookup decides.

- ``crm.timeline.comment.add``: the job's marker in a comment of the deal's
  timeline (``crm.timeline.comment.list``, newest first);
- ``crm.item.update`` of a deal's stage: the deal (``crm.item.get``) is in
  that stage, or closed in any other (someone closed it since: b24mw does
  not move a closed deal again).

Methods not listed are re-sent without a read: ``tasks.task.update`` sets
fields to values, so doing it twice leaves what doing it once does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

COMMENT_ADD = "task.commentitem.add"
COMMENT_LIST = "task.commentitem.getlist"
CHAT_MESSAGES = "im.dialog.messages.get"
# Messages per page of a chat search (the method's maximum).
CHAT_PAGE = 50
TASK_ADD = "tasks.task.add"
TASK_LIST = "tasks.task.list"
TASK_GET = "tasks.task.get"
TIMELINE_ADD = "crm.timeline.comment.add"
TIMELINE_LIST = "crm.timeline.comment.list"
ITEM_UPDATE = "crm.item.update"
ITEM_GET = "crm.item.get"
# tasks.task.list's fixed page size.
LIST_PAGE = 50

# How far before the job's creation a task found by the lookup may have been
# created: covers clock skew between our database and the portal.
CREATED_SKEW = timedelta(hours=1)
TASK_FIELDS = ["ID", "TITLE", "DESCRIPTION", "RESPONSIBLE_ID", "PARENT_ID", "CREATED_DATE"]


@dataclass(frozen=True, slots=True)
class Lookup:
    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Continue:
    """Neither found nor proven absent: look again with ``progress``, the next
    step, kept by the job until the lookup decides."""

    progress: dict[str, Any]


class Job(Protocol):
    """What a check needs of an outbox job."""

    payload: Any
    created_at: datetime


class Check(Protocol):
    def lookup(self, job: Job) -> Lookup | None: ...

    def found(self, job: Job, result: Any) -> Any | Continue | None:
        """The write's result when the answer shows it happened, ``None``
        when it shows it did not, ``Continue`` when it cannot tell yet."""
        ...


def progress(job: Job) -> dict[str, Any]:
    """Where a multi-step lookup of this job stands (empty: at its start)."""
    value = job.payload.get("lookup") if isinstance(job.payload, dict) else None
    return value if isinstance(value, dict) else {}


def advance(job: Job, step: dict[str, Any] | None) -> None:
    """Keep the next step of the job's lookup (``None``: the lookup is over).
    The payload is reassigned: SQLAlchemy does not see in-place JSON changes."""
    payload = dict(job.payload) if isinstance(job.payload, dict) else {}
    if step is None and "lookup" not in payload:
        return
    if step is None:
        payload.pop("lookup", None)
    else:
        payload["lookup"] = step
    job.payload = payload


def _task_id(params: Mapping[str, Any]) -> Any:
    for key in ("TASKID", "taskId", "TASK_ID", "taskid"):
        if key in params:
            return params[key]
    return None


def _params(job: Job) -> dict[str, Any]:
    params = job.payload.get("params") if isinstance(job.payload, dict) else None
    return params if isinstance(params, dict) else {}


def _marker(job: Job) -> str | None:
    marker = job.payload.get("marker") if isinstance(job.payload, dict) else None
    return marker if isinstance(marker, str) and marker else None


def _items(value: Any) -> list[Any]:
    # PHP sends a list, or a map when its keys are not 0..n-1.
    if isinstance(value, dict):
        return list(value.values())
    return value if isinstance(value, list) else []


def _as_id(raw: Any) -> Any:
    return int(raw) if isinstance(raw, str) and raw.isdigit() else raw


def _date(raw: Any) -> datetime | None:
    """A message's ``date`` (ISO 8601 with its offset); ``None`` when unreadable."""
    try:
        value = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return value if value is not None and value.tzinfo is not None else None


class CommentByMarker:
    """The task first: its ``chatId`` says the new card.  Then its chat, a
    page at a time from the newest message back to the first older than the
    job; then (or at once on the classic card) its comments.  A new-card
    comment found in the chat never depends on ``task.commentitem.getlist``,
    whose answer on that card is not documented ("does not work")."""

    def lookup(self, job: Job) -> Lookup | None:
        task_id = _task_id(_params(job))
        if _marker(job) is None or task_id is None:
            return None
        step = progress(job)
        if step.get("step") == "chat":
            # LAST_ID=0: the newest messages, and exactly LIMIT of them (without
            # it a reader with unread messages gets a differently shaped page).
            params = {"DIALOG_ID": f"chat{step.get('chat_id')}", "LAST_ID": step.get("last_id", 0)}
            return Lookup(CHAT_MESSAGES, {**params, "LIMIT": CHAT_PAGE})
        if step.get("step") == "comments":
            # Positional: TASKID, then ORDER.
            return Lookup(COMMENT_LIST, {"TASKID": task_id, "ORDER": {"ID": "desc"}})
        return Lookup(TASK_GET, {"taskId": task_id, "select": ["ID", "CHAT_ID"]})

    def found(self, job: Job, result: Any) -> Any | Continue | None:
        marker = _marker(job)
        if not marker:
            return None
        step = progress(job)
        if step.get("step") == "chat":
            return self._in_chat(job, step, marker, result)
        if step.get("step") == "comments":
            for item in _items(result):
                if isinstance(item, dict) and marker in str(item.get("POST_MESSAGE") or ""):
                    return _as_id(item.get("ID"))
            return None
        task = result.get("task") if isinstance(result, dict) else None
        if not isinstance(task, dict):
            return None  # gone or not visible: sending again gets the real error
        chat_id = _as_id(task.get("chatId"))
        if isinstance(chat_id, int) and not isinstance(chat_id, bool) and chat_id > 0:
            return Continue({"step": "chat", "chat_id": chat_id, "last_id": 0})
        return Continue({"step": "comments"})  # the classic card: no chat

    @staticmethod
    def _in_chat(job: Job, step: dict[str, Any], marker: str, result: Any) -> Any | Continue:
        messages = result.get("messages") if isinstance(result, dict) else None
        page = [m for m in _items(messages) if isinstance(m, dict)]
        for message in page:
            if marker in str(message.get("text") or ""):
                return _as_id(message.get("id"))
        ids = [i for m in page if isinstance(i := _as_id(m.get("id")), int)]
        oldest = min((d for m in page if (d := _date(m.get("date"))) is not None), default=None)
        previous = step.get("last_id") or 0
        searched = (
            len(page) < CHAT_PAGE
            or not ids
            or (oldest is not None and oldest < job.created_at - CREATED_SKEW)
            # A page that does not reach further back would repeat forever.
            or (previous > 0 and min(ids) >= previous)
        )
        if not searched:
            return Continue({**step, "last_id": min(ids)})
        # Back to the chat's start, or to before the job existed: not in the
        # chat.  Last, the comments (a portal that shows a chat yet keeps
        # comments); on the new card they are empty.
        return Continue({"step": "comments"})


def title_pattern(title: str) -> str:
    """``TITLE`` filters with SQL ``LIKE`` (``%``/``_`` are wildcards, and a
    backslash escapes): a backslash becomes ``_``, so the pattern still matches
    the title, and ``%``/``_`` in it only match more."""
    return title.replace("\\", "_")


class TaskByMarker:
    """The task with the job's marker among those the documented filters
    leave, a page of 50 at a time: by ``>ID`` (``start=-1``, no count) until
    a page comes back short — a responsible person with many same-titled
    tasks that day does not hide the one we made past the first page."""

    def lookup(self, job: Job) -> Lookup | None:
        fields = _params(job).get("fields")
        if _marker(job) is None or not isinstance(fields, dict):
            return None
        title, responsible = fields.get("TITLE"), fields.get("RESPONSIBLE_ID")
        if not isinstance(title, str) or not title.strip() or responsible is None:
            return None
        since = job.created_at - CREATED_SKEW
        filters: dict[str, Any] = {
            "RESPONSIBLE_ID": responsible,
            "TITLE": title_pattern(title.strip()),
            ">=CREATED_DATE": since.isoformat(timespec="seconds"),
        }
        if fields.get("PARENT_ID") is not None:
            filters["PARENT_ID"] = fields["PARENT_ID"]
        after = progress(job).get("after_id")
        if isinstance(after, int) and after > 0:
            filters[">ID"] = after
        params = {"filter": filters, "select": TASK_FIELDS, "order": {"ID": "asc"}, "start": -1}
        return Lookup(TASK_LIST, params)

    def found(self, job: Job, result: Any) -> Any | Continue | None:
        marker = _marker(job)
        tasks = [t for t in _items(result.get("tasks") if isinstance(result, dict) else None)]
        for task in tasks:
            if isinstance(task, dict) and marker and marker in str(task.get("description") or ""):
                # The shape tasks.task.add answers with, for its result hook.
                return {"task": task}
        ids = [
            i for t in tasks if isinstance(t, dict) and isinstance(i := _as_id(t.get("id")), int)
        ]
        previous = progress(job).get("after_id") or 0
        if len(tasks) >= LIST_PAGE and ids and max(ids) > previous:
            return Continue({"after_id": max(ids)})  # a full page: there may be more
        return None


class TimelineCommentByMarker:
    def lookup(self, job: Job) -> Lookup | None:
        fields = _params(job).get("fields")
        if _marker(job) is None or not isinstance(fields, dict):
            return None
        owner = {"ENTITY_ID": fields.get("ENTITY_ID"), "ENTITY_TYPE": fields.get("ENTITY_TYPE")}
        return Lookup(
            TIMELINE_LIST, {"filter": owner, "select": ["ID", "COMMENT"], "order": {"ID": "DESC"}}
        )

    def found(self, job: Job, result: Any) -> Any | None:
        marker = _marker(job)
        for item in _items(result):
            if isinstance(item, dict) and marker and marker in str(item.get("COMMENT") or ""):
                return _as_id(item.get("ID"))
        return None


class ItemInStage:
    def lookup(self, job: Job) -> Lookup | None:
        params = _params(job)
        fields = params.get("fields")
        if not isinstance(fields, dict) or not fields.get("stageId"):
            return None
        return Lookup(
            ITEM_GET, {"entityTypeId": params.get("entityTypeId"), "id": params.get("id")}
        )

    def found(self, job: Job, result: Any) -> Any | None:
        item = result.get("item") if isinstance(result, dict) else None
        if not isinstance(item, dict):
            return None  # gone or not visible: sending again gets the real error
        wanted = _params(job).get("fields", {}).get("stageId")
        if item.get("stageId") == wanted or item.get("stageSemanticId") in ("S", "F"):
            return {"item": item}
        return None


CHECKS: dict[str, Check] = {
    TIMELINE_ADD: TimelineCommentByMarker(),
    ITEM_UPDATE: ItemInStage(),
    COMMENT_ADD: CommentByMarker(),
    TASK_ADD: TaskByMarker(),
}


def check_for(method: str) -> Check | None:
    return CHECKS.get(method.lower())
