"""What an inbox row leads to, inside one unit of work (the caller commits it
together with the row's final status, so an effect happens once).

- a task tagged ``instant_order`` (or a comment with ``#instant_order``)
  becomes an order through the same service as ``POST /api/v1/ww/orders``,
  answered in Bitrix24 by a comment with the order id and total;
- what cannot become an order is rejected: ``errors[]`` on the row, an
  ``integration_log`` row, and one comment listing the problems (once per
  version of the text, so repeated events do not repeat the comment);
- any event on a task linked to an order is recorded in ``task_events``
  (Bitrix24 status changes, comments, attachments), idempotently through
  ``correlation_id``;
- comments come from the classic card (forum comments) or the new task card
  (messages of the task's chat): the same rules for both, with the portal's
  own system messages in the chat left alone;
- changes we made ourselves are recognised (``CHANGED_BY`` / comment author
  is our REST user, or our comment marker) and recorded, never acted on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.couriers import service as couriers
from b24mw.history.repository import HistoryRepository, log_exchange, record_event
from b24mw.i18n import t
from b24mw.kit.errors import Conflict, ValidationFailed
from b24mw.kit.staging import savepoint
from b24mw.models.enums import InboxStatus, LogDirection, OrderOrigin, TaskEventType
from b24mw.orders.schemas import LineIn
from b24mw.outbox import Outbox
from b24mw.webhooks.fetch import CommentSnapshot, TaskSnapshot
from b24mw.webhooks.order_text import LineError, parse_order_text
from b24mw.webhooks.repository import Link, WebhookRepository
from b24mw.ww.schemas import OrderCreate
from b24mw.ww.service import SYSTEM_ACTOR, create_order

B24_STATUS = {
    1: "new",
    2: "pending",
    3: "in_progress",
    4: "awaiting_control",
    5: "completed",
    6: "deferred",
    7: "declined",
}
# The marker Outbox.b24_comment appends to every comment we post.
OWN_MARKER = "[b24mw:"
ERROR_MESSAGES = {
    "item.fields": "expected '- SKU | name | qty | price'",
    "item.sku": "missing SKU (or over 64 characters)",
    "item.name": "missing name (or over 255 characters)",
    "item.qty": "quantity must be a whole number above zero",
    "item.price": "price must be a number of zero or more",
    "order.no_items": "no item lines",
    "order.too_many_items": "more than 500 items",
    "order.no_customer": "no 'customer:' line",
    "order.customer": "customer name empty or too long",
    "order.phone": "phone must be +7XXXXXXXXXX",
    "order.note": "note empty or too long",
    "order.repeated": "line repeats an earlier one",
    "courier.unknown": "the Bitrix24 user is not an active courier",
    "order.duplicate": "an order for this task and courier exists",
    "order.invalid": "the order failed validation",
}


@dataclass(frozen=True, slots=True)
class Context:
    outbox: Outbox
    locale: str
    order_tag: str
    self_user_id: int | None


@dataclass(slots=True)
class Result:
    status: InboxStatus = InboxStatus.DONE
    errors: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def note(cls, code: str, message: str) -> Result:
        return cls(InboxStatus.DONE, [{"code": code, "message": message}])


def _problem(
    code: str, *, line: int | None = None, field: str = "", params: dict[str, Any] | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"line": line, "field": field, "code": code}
    entry["message"] = ERROR_MESSAGES.get(code, code)
    if params:
        entry["params"] = params
    return entry


def _from_line_error(error: LineError) -> dict[str, Any]:
    return _problem(error.code, line=error.line or None, field=error.field)


def render_errors(errors: list[dict[str, Any]], locale: str) -> str:
    out = [t("webhook.order_rejected", locale)]
    for error in errors:
        message = t(f"webhook.error.{error['code']}", locale, **error.get("params", {}))
        if error.get("line"):
            out.append(t("webhook.error_line", locale, line=error["line"], message=message))
        else:
            out.append(t("webhook.error", locale, message=message))
    return "\n".join(out)


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


async def _record_per_link(
    session: AsyncSession,
    links: list[Link],
    correlation: str,
    *,
    type: TaskEventType,
    task_id_b24: int,
    payload: dict[str, Any],
    actor_id: str | None = None,
) -> None:
    """One history row per linked order, unless that order already has it: the
    correlation id (``correlation`` plus the link) is what makes a redelivered
    event a no-op."""
    history = HistoryRepository(session)
    for link in links:
        correlation_id = f"{correlation}:{link.key}"
        if await history.correlation_exists(correlation_id):
            continue
        record_event(
            session,
            type=type,
            task_id_b24=task_id_b24,
            actor_id=actor_id,
            payload=dict(payload),
            instant_order_id=link.instant_order_id,
            order_id=link.order_id,
            correlation_id=correlation_id,
        )


# ---------------------------------------------------------------- tasks


async def on_task(session: AsyncSession, ctx: Context, event: str, task: TaskSnapshot) -> Result:
    links = await WebhookRepository(session).links(task.id)
    own = ctx.self_user_id is not None and task.changed_by == ctx.self_user_id
    if links:
        await record_status(session, task, links, own=own)
        return Result()
    if own:
        return Result.note("own_change", "changed by our own call: recorded, not acted on")
    if ctx.order_tag.casefold() not in {tag.casefold() for tag in task.tags}:
        return Result.note("not_tagged", f"task is not tagged {ctx.order_tag}")
    return await order_from_text(
        session,
        ctx,
        event=event,
        task=task,
        text=task.description,
        b24_user_id=task.responsible_id,
        origin=OrderOrigin.B24_TASK,
        correlation=f"b24:task:{task.id}",
    )


async def record_status(
    session: AsyncSession, task: TaskSnapshot, links: list[Link], *, own: bool
) -> None:
    """The task's Bitrix24 status as of its last status change, once per change."""
    await _record_per_link(
        session,
        links,
        f"b24:task:{task.id}:status:{task.status}:{_digest(task.status_changed_date)}",
        type=TaskEventType.STATUS,
        task_id_b24=task.id,
        actor_id=f"b24:{task.changed_by}" if task.changed_by else None,
        payload={
            "source": "bitrix24",
            "b24_status": task.status,
            "b24_status_name": B24_STATUS.get(task.status or 0, "unknown"),
            "status_changed_date": task.status_changed_date,
            "own_change": own,
        },
    )


