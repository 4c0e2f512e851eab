"""Direct throttled calls (for the inbox and reconciliation): logged, typed, shared quota."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from b24mw.bitrix24.errors import Bitrix24Error, Bitrix24Unavailable
from b24mw.bitrix24.throttle import Feedback
from b24mw.kit.db import Database
from b24mw.kit.request_context import set_request_id
from b24mw.models.history import IntegrationLog
from b24mw.outbox.worker import Worker
from tests.support.outbound import EmulatorHandle


async def _logs(db: Database) -> list[IntegrationLog]:
    async with db.reader() as session:
        return list((await session.execute(select(IntegrationLog))).scalars())


async def test_call_is_logged_with_personal_data_masked(
    db: Database, worker: Worker, emulator: EmulatorHandle
) -> None:
    assert worker.context.b24 is not None
    set_request_id("req-gw-1")
    task = await emulator.create_task(title="Call +7 912 345-67-89")
    reply = await worker.context.b24.call(
        "tasks.task.update",
        {"taskId": task["id"], "fields": {"DESCRIPTION": "phone +79123456789"}},
        resource_ref=f"task:{task['id']}",
    )
    assert reply.ok
    (row,) = await _logs(db)
    assert (row.system, row.direction, row.endpoint, row.status) == (
        "b24",
        "out",
        "tasks.task.update",
        "ok",
    )
    assert row.request_id == "req-gw-1"
    assert row.resource_ref == f"task:{task['id']}"
    assert "+79123456789" not in str(row.request_json)
    assert "912 345-67-89" not in str(row.response_json)
    (call,) = await emulator.calls("tasks.task.update")
    assert call["headers"]["x-request-id"] == "req-gw-1"


async def test_refusal_raises_and_is_logged(
    db: Database, worker: Worker, emulator: EmulatorHandle
) -> None:
    assert worker.context.b24 is not None
    with pytest.raises(Bitrix24Error) as caught:
        await worker.context.b24.call("tasks.task.add", {"fields": {"RESPONSIBLE_ID": 1}})
    assert caught.value.error.code == "ERROR_CORE"
    assert not isinstance(caught.value, Bitrix24Unavailable)
    (row,) = await _logs(db)
    assert row.status == "error" and row.error_code == "ERROR_CORE"


async def test_blocked_method_fails_fast_without_a_request(
    db: Database, worker: Worker, emulator: EmulatorHandle
) -> None:
    assert worker.context.b24 is not None and worker.throttle is not None
    async with db.unit_of_work() as session:
        await worker.throttle.apply(session, Feedback(blocks={"tasks.task.list": time.time() + 60}))
    with pytest.raises(Bitrix24Unavailable) as caught:
        await worker.context.b24.call("tasks.task.list", {})
    assert caught.value.error.code == "OPERATION_TIME_LIMIT"
    assert await emulator.calls("tasks.task.list") == []


async def test_batch_of_reads_returns_per_command_results(
    worker: Worker, emulator: EmulatorHandle
) -> None:
    assert worker.context.b24 is not None
    task = await emulator.create_task(title="Read me")
    results = await worker.context.b24.batch(
        {
            "t": ("tasks.task.get", {"taskId": task["id"]}),
            "missing": ("task.commentitem.get", {"TASKID": task["id"], "ITEMID": 1}),
        }
    )
    assert results["t"].result["task"]["title"] == "Read me"
    assert results["missing"].error is not None
    assert len(await emulator.calls("batch")) == 1
