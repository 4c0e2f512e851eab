"""The drills' closing check finds what is missing or doubled (it can fail)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.drills.ledger import account_for_everything
from tests.drills.workload import Workload
from tests.support.outbound import *  # noqa: F403  (shared outbound fixtures)
from tests.support.outbound import EmulatorHandle, RecordingSink, drain, jobs


@pytest.fixture
def settings(outbound_settings: Settings) -> Settings:
    return outbound_settings


@pytest.fixture
async def settled_work(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle
) -> Workload:
    work = Workload(client, emulator.control)
    await work.courier()
    await work.delivery()
    await work.order_walked(await work.person_task())
    await work.return_decided(await work.person_task(), "rejected")
    await drain(worker, settle=True)
    return work


def delivered(sink: RecordingSink) -> list[dict[str, Any]]:
    return [request.json() for request in sink.requests]


async def test_a_settled_day_is_accounted_for(
    settled_work: Workload, db: Database, emulator: EmulatorHandle, event_sink: RecordingSink
) -> None:
    ledger = await account_for_everything(db, emulator.control, events=delivered(event_sink))
    assert (ledger.orders, ledger.deliveries, ledger.returns) == (1, 1, 1)
    assert ledger.jobs["done"] == len(await jobs(db)) and ledger.events > 0


async def test_a_comment_posted_twice_is_found(
    settled_work: Workload, db: Database, emulator: EmulatorHandle
) -> None:
    [job] = [j for j in await jobs(db) if j.payload.get("method") == "task.commentitem.add"][:1]
    await emulator.control.post("/rest/1/emulator/task.commentitem.add", json=job.payload["params"])
    with pytest.raises(AssertionError, match="effects doubled in the portal"):
        await account_for_everything(db, emulator.control)


async def test_a_job_left_open_or_dead_is_found(
    settled_work: Workload, db: Database, emulator: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    await settled_work.return_decided(settled_work.tasks[0], decision=None)  # not delivered
    with pytest.raises(AssertionError, match="outbox jobs still open"):
        await account_for_everything(db, emulator.control)


async def test_an_event_delivered_twice_is_found_unless_at_least_once(
    settled_work: Workload, db: Database, emulator: EmulatorHandle, event_sink: RecordingSink
) -> None:
    events = delivered(event_sink)
    with pytest.raises(AssertionError, match="events delivered more than once"):
        await account_for_everything(db, emulator.control, events=[*events, events[0]])
    await account_for_everything(
        db, emulator.control, events=[*events, events[0]], events_at_least_once=True
    )
    with pytest.raises(AssertionError, match="never arrived"):
        await account_for_everything(db, emulator.control, events=events[1:])


async def test_a_tagged_task_without_its_order_is_found(
    settled_work: Workload, db: Database, emulator: EmulatorHandle
) -> None:
    await settled_work.person_task(tagged=True)  # no event reaches the API here
    with pytest.raises(AssertionError, match="has 0 orders and no comment refusing one"):
        await account_for_everything(db, emulator.control)