async def on_task_deleted(session: AsyncSession, task_id: int) -> Result:
    """A linked task deleted in Bitrix24: the order stays, the history says so."""
    await _record_per_link(
        session,
        await WebhookRepository(session).links(task_id),
        f"b24:task:{task_id}:deleted",
        type=TaskEventType.STATUS,
        task_id_b24=task_id,
        payload={"source": "bitrix24", "b24_status_name": "deleted"},
    )
    return Result()


# ------------------------------------------------------------- comments


def is_own_comment(ctx: Context, comment: CommentSnapshot) -> bool:
    by_us = ctx.self_user_id is not None and comment.author_id == ctx.self_user_id
    return by_us or OWN_MARKER in comment.text


async def on_comment(
    session: AsyncSession,
    ctx: Context,
    event: str,
    comment: CommentSnapshot,
    task: TaskSnapshot | None,
) -> Result:
    if comment.is_system:
        # "The task is completed": the status itself comes with ONTASKUPDATE.
        return Result.note("system_message", "a message the portal wrote: not a comment")
    if is_own_comment(ctx, comment):
        return Result.note("own_comment", "our own comment: not acted on")
    links = await WebhookRepository(session).links(comment.task_id)
    if links:
        await record_comment(session, comment, links)
    if f"#{ctx.order_tag}".casefold() not in comment.text.casefold():
        return Result()
    if task is None:
        return Result.note("task_not_found", "the comment's task is gone")
    return await order_from_text(
        session,
        ctx,
        event=event,
        task=task,
        text=comment.text,
        b24_user_id=comment.author_id,
        origin=OrderOrigin.B24_COMMENT,
        correlation=f"b24:{comment.ref}",
    )


async def record_comment(
    session: AsyncSession, comment: CommentSnapshot, links: list[Link]
) -> None:
    repo = WebhookRepository(session)
    actor = f"b24:{comment.author_id}" if comment.author_id else None
    await _record_per_link(
        session,
        links,
        f"b24:{comment.ref}",
        type=TaskEventType.COMMENT,
        task_id_b24=comment.task_id,
        actor_id=actor,
        payload={
            "source": "bitrix24",
            **comment.ids,
            "text": comment.text,
            "post_date": comment.post_date,
        },
    )
    for attachment in comment.attachments:
        # One photo row per file and task, however often it is attached.
        if await repo.photo_seen(comment.task_id, attachment.checksum):
            continue
        link = links[0]
        record_event(
            session,
            type=TaskEventType.PHOTO,
            task_id_b24=comment.task_id,
            actor_id=actor,
            payload={**comment.ids, "file_id": attachment.file_id, "name": attachment.name},
            instant_order_id=link.instant_order_id,
            order_id=link.order_id,
            correlation_id=f"b24:file:{attachment.checksum[:32]}:{comment.task_id}",
            photo_checksum=attachment.checksum,
        )


