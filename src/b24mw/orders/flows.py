"""What a status change sets in motion, for either kind of order, inside the
caller's unit of work: the history rows, the Bitrix24 sync jobs and the
CloudEvent (README "Resources").  Nothing here talks to the network.

Bitrix24 sync jobs of one order share one ordering key, so the worker delivers
the comment and the task method of every change in the order they happened.
A delivery's jobs use ``delivery:<id>`` from the start, because its task does
not exist yet when the first changes arrive: those jobs are written with
``TASKID``/``taskId`` null and the ``tasks.task.add`` result hook fills the
id in (``deliveries.hooks``) before the ordering key lets them run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from b24mw.crm import closing
from b24mw.history.repository import log_exchange, record_event
from b24mw.i18n import t
from b24mw.integration_events.cloudevents import build_event
from b24mw.kit.auth import Actor
from b24mw.kit.errors import ConcurrentUpdate
from b24mw.kit.staging import flush
from b24mw.models.base import utcnow
from b24mw.models.enums import LogDirection, OrderKind, TaskEventType
from b24mw.models.enums import OrderStatus as S
from b24mw.orders.machine import Transition, check
from b24mw.orders.repository import stage_status_move
from b24mw.orders.schemas import StatusChange
from b24mw.outbox import Outbox

CONCURRENT = "The order was changed by another request; reload it and try again."
EVENT_SYSTEM = "ww"
EVENT_CREATED = "integration.task.created"
EVENT_STATUS_CHANGED = "integration.task.status_changed"

# The Bitrix24 task follows the order: started when the courier sets off,
# closed when the order ends either way, deferred while it is failed.
TASK_METHOD_ON_ENTER: Mapping[S, str] = {
    S.ON_ROUTE: "tasks.task.start",
    S.DONE: "tasks.task.complete",
    S.REFUSED: "tasks.task.complete",
    S.FAILED: "tasks.task.defer",
}
TASK_METHOD_ON_MOVE: Mapping[tuple[S, S], str] = {
    (S.FAILED, S.READY): "tasks.task.renew",
}


async def deal_follows(
    session: AsyncSession,
    outbox: Outbox,
    identity: OrderIdentity,
    transition: Transition,
    text: str,
    locale: str,
) -> None:
    """The deal's timeline comment and, at the end, its closing (``crm.closing``)."""
    assert identity.deal_id_b24 is not None
    await closing.follow(
        session,
        outbox,
        closing.OrderRef(
            kind=identity.kind,
            id=identity.id,
            ref=identity.ref,
            task_id_b24=identity.task_id_b24,
            sync_key=identity.sync_key,
            deal_id_b24=identity.deal_id_b24,
        ),
        source=transition.source.value,
        target=transition.target.value,
        text=text,
        locale=locale,
    )


def task_methods(transition: Transition) -> list[str]:
    """The Bitrix24 task methods a transition calls, besides the comment."""
    moved = TASK_METHOD_ON_MOVE.get((transition.source, transition.target))
    if moved:
        return [moved]
    entered = TASK_METHOD_ON_ENTER.get(transition.target)
    return [entered] if entered else []


class VersionedOrder(Protocol):
    """An order as loaded (unmodified): its row is changed by a staged,
    version-checked UPDATE, then the object is told the new values."""

    id: int
    status: S
    version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderIdentity:
    """How one order appears to the history, Bitrix24 and event consumers."""

    kind: OrderKind
    id: int
    ref: str  # how comments name the order
    subject: str  # CloudEvent subject, also the integration_log resource
    task_id_b24: int | None
    # Ordering key of the Bitrix24 jobs; None: the order has no task to sync.
    sync_key: str | None
    # Which order the history rows belong to (one of the two is set).
    instant_order_id: int | None = None
    order_id: int | None = None
    # The Bitrix24 deal it serves: told of every change, closed at the end.
    deal_id_b24: int | None = None

    @property
    def event_key(self) -> str:
        return f"events:{self.subject}"


def _now_holds(order: VersionedOrder, values: dict[str, Any]) -> None:
    """Tell the loaded order what its row will hold; an ORM object must not
    take that for a change of its own to write."""
    mapped = sa_inspect(order, raiseerr=False) is not None
    for name, value in values.items():
        if mapped:
            set_committed_value(order, name, value)
        else:
            setattr(order, name, value)


async def flush_or_conflict(session: AsyncSession) -> None:
    """Flush, turning a lost optimistic-lock race (``version``) into 409."""
    try:
        await flush(session)
    except StaleDataError:
        raise ConcurrentUpdate(CONCURRENT) from None


