"""The operations API: the DLQ, the outbox at a glance, the shared throttle."""

from __future__ import annotations

import time

import httpx
import pytest

from b24mw.bitrix24.throttle import Feedback
from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.auth import auth
from tests.support.jobs import comments, job, raw_job
from tests.support.outbound import EmulatorHandle, drain

ADMIN = "/api/v1/admin"


@pytest.fixture
def settings(outbound_settings: Settings) -> Settings:
    return outbound_settings  # the app and the worker share one configuration


async def _dead_job(db: Database, **fields: object) -> int:
    entry = {"attempt": 1, "request_id": "req-dead", "code": "ERROR_CORE", "error": "nope"}
    return await raw_job(
        db,
        "b24.call",
        {"method": "task.commentitem.add", "params": {"TASKID": 1}},
        status="dead",
        attempts=1,
        last_error="ERROR_CORE: nope",
        error_history=[entry],
        finished_at=utcnow(),
        request_id="req-dead",
        **fields,
    )


async def test_dlq_list_and_show(client: httpx.AsyncClient, db: Database) -> None:
    dead = await _dead_job(db)
    await raw_job(db, "onec.push", {"url": "http://x"}, status="dead", finished_at=utcnow())
    await raw_job(db, "b24.call", {"method": "user.current"})  # pending: not listed

    page = (await client.get(f"{ADMIN}/dlq", headers=auth("admin"))).json()
    assert page["total_items"] == 2 and page["page"] == 1
    only_b24 = (await client.get(f"{ADMIN}/dlq?kind=b24.call", headers=auth("admin"))).json()
    assert [item["id"] for item in only_b24["items"]] == [dead]
    assert only_b24["items"][0]["last_error"] == "ERROR_CORE: nope"

    shown = (await client.get(f"{ADMIN}/dlq/{dead}", headers=auth("admin"))).json()
    assert shown["payload"]["method"] == "task.commentitem.add"
    assert shown["error_history"][0]["request_id"] == "req-dead"
    assert shown["status"] == "dead"


async def test_replay_delivers_and_keeps_history(
    client: httpx.AsyncClient,
    db: Database,
    outbound_settings: Settings,
    worker: Worker,
    emulator: EmulatorHandle,
) -> None:
    task = await emulator.create_task()
    (job_id,) = await comments(db, outbound_settings, (task["id"], "second chance"))
    await emulator.fault("http_500", method="task.commentitem.add")
    await drain(worker, settle=True)
    assert (await job(db, job_id)).status == "dead"
    await emulator.clear_faults()

    replayed = await client.post(f"{ADMIN}/dlq/{job_id}/replay", headers=auth("admin", "ops"))
    assert replayed.status_code == 200
    body = replayed.json()
    assert (body["status"], body["attempts"]) == ("pending", 0)
    assert body["error_history"][-1]["event"] == "replayed"
    assert body["error_history"][-1]["by"] == "ops"
    await drain(worker, settle=True)
    done = await job(db, job_id)
    assert done.status == "done" and len(done.error_history) == 6
    assert len(await emulator.comments(task["id"])) == 1

    again = await client.post(f"{ADMIN}/dlq/{job_id}/replay", headers=auth("admin"))
    assert again.status_code == 409  # only dead jobs can be replayed
    assert again.json()["code"] == "conflict.transition"


async def test_discard_closes_without_delivery(client: httpx.AsyncClient, db: Database) -> None:
    dead = await _dead_job(db)
    response = await client.post(f"{ADMIN}/dlq/{dead}/discard", headers=auth("admin", "ops"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "done" and body["discarded_by"] == "ops"
    assert body["discarded_at"] is not None
    listed = (await client.get(f"{ADMIN}/dlq", headers=auth("admin"))).json()
    assert listed["total_items"] == 0
    missing = await client.post(f"{ADMIN}/dlq/999999/discard", headers=auth("admin"))
    assert missing.status_code == 404


async def test_outbox_state_counts_and_oldest_due(client: httpx.AsyncClient, db: Database) -> None:
    await _dead_job(db)
    oldest = await raw_job(db, "b24.call", {"method": "user.current"}, ordering_key="task:1")
    await raw_job(db, "b24.call", {"method": "user.current"})
    state = (await client.get(f"{ADMIN}/outbox", headers=auth("admin"))).json()
    assert state["counts"] == {"pending": 2, "in_flight": 0, "done": 0, "dead": 1}
    assert state["due_now"] == 2
    assert state["oldest_due"]["id"] == oldest
    assert state["oldest_due"]["age_s"] >= 0


async def test_throttle_state_shows_rate_and_blocked_methods(
    client: httpx.AsyncClient, db: Database, worker: Worker, outbound_settings: Settings
) -> None:
    assert worker.throttle is not None
    await worker.throttle.reserve(max_wait=1)
    async with db.unit_of_work() as session:
        await worker.throttle.apply(
            session,
            Feedback(query_limited=True, blocks={"tasks.task.add": time.time() + 120}),
        )
    state = (await client.get(f"{ADMIN}/throttle", headers=auth("admin"))).json()
    assert state["configured"] is True and state["portal"] == "b24.test"
    assert state["rate_per_s"] == outbound_settings.b24_rps / 2
    assert state["configured_rps"] == outbound_settings.b24_rps
    assert state["requests_last_60s"] == 1
    assert list(state["blocked_methods"]) == ["tasks.task.add"]
    assert state["limited_total"] == 1 and "tokens" in state


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/dlq"),
        ("GET", "/dlq/1"),
        ("POST", "/dlq/1/replay"),
        ("POST", "/dlq/1/discard"),
        ("GET", "/outbox"),
        ("GET", "/throttle"),
    ],
)
async def test_admin_role_only(client: httpx.AsyncClient, method: str, path: str) -> None:
    anonymous = await client.request(method, ADMIN + path, headers={"Idempotency-Key": "k1"})
    assert anonymous.status_code == 401
    courier = await client.request(method, ADMIN + path, headers=auth("courier", "c1"))
    assert courier.status_code == 403
    onec = await client.request(method, ADMIN + path, headers=auth("1c", "erp"))
    assert onec.status_code == 403
