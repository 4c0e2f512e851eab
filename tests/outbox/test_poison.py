"""A job that can never work is dead at once with a clear error; the queue keeps moving."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.jobs import comments, job, raw_job
from tests.support.outbound import EmulatorHandle, drain

POISON: list[tuple[str, Any, str]] = [
    ("b24.call", {"params": {}}, "'method' is not a Bitrix24 method"),
    ("b24.call", {"method": "batch", "params": {"cmd": {}}}, "cannot be a batch"),
    ("b24.call", {"method": "tasks.task.get", "params": ["x"]}, "'params' must be a JSON object"),
    ("b24.call", ["not", "an", "object"], "payload is not a JSON object"),
    ("b24.call", {"method": "user.current", "on_result": "no.such"}, "no result hook"),
    ("event.publish", {"event": {"id": "1"}}, "needs 'sink'"),
    (
        "event.publish",
        {"sink": "ftp://x", "event": {"id": "1", "source": "s", "type": "t"}},
        "sink",
    ),
    ("onec.push", {"body": {}}, "http(s) 'url'"),
]


@pytest.mark.parametrize(("kind", "payload", "message"), POISON)
async def test_poison_job_dies_at_once_and_others_proceed(
    db: Database,
    outbound_settings: Settings,
    worker: Worker,
    emulator: EmulatorHandle,
    kind: str,
    payload: Any,
    message: str,
) -> None:
    task = await emulator.create_task()
    poison = await raw_job(db, kind, payload)
    (healthy,) = await comments(db, outbound_settings, (task["id"], "fine"))
    await drain(worker)
    dead = await job(db, poison)
    assert dead.status == "dead" and dead.attempts == 1
    assert dead.last_error is not None and message in dead.last_error
    assert dead.last_error.startswith("invalid job")
    assert (await job(db, healthy)).status == "done"


async def test_a_job_that_never_gets_an_outcome_is_buried(
    db: Database, worker: Worker, emulator: EmulatorHandle
) -> None:
    # Six leases ran out without any outcome (say the payload crashes the process):
    # the seventh claim buries it instead of sending again.
    stuck = await raw_job(
        db,
        "b24.call",
        {"method": "user.current", "params": {}},
        status="in_flight",
        attempts=6,
        lease_until=utcnow() - timedelta(seconds=1),
        leased_by="crashed",
    )
    await drain(worker)
    dead = await job(db, stuck)
    assert dead.status == "dead" and dead.error_history[-1]["code"] == "NO_OUTCOME"
    assert await emulator.calls() == []