def b24_comment(session: AsyncSession, outbox: Outbox, identity: OrderIdentity, text: str) -> None:
    if identity.sync_key is None:
        return
    # The ordering key is ours: a delivery's task may not exist yet.
    outbox.b24_comment(session, identity.task_id_b24, text, ordering_key=identity.sync_key)


def b24_task_call(
    session: AsyncSession,
    outbox: Outbox,
    identity: OrderIdentity,
    method: str,
    extra: dict[str, Any] | None = None,
) -> None:
    if identity.sync_key is None:
        return
    params: dict[str, Any] = {"taskId": identity.task_id_b24, **(extra or {})}
    outbox.b24_call(session, method, params, ordering_key=identity.sync_key)


def publish(
    session: AsyncSession, outbox: Outbox, identity: OrderIdentity, type: str, data: dict[str, Any]
) -> None:
    event = build_event(type=type, system=EVENT_SYSTEM, subject=identity.subject, data=data)
    outbox.event(session, event, ordering_key=identity.event_key)


def record(
    session: AsyncSession,
    identity: OrderIdentity,
    actor: Actor,
    type: TaskEventType,
    *,
    status: str,
    payload: dict[str, Any],
) -> None:
    """A ``task_events`` row on the tracked order, by the actor."""
    record_event(
        session,
        type=type,
        task_id_b24=identity.task_id_b24,
        status=status,
        actor_id=actor.sub,
        payload=payload,
        instant_order_id=identity.instant_order_id,
        order_id=identity.order_id,
    )


def record_creation(
    session: AsyncSession,
    outbox: Outbox,
    identity: OrderIdentity,
    actor: Actor,
    view: dict[str, Any],
    payload: dict[str, Any],
) -> None:
    record(
        session,
        identity,
        actor,
        TaskEventType.STATUS,
        status=S.NEW.value,
        payload={"event": "created", "to": S.NEW.value, **payload},
    )
    publish(session, outbox, identity, EVENT_CREATED, view)


async def change_status(
    session: AsyncSession,
    outbox: Outbox,
    *,
    locale: str,
    actor: Actor,
    order: VersionedOrder,
    identity: OrderIdentity,
    change: StatusChange,
    event_data: dict[str, Any],
) -> Transition:
    """Check the move against the matrix, apply it, and write its history and
    jobs.  Raises 422/403 (matrix), 409 (a concurrent change won)."""
    transition = check(actor, order.status, change.status)
    target = transition.target.value
    # Written with the history and jobs below; a concurrent change that got
    # there first makes the whole unit of work end in 409.
    now = utcnow()
    moved = {"status": target, "version": order.version + 1, "updated_at": now}
    stage_status_move(
        session,
        identity.kind,
        order_id=order.id,
        version=order.version,
        values=moved,
        conflict=ConcurrentUpdate(CONCURRENT),
    )
    _now_holds(order, moved)
    move = {"from": transition.source.value, "to": target}
    record(
        session,
        identity,
        actor,
        TaskEventType.STATUS,
        status=target,
        payload={"event": "status_changed", **move, "note": change.note},
    )
    if change.lat is not None and change.lon is not None:
        geo = {"lat": change.lat, "lon": change.lon}
        record(session, identity, actor, TaskEventType.GEO, status=target, payload=geo)
    if (transition.source, transition.target) == (S.FAILED, S.READY):
        # A failed order going back on the shelf is an operational decision
        # someone will ask about: keep it in the searchable exchange log.
        log_exchange(
            session,
            direction=LogDirection.INTERNAL,
            system=EVENT_SYSTEM,
            endpoint="status FAILED → READY",
            status="ok",
            resource_ref=identity.subject,
            request={**move, "actor": actor.sub, "note": change.note},
        )

    text = t(
        "order.status_changed",
        locale,
        id=identity.ref,
        from_status=transition.source.value,
        to_status=transition.target.value,
    )
    if change.note:
        text += "\n" + t("order.note", locale, note=change.note)
    b24_comment(session, outbox, identity, text)
    for method in task_methods(transition):
        b24_task_call(session, outbox, identity, method)
    if identity.deal_id_b24:
        await deal_follows(session, outbox, identity, transition, text, locale)

    data = {
        "kind": identity.kind,
        "id": identity.id,
        "task_id_b24": identity.task_id_b24,
        **move,
        "actor_id": actor.sub,
        "note": change.note,
        "lat": change.lat,
        "lon": change.lon,
        **event_data,
    }
    publish(session, outbox, identity, EVENT_STATUS_CHANGED, data)
    return transition