# --------------------------------------------------------------- orders


async def order_from_text(
    session: AsyncSession,
    ctx: Context,
    *,
    event: str,
    task: TaskSnapshot,
    text: str,
    b24_user_id: int | None,
    origin: OrderOrigin,
    correlation: str,
) -> Result:
    history = HistoryRepository(session)
    if await history.correlation_exists(f"{correlation}:order"):
        return Result.note("already_ordered", "this text already became an order")
    parsed = parse_order_text(text)
    errors = [_from_line_error(e) for e in parsed.errors]
    courier = await couriers.by_b24_user(session, b24_user_id) if b24_user_id else None
    if courier is None or not courier.is_active:
        errors.append(
            _problem("courier.unknown", field="courier", params={"user": b24_user_id or "—"})
        )
    if errors or courier is None:
        return await reject(session, ctx, event, task.id, errors, _digest(text, b24_user_id))
    order_text = parsed.order
    try:
        data = OrderCreate(
            task_id_b24=task.id,
            courier_id=courier.id,
            title=(task.title.strip() or f"Bitrix24 task {task.id}")[:255],
            customer_name=order_text.customer or "",
            client_phone=order_text.phone,
            items=[
                LineIn(sku=line.sku, name=line.name, qty=line.qty, price=line.price)
                for line in order_text.lines
            ],
            notes=order_text.note,
        )
        async with savepoint(session):
            order = await create_order(
                session, ctx.outbox, SYSTEM_ACTOR, data, origin=origin, deal_id_b24=task.deal_id
            )
    except Conflict as exc:
        existing = exc.extra.get("existing_id")
        if origin is OrderOrigin.B24_TASK:
            # Another event of the same task got there first.
            return Result.note("already_ordered", f"order {existing} exists for this task")
        errors = [_problem("order.duplicate", field="task_id_b24", params={"id": existing})]
        return await reject(session, ctx, event, task.id, errors, _digest(text, b24_user_id))
    except (ValidationFailed, ValidationError) as exc:
        errors = _validation_problems(exc)
        return await reject(session, ctx, event, task.id, errors, _digest(text, b24_user_id))

    record_event(
        session,
        type=TaskEventType.COMMENT,
        task_id_b24=task.id,
        actor_id=f"b24:{b24_user_id}",
        payload={"event": "order_from_bitrix24", "origin": origin.value, "order_id": order.id},
        instant_order_id=order.id,
        correlation_id=f"{correlation}:order",
    )
    answer = t(
        "webhook.order_created",
        ctx.locale,
        id=order.id,
        lines=len(order.lines),
        total=f"{order.total_amount:.2f}",
        currency=order.currency_code,
        courier=courier.display_name,
    )
    ctx.outbox.b24_comment(session, task.id, answer)
    return Result()


def _validation_problems(exc: ValidationFailed | ValidationError) -> list[dict[str, Any]]:
    if isinstance(exc, ValidationFailed):
        pairs = [(e.field, e.message) for e in exc.errors] or [("order", exc.detail)]
    else:
        pairs = [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
    return [_problem("order.invalid", field=f, params={"field": f, "detail": m}) for f, m in pairs]


async def reject(
    session: AsyncSession,
    ctx: Context,
    event: str,
    task_id: int,
    errors: list[dict[str, Any]],
    version: str,
) -> Result:
    log_exchange(
        session,
        direction=LogDirection.IN,
        system="b24",
        endpoint=event,
        status="rejected",
        resource_ref=f"task:{task_id}",
        request={"task_id": task_id},
        response={"errors": errors},
        error_code=errors[0]["code"] if errors else None,
    )
    correlation = f"b24:task:{task_id}:rejected:{version}"
    if not await HistoryRepository(session).correlation_exists(correlation):
        record_event(
            session,
            type=TaskEventType.COMMENT,
            task_id_b24=task_id,
            payload={"event": "order_rejected", "errors": errors},
            correlation_id=correlation,
        )
        ctx.outbox.b24_comment(session, task_id, render_errors(errors, ctx.locale))
    return Result(InboxStatus.REJECTED, errors)
