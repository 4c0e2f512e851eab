"""The worker side of the inbox: claim due rows, read what they point at in
one throttled ``batch``, decide each row in its own unit of work.

A row's effects (order, history, outbox comment) and its final status commit
together, so a crash re-runs a row without doubling its effect; Bitrix24
being unavailable puts the row back on the retry schedule (10 s, 30 s, 2 min,
10 min...) until ``B24MW_WEBHOOK_INBOX_MAX_ATTEMPTS``, then ``failed``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from b24mw.bitrix24.client import CommandResult
from b24mw.bitrix24.errors import Bitrix24Error, HeldBack, Outcome
from b24mw.bitrix24.gateway import Bitrix24Gateway
from b24mw.crm import flows as crm_flows
from b24mw.history.repository import log_exchange
from b24mw.kit.request_context import new_request_id, set_request_id
from b24mw.models.base import utcnow
from b24mw.models.enums import InboxStatus, LogDirection
from b24mw.outbox.schedulers import WorkerContext
from b24mw.settings import Settings
from b24mw.support import flows as support_flows
from b24mw.webhooks import fetch, flows
from b24mw.webhooks.events import ACTIVITY_EVENTS, OPENLINE_HINTS, EventRef, read_event
from b24mw.webhooks.metrics import INBOX_PROCESSED
from b24mw.webhooks.repository import WebhookRepository

log = structlog.get_logger("b24mw.webhooks")
# Three reads at most per row: 16 rows stay within one 50-command batch.
ROWS_PER_ROUND = 16
LEASE = timedelta(seconds=120)
READS_KEPT = timedelta(days=7)
# Rows held back by the limiter are due again within these bounds.
HELD_BACK_RECHECK = (timedelta(seconds=1), timedelta(seconds=5))
ORDER_EVENTS = frozenset({"ONTASKADD", "ONTASKUPDATE"})
NOT_VISIBLE = (
    "the task is gone or not visible to the integration user (deleted, or the user is "
    "not a Bitrix24 administrator and has no role on it: b24mw check)"
)
_REST_USER = re.compile(r"/rest/(\d+)/")


def self_user_id(settings: Settings, b24: Bitrix24Gateway | None = None) -> int | None:
    """Our own Bitrix24 user: the one in the incoming-webhook URL (or the one
    the installed application's tokens act as), unless set."""
    if settings.webhook_self_user_id is not None:
        return settings.webhook_self_user_id
    if b24 is not None and b24.user_id is not None:
        return b24.user_id
    match = _REST_USER.search(settings.b24_url or "")
    return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class Job:
    inbox_id: int
    ref: EventRef | None
    request_id: str | None
    attempts: int


class Retry(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _reads(job: Job, tags_from: str = "get") -> dict[str, tuple[str, dict[str, Any]]]:
    """The commands an event needs.  Rows of one task share its ``t<id>`` read,
    so that read is the same for every event: with the tags when they come
    from tasks.task.get (one command instead of two)."""
    ref = job.ref
    if ref is not None and ref.activity_id:
        return {f"a{ref.activity_id}": ("crm.activity.get", {"id": ref.activity_id})}
    if ref is not None and ref.is_crm:
        return crm_flows.reads(ref)
    if ref is None or ref.task_id is None:
        return {}
    task_key = f"t{ref.task_id}"
    task_read = fetch.task_get(ref.task_id, with_tags=tags_from == "get")
    if ref.name in ORDER_EVENTS:
        if tags_from == "get":
            return {task_key: task_read}
        return {task_key: task_read, f"g{ref.task_id}": fetch.task_tags(ref.task_id)}
    if ref.name == "ONTASKCOMMENTADD" and ref.comment_id:
        return {
            f"c{ref.comment_id}": fetch.comment_get(ref.task_id, ref.comment_id),
            task_key: task_read,
        }
    if ref.name == "ONTASKCOMMENTADD" and ref.is_new_card_comment and ref.message_id:
        # The message is read from the chat the task read names: the task
        # command comes first, the message command refers to its answer.
        return {
            task_key: task_read,
            f"m{ref.message_id}": fetch.message_get(task_key, ref.message_id),
        }
    return {}


async def process_inbox(ctx: WorkerContext) -> int:
    """One round: up to ``ROWS_PER_ROUND`` due rows; the number handled."""
    if ctx.b24 is None or not await ctx.b24.ready():
        return 0
    async with ctx.db.unit_of_work() as session:
        ids = await WebhookRepository(session).claim_due(utcnow(), ROWS_PER_ROUND, LEASE)
    if not ids:
        return 0
    jobs: list[Job] = []
    async with ctx.db.reader() as session:
        repo = WebhookRepository(session)
        for inbox_id in ids:
            row = await repo.get(inbox_id)
            if row is not None:
                ref = read_event(row.payload) if isinstance(row.payload, dict) else None
                jobs.append(Job(row.id, ref, row.request_id, row.attempts))
    commands: dict[str, tuple[str, dict[str, Any]]] = {}
    tags_from = ctx.settings.webhook_tags_from
    for job in jobs:
        commands.update(_reads(job, tags_from))
    answers: dict[str, CommandResult] = {}
    failure: Retry | None = None
    if commands:
        # The reads carry the request id of the first event they serve.
        set_request_id(jobs[0].request_id or new_request_id())
        try:
            answers = await ctx.b24.batch(commands)
        except HeldBack as exc:
            # Our own limiter had no slot: nothing was sent, so no attempt is spent.
            await _give_back(ctx, [job for job in jobs if _reads(job)], exc)
            jobs = [job for job in jobs if not _reads(job)]
        except Bitrix24Error as exc:
            failure = Retry(exc.error.code, exc.error.text)
        finally:
            set_request_id(None)
    for job in jobs:
        await _finish(ctx, job, answers, failure if _reads(job, tags_from) else None)
    return len(jobs)


async def _finish(
    ctx: WorkerContext, job: Job, answers: dict[str, CommandResult], failure: Retry | None
) -> None:
    set_request_id(job.request_id or new_request_id())
    try:
        async with ctx.db.unit_of_work() as session:
            if failure is not None:
                raise failure
            result = await _decide(session, ctx, job, answers)
            await WebhookRepository(session).finish(
                job.inbox_id, result.status, result.errors, utcnow()
            )
        INBOX_PROCESSED.labels(result.status.value).inc()
    except Retry as retry:
        await _retry(ctx, job, retry.code, retry.message)
    except Exception as exc:
        log.exception("inbox_row_failed", inbox_id=job.inbox_id)
        await _retry(ctx, job, type(exc).__name__, str(exc)[:300])
    finally:
        set_request_id(None)


def _needs_grant(item: CommandResult) -> str | None:
    """What the portal's administrator must grant for a read it refused for
    want of a scope or of access; ``None`` for any other refusal."""
    code = item.error.code if item.error is not None else ""
    if code == "insufficient_scope":
        scope = next(
            (
                s
                for p, s in (("im.", "im"), ("imopenlines.", "imopenlines"), ("crm.", "crm"))
                if item.method.startswith(p)
            ),
            "task",
        )
        return (
            f"{item.method}: the webhook (or application) lacks the '{scope}' scope; "
            "grant it in Bitrix24 (README: Connecting a real portal)"
        )
    if code == "ACCESS_ERROR" and item.method.startswith("im."):
        return (
            f"{item.method}: no access to the task's chat; the integration user "
            "must be a Bitrix24 administrator"
        )
    return None


def _answer(answers: dict[str, CommandResult], key: str) -> Any:
    """The command's result; a transient error raises ``Retry``; a permanent
    one (the comment or task is gone) reads as nothing.  A read refused for
    want of a scope or of access raises ``Retry`` with what to grant: the
    event is kept (retry schedule), never dropped as "not found"."""
    item = answers.get(key)
    if item is None:
        return None
    if item.error is not None:
        grant = _needs_grant(item)
        if grant is not None:
            log.warning("b24_read_refused", method=item.method, code=item.error.code)
            raise Retry(item.error.code, grant)
        if item.error.outcome is Outcome.PERMANENT:
            return None
        raise Retry(item.error.code, item.error.text)
    return item.result


async def _decide(
    session: Any, ctx: WorkerContext, job: Job, answers: dict[str, CommandResult]
) -> flows.Result:
    ref = job.ref
    if ref is None:
        return flows.Result.note("not_an_event", "payload names no event")
    flow_context = flows.Context(
        outbox=ctx.outbox,
        locale=ctx.settings.locale,
        order_tag=ctx.settings.webhook_order_tag,
        self_user_id=self_user_id(ctx.settings, ctx.b24),
    )
    if ref.name in ACTIVITY_EVENTS:
        return await _on_activity(session, ref, answers)
    if ref.name in OPENLINE_HINTS:
        due = await support_flows.on_hint(
            session, chat_id=ref.chat_id, b24_session_id=ref.session_id
        )
        return flows.Result.note("chat_hint", f"{ref.name}: {due} session(s) read sooner")
    if ref.is_crm:
        answer = _answer(answers, crm_flows.read_key(ref)) if _reads(job) else None
        return await crm_flows.on_event(session, ref, answer, flow_context.self_user_id)
    if ref.name == "ONTASKDELETE" and ref.task_id is not None:
        return await flows.on_task_deleted(session, ref.task_id)
    tags_from = ctx.settings.webhook_tags_from
    if ref.task_id is None or not _reads(job, tags_from):
        return flows.Result.note("ignored", f"{ref.name}: nothing to do")
    task = fetch.parse_task(
        _answer(answers, f"t{ref.task_id}"),
        _tags(answers, ref.task_id),
        tags_in_task=tags_from == "get",
    )
    if task is not None and ref.name in ORDER_EVENTS and not task.tags_known:
        # Without its tags the task cannot be told an order or not: keep the
        # event (the retry schedule) and say what to set.
        raise Retry(
            "TAGS_NOT_RETURNED",
            "tasks.task.get answered without the task's tags (this portal's get ignores "
            "select TAGS); set B24MW_WEBHOOK_TAGS_FROM=list",
        )
    if task is not None and task.changed_date:
        # What reconciliation compares against: this change has been seen, by
        # a read that ran at this portal time.
        await WebhookRepository(session).remember_read(
            task.id, task.changed_date, utcnow(), fetch.portal_time(answers.get(f"t{ref.task_id}"))
        )
    if ref.name in ORDER_EVENTS:
        if task is None:
            return flows.Result.note("task_not_found", NOT_VISIBLE)
        return await flows.on_task(session, flow_context, ref.name, task)
    if ref.is_new_card_comment and ref.message_id:
        if task is None:
            # Gone or not visible: its chat cannot be named either.
            return flows.Result.note("task_not_found", NOT_VISIBLE)
        raw = _answer(answers, f"m{ref.message_id}")
        comment = fetch.parse_message(raw, ref.message_id, ref.task_id)
    else:
        assert ref.comment_id is not None
        comment = fetch.parse_comment(_answer(answers, f"c{ref.comment_id}"), ref.task_id)
    if comment is None:
        return flows.Result.note("comment_not_found", "the comment is gone or not visible")
    return await flows.on_comment(session, flow_context, ref.name, comment, task)


async def _on_activity(
    session: Any, ref: EventRef, answers: dict[str, CommandResult]
) -> flows.Result:
    """Only open-line sessions matter; the session itself is read by the poller."""
    if not ref.activity_id:
        return flows.Result.note("ignored", f"{ref.name}: no activity id")
    activity = support_flows.parse_activity(_answer(answers, f"a{ref.activity_id}"))
    if activity is None:
        return flows.Result.note("ignored", "not an open-line session (or gone)")
    row = await support_flows.on_activity(session, activity)
    return flows.Result.note("chat_session", f"session {row.b24_session_id} registered")


def _tags(answers: dict[str, CommandResult], task_id: int) -> Any:
    return _answer(answers, f"g{task_id}")


async def _give_back(ctx: WorkerContext, jobs: list[Job], held: HeldBack) -> None:
    """Unclaim rows whose reads the limiter held back: the attempt the claim
    counted is returned, and they are due when a slot may be had."""
    now = utcnow()
    later = now + HELD_BACK_RECHECK[0]
    if held.error.reset_at is not None:
        # When the limiter expects a slot, but asked again sooner: a pause may
        # end early, or a worker with a larger quota may take over.
        slot = datetime.fromtimestamp(held.error.reset_at, UTC)
        later = max(later, min(slot, now + HELD_BACK_RECHECK[1]))
    async with ctx.db.unit_of_work() as session:
        await WebhookRepository(session).give_back([job.inbox_id for job in jobs], later)
    log.info("inbox_held_back", rows=len(jobs), until=later.isoformat(), reason=held.error.code)


async def _retry(ctx: WorkerContext, job: Job, code: str, message: str) -> None:
    now = utcnow()
    error = {"code": code, "message": message, "attempt": job.attempts, "at": now.isoformat()}
    async with ctx.db.unit_of_work() as session:
        repo = WebhookRepository(session)
        if job.attempts >= ctx.settings.webhook_inbox_max_attempts:
            row = await repo.get(job.inbox_id)
            errors = [*((row.errors if row else None) or []), error]
            await repo.finish(job.inbox_id, InboxStatus.FAILED, errors, now)
            log_exchange(
                session,
                direction=LogDirection.IN,
                system="b24",
                endpoint=job.ref.name if job.ref else "webhook",
                status="failed",
                resource_ref=f"task:{job.ref.task_id}" if job.ref and job.ref.task_id else None,
                response={"errors": errors},
                error_code=code,
                retry_count=job.attempts,
            )
            INBOX_PROCESSED.labels(InboxStatus.FAILED.value).inc()
            return
        delays = ctx.settings.outbox_retry_delay_list
        delay = delays[min(job.attempts, len(delays)) - 1] if job.attempts else delays[0]
        await repo.retry_later(job.inbox_id, error, now + timedelta(seconds=delay))


async def forget_old_reads(ctx: WorkerContext) -> int:
    """A task read older than reconciliation's first look-back is never asked for."""
    async with ctx.db.unit_of_work() as session:
        await WebhookRepository(session).purge_reads(utcnow() - READS_KEPT)
    return 0
