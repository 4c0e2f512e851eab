from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from b24mw.couriers.repository import CourierRepository
from b24mw.kit.auth import Actor
from b24mw.kit.db import Executor
from b24mw.kit.errors import (
    ConcurrentUpdate,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from b24mw.kit.pagination import PageRequest, Paginated, paginated
from b24mw.kit.staging import flush as flush_all
from b24mw.models.base import utcnow
from b24mw.models.enums import ReturnStatus
from b24mw.models.returns import Return, ReturnLine
from b24mw.returns import flows, lifecycle
from b24mw.returns.flows import ReturnChannels
from b24mw.returns.repository import ReturnRepository, listing
from b24mw.returns.schemas import ReturnCreate, ReturnLineCreate, ReturnRead, ReturnUpdate

# Database checks that mirror the API's validation: if bad data slips past the
# schemas (another caller, a future bug), the client still gets a 422 naming
# the field, never a 500 with the driver's message.
CHECK_FIELDS: dict[str, tuple[str, str]] = {
    "ck_return_lines_qty_positive": ("items.qty", "must be at least 1"),
    "ck_return_lines_reason_code_not_blank": ("items.reason_code", "must not be blank"),
    "ck_return_lines_quality": ("items.quality", "must be new, defect or unknown"),
    "ck_return_lines_imei_length": ("items.imei", "must be 15 digits"),
    "ck_returns_status": ("status", "unknown status"),
    "ck_returns_source": ("source", "must be widget, call_center or warehouse"),
}


async def flush(session: AsyncSession) -> None:
    """Flush, turning what the database refuses into the error hierarchy."""
    async with refusals():
        await flush_all(session)


@asynccontextmanager
async def refusals() -> AsyncIterator[None]:
    """Turn what the database refuses into the error hierarchy."""
    try:
        yield
    except StaleDataError:
        raise ConcurrentUpdate(
            "The return was changed by another request at the same time; reload and retry.",
            errors=[FieldError("status", "changed concurrently", "conflict.concurrent_update")],
        ) from None
    except IntegrityError as exc:
        message = str(exc.orig)
        failed = [field for name, field in CHECK_FIELDS.items() if name in message]
        if failed:
            raise ValidationFailed(
                "The database refused the return.",
                errors=[FieldError(f, m, "validation.format") for f, m in failed],
            ) from None
        raise Conflict("The return conflicts with stored data.") from None
    except DataError:
        raise ValidationFailed("A value does not fit its column.") from None


def _line_rows(return_id: uuid.UUID, items: list[ReturnLineCreate]) -> list[dict[str, Any]]:
    return [
        {
            "return_id": return_id,
            "line_no": number,
            "sku": item.sku,
            "qty": item.qty,
            "quality": item.quality.value,
            "reason_code": item.reason_code,
            "reason_note": item.reason_note,
            "photos": list(item.photos),
            "imei": item.imei,
            "serial": item.serial,
        }
        for number, item in enumerate(items, start=1)
    ]


def _lines(items: list[ReturnLineCreate]) -> list[ReturnLine]:
    return [
        ReturnLine(
            line_no=number,
            sku=item.sku,
            qty=item.qty,
            quality=item.quality.value,
            reason_code=item.reason_code,
            reason_note=item.reason_note,
            photos=list(item.photos),
            imei=item.imei,
            serial=item.serial,
        )
        for number, item in enumerate(items, start=1)
    ]


def _unknown_courier(courier_id: str) -> ValidationFailed:
    return ValidationFailed(
        f"Courier {courier_id} is not registered.",
        errors=[FieldError("courier_id", "unknown courier", "validation.format")],
    )


async def _ensure_courier(session: AsyncSession, courier_id: str) -> None:
    if not await ReturnRepository(session).courier_exists(courier_id):
        raise _unknown_courier(courier_id)


def _ensure_may_act_for(actor: Actor, courier_id: str) -> None:
    if not actor.owns(courier_id):
        raise Forbidden(
            "A courier may create returns only for themselves.",
            errors=[FieldError("courier_id", "must be your own courier id")],
        )


async def create(
    session: AsyncSession, channels: ReturnChannels, actor: Actor, data: ReturnCreate
) -> ReturnRead:
    # The hottest write of the API: plain rows, no ORM objects; the return
    # with its lines and courier check is one statement on PostgreSQL, the
    # history and jobs go out with the commit.
    _ensure_may_act_for(actor, data.courier_id)
    now = utcnow()
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": data.source.value,
        "courier_id": data.courier_id,
        "order_id_1c": data.order_id_1c,
        "task_id_b24": data.task_id_b24,
        "comment": data.comment,
        "status": ReturnStatus.PENDING,
        "manager_id": None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    lines = _line_rows(row["id"], data.items)
    async with refusals():
        line_ids = await ReturnRepository(session).insert_new(row, lines)
    if line_ids is None:
        raise _unknown_courier(data.courier_id)
    read = ReturnRead.model_validate(
        {
            **row,
            "lines": [
                {**line, "id": line_id} for line, line_id in zip(lines, line_ids, strict=True)
            ],
        }
    )
    flows.announce_created(session, channels, read, actor, http_code=201)
    return read


async def get(session: AsyncSession, actor: Actor, return_id: uuid.UUID) -> Return:
    ret = await ReturnRepository(session).get(return_id)
    # A courier asking for someone else's return learns nothing, not even that it exists.
    if ret is None or not actor.owns(ret.courier_id):
        raise NotFound(f"Return {return_id} not found.")
    return ret


async def read(session: Executor, actor: Actor, return_id: uuid.UUID) -> ReturnRead:
    """A return as the API shows it (one statement, no ORM object)."""
    found = await ReturnRepository(session).read(return_id)
    if found is None or not actor.owns(found["courier_id"]):
        raise NotFound(f"Return {return_id} not found.")
    return ReturnRead.model_validate(found)


async def replace(
    session: AsyncSession, actor: Actor, return_id: uuid.UUID, data: ReturnCreate
) -> Return:
    ret = await get(session, actor, return_id)
    lifecycle.ensure_editable(ret.status)
    if data.courier_id != ret.courier_id:
        await _ensure_courier(session, data.courier_id)
    ret.source = data.source
    ret.courier_id = data.courier_id
    ret.order_id_1c = data.order_id_1c
    ret.task_id_b24 = data.task_id_b24
    ret.comment = data.comment
    ret.lines = _lines(data.items)
    # Always an UPDATE of the row, so the version check also guards a PUT that
    # changes only the lines against a concurrent decision.
    ret.updated_at = utcnow()
    await flush(session)
    flows.log_replaced(session, ReturnRead.model_validate(ret), actor)
    await flush(session)
    return ret


async def update(
    session: AsyncSession,
    channels: ReturnChannels,
    actor: Actor,
    return_id: uuid.UUID,
    data: ReturnUpdate,
    *,
    endpoint: str,
) -> Return:
    """PATCH: annotations and/or a decision, one optimistic write."""
    ret = await get(session, actor, return_id)
    previous = ret.status
    changes = data.model_dump(exclude_unset=True)
    target = changes.pop("status", None)
    for field, value in changes.items():
        setattr(ret, field, value)
    if target is None:
        await flush(session)
        return ret
    note = changes.get("comment")
    target_status = ReturnStatus(target)
    return await _move(session, channels, actor, ret, previous, target_status, endpoint, 200, note)


async def cancel(
    session: AsyncSession, channels: ReturnChannels, actor: Actor, return_id: uuid.UUID
) -> None:
    """DELETE is logical: the return stays, as ``cancelled``."""
    ret = await get(session, actor, return_id)
    endpoint = f"DELETE {flows.API_PATH}/{{id}}"
    previous = ret.status
    await _move(
        session, channels, actor, ret, previous, ReturnStatus.CANCELLED, endpoint, 204, None
    )


async def _move(
    session: AsyncSession,
    channels: ReturnChannels,
    actor: Actor,
    ret: Return,
    previous: ReturnStatus,
    target: ReturnStatus,
    endpoint: str,
    http_code: int,
    note: str | None,
) -> Return:
    lifecycle.ensure_transition(previous, target)
    ret.status = target
    # The version check happens here: of two decisions read at the same
    # version, the second UPDATE matches no row and loses with a 409.
    await flush(session)
    courier = None
    if target is ReturnStatus.REJECTED and ret.task_id_b24:
        courier = await CourierRepository(session).get(ret.courier_id)
    flows.announce_status_change(
        session,
        channels,
        ReturnRead.model_validate(ret),
        previous,
        actor,
        courier=courier,
        note=note,
        endpoint=endpoint,
        http_code=http_code,
    )
    await flush(session)
    return ret


async def search(
    session: Executor,
    request: PageRequest,
    *,
    statuses: list[ReturnStatus],
    courier_id: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
) -> Paginated[ReturnRead]:
    if created_from and created_to and created_from > created_to:
        raise ValidationFailed(
            "created_from is after created_to.",
            errors=[FieldError("query.created_from", "must not be after created_to")],
        )
    listed = listing(
        statuses=[s.value for s in statuses],
        courier_id=courier_id,
        created_from=created_from,
        created_to=created_to,
    )
    page = await ReturnRepository(session).search(request, listed)
    return paginated(ReturnRead, page, request)
