"""What a return's creation or decision sets in motion, all inside the caller's
unit of work (STYLE §3): the ``task_events`` row, the ``integration_log`` row
and the outbox jobs for event consumers, 1C and Bitrix24.  Nothing here talks
to the network; the worker delivers the jobs after the commit, and a rollback
leaves none of them behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.history.repository import log_exchange, record_event
from b24mw.i18n import t
from b24mw.integration_events.cloudevents import build_event
from b24mw.kit.auth import Actor, Role
from b24mw.models.base import utcnow
from b24mw.models.couriers import Courier
from b24mw.models.enums import LogDirection, ReturnStatus, TaskEventType
from b24mw.outbox import Outbox
from b24mw.outbox.enqueue import task_key
from b24mw.returns.schemas import ReturnRead
from b24mw.settings import Settings

EVENT_SYSTEM = "returns"
EVENT_CREATED = "integration.return.created"
EVENT_STATUS_CHANGED = "integration.return.status_changed"
API_PATH = "/api/v1/returns"


@dataclass(frozen=True, slots=True)
class ReturnChannels:
    """The per-process pieces the flows need: where jobs go and how to word them."""

    outbox: Outbox
    locale: str
    subtask_deadline: timedelta

    @classmethod
    def from_settings(cls, settings: Settings, outbox: Outbox) -> ReturnChannels:
        return cls(
            outbox=outbox,
            locale=settings.locale,
            subtask_deadline=timedelta(hours=settings.return_subtask_deadline_hours),
        )


def subject(ret: ReturnRead) -> str:
    return f"returns/{ret.id}"


def onec_key(ret: ReturnRead, step: str) -> str:
    """Stable per return and step: a status can be reached only once (finals are
    final), so 1C can deduplicate retries and replays on it."""
    return f"b24mw:returns:{ret.id}:{step}"


def _inbound_system(actor: Actor) -> str:
    # Who spoke to us: 1C deciding, or a person through Bitrix24/the API.
    if actor.has(Role.ONEC) and not actor.has(Role.ADMIN):
        return "1c"
    return "api"


def _lines_text(ret: ReturnRead, locale: str) -> str:
    return "\n".join(
        t("return.line", locale, sku=line.sku, qty=line.qty, reason=line.reason_code)
        for line in ret.items
    )


def _record(session: AsyncSession, ret: ReturnRead, actor: Actor, payload: dict[str, Any]) -> None:
    record_event(
        session,
        type=TaskEventType.STATUS,
        task_id_b24=ret.task_id_b24,
        status=ret.status,
        actor_id=actor.sub,
        return_id=ret.id,
        payload=payload,
    )


def _log_inbound(
    session: AsyncSession,
    ret: ReturnRead,
    actor: Actor,
    endpoint: str,
    http_code: int,
    request: dict[str, Any],
) -> None:
    log_exchange(
        session,
        direction=LogDirection.IN,
        system=_inbound_system(actor),
        endpoint=endpoint,
        status="ok",
        http_code=http_code,
        resource_ref=subject(ret),
        request=request,
    )


def _publish(
    session: AsyncSession,
    channels: ReturnChannels,
    ret: ReturnRead,
    event_type: str,
    data: dict[str, Any],
    *,
    onec_path: str,
    onec_step: str,
) -> None:
    """The CloudEvent and the 1C job; one ordering key per lane and return keeps
    its creation ahead of its decisions."""
    event = build_event(type=event_type, system=EVENT_SYSTEM, subject=subject(ret), data=data)
    channels.outbox.event(session, event, ordering_key=f"return:{ret.id}")
    channels.outbox.onec(
        session,
        onec_path,
        data,
        idempotency_key=onec_key(ret, onec_step),
        ordering_key=f"return:{ret.id}:1c",
    )


def announce_created(
    session: AsyncSession, channels: ReturnChannels, ret: ReturnRead, actor: Actor, http_code: int
) -> None:
    """History, log and jobs for a new return, as the API shows it."""
    status, source = ret.status.value, ret.source.value
    _record(session, ret, actor, {"event": "created", "to": status, "source": source})
    request = {"source": source, "courier_id": ret.courier_id, "lines": len(ret.items)}
    _log_inbound(session, ret, actor, f"POST {API_PATH}", http_code, request)
    view = ret.model_dump(mode="json")
    _publish(session, channels, ret, EVENT_CREATED, view, onec_path="returns", onec_step="created")
    if ret.task_id_b24:
        text = t(
            "return.created",
            channels.locale,
            id=ret.id,
            lines=len(ret.items),
            qty=sum(line.qty for line in ret.items),
            status=t(f"return.status.{status}", channels.locale),
        )
        channels.outbox.b24_comment(session, ret.task_id_b24, text)


def log_replaced(session: AsyncSession, ret: ReturnRead, actor: Actor) -> None:
    """A PUT changes content, not state: logged, but nobody is told.

    README "Decisions where the spec was silent", Returns.
    """
    request = {"courier_id": ret.courier_id, "lines": len(ret.items)}
    _log_inbound(session, ret, actor, f"PUT {API_PATH}/{{id}}", 200, request)


def announce_status_change(
    session: AsyncSession,
    channels: ReturnChannels,
    ret: ReturnRead,
    previous: ReturnStatus,
    actor: Actor,
    *,
    courier: Courier | None,
    note: str | None,
    endpoint: str,
    http_code: int,
) -> None:
    """History, log and jobs for ``previous → ret.status``; ``note`` is the comment
    given with the decision, if any."""
    target = ret.status
    change = {"from": previous.value, "to": target.value}
    _record(session, ret, actor, {"event": "status_changed", **change, "note": note})
    _log_inbound(session, ret, actor, endpoint, http_code, change)
    data = {**ret.model_dump(mode="json"), "previous_status": previous.value}
    _publish(
        session,
        channels,
        ret,
        EVENT_STATUS_CHANGED,
        data,
        onec_path=f"returns/{ret.id}/status",
        onec_step=f"status:{target.value}",
    )
    if ret.task_id_b24:
        _tell_bitrix24(session, channels, ret, previous, target, courier, note)


def _tell_bitrix24(
    session: AsyncSession,
    channels: ReturnChannels,
    ret: ReturnRead,
    previous: ReturnStatus,
    target: ReturnStatus,
    courier: Courier | None,
    note: str | None,
) -> None:
    assert ret.task_id_b24 is not None
    text = t(
        "return.status_changed",
        channels.locale,
        id=ret.id,
        from_status=t(f"return.status.{previous.value}", channels.locale),
        to_status=t(f"return.status.{target.value}", channels.locale),
    )
    if note:
        text += "\n" + t("return.comment_line", channels.locale, comment=note)
    channels.outbox.b24_comment(session, ret.task_id_b24, text)
    if target is not ReturnStatus.REJECTED:
        return
    if courier is None or courier.b24_user_id is None:
        # tasks.task.add needs a RESPONSIBLE_ID; guessing one would hand the
        # goods to the wrong person, so say so on the task and in the log.
        channels.outbox.b24_comment(
            session,
            ret.task_id_b24,
            t("return.subtask.no_responsible", channels.locale, courier=ret.courier_id),
        )
        log_exchange(
            session,
            direction=LogDirection.INTERNAL,
            system="b24",
            endpoint="tasks.task.add",
            status="skipped",
            resource_ref=subject(ret),
            error_code="courier_without_b24_user",
            request={"courier_id": ret.courier_id, "parent_id": ret.task_id_b24},
        )
        return
    deadline = (utcnow() + channels.subtask_deadline).replace(microsecond=0)
    fields = {
        "TITLE": t("return.subtask.title", channels.locale),
        "DESCRIPTION": t(
            "return.subtask.description",
            channels.locale,
            id=ret.id,
            lines=_lines_text(ret, channels.locale),
        ),
        "PARENT_ID": ret.task_id_b24,
        "RESPONSIBLE_ID": courier.b24_user_id,
        "DEADLINE": deadline.isoformat(),
    }
    channels.outbox.b24_task_add(session, fields, ordering_key=task_key(ret.task_id_b24))
