"""What a create or a decision writes in its own transaction: history, log, outbox jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from b24mw.app import create_app
from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.models.ops import OutboxJob
from tests.returns.helpers import (
    TASK_ID,
    URL,
    ExplodingOutbox,
    jobs,
    log_rows,
    return_body,
    task_events,
    use_outbox,
)
from tests.support.auth import auth
from tests.support.config import make_settings

pytestmark = pytest.mark.usefixtures("couriers")
ONEC = "http://1c.test/hs/b24mw"
ClientFactory = Callable[..., Any]


@pytest.fixture
async def make_client(db: Database, tmp_path: Path) -> AsyncIterator[ClientFactory]:
    """A client for an app with extra settings (1C configured, locale, deadline...)."""
    clients: list[httpx.AsyncClient] = []

    def build(**overrides: object) -> httpx.AsyncClient:
        values: dict[str, object] = {"event_sinks": f"file://{tmp_path}/events.jsonl"}
        values.update(overrides)
        app = create_app(make_settings(db.url, **values), database=db)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


def by_kind(rows: list[OutboxJob], kind: str) -> list[OutboxJob]:
    return [j for j in rows if j.kind == kind]


def b24_methods(rows: list[OutboxJob]) -> list[str]:
    return [j.payload["method"] for j in by_kind(rows, "b24.call")]


def comment_text(job: OutboxJob) -> str:
    """The comment as people read it (without the job marker line)."""
    message: str = job.payload["params"]["FIELDS"]["POST_MESSAGE"]
    return message.rsplit("\n[b24mw:", 1)[0]


async def test_create_writes_history_log_and_every_job(
    make_client: ClientFactory, db: Database
) -> None:
    client = make_client(onec_url=ONEC)
    response = await client.post(URL, headers=auth("courier", "c-1"), json=return_body())
    assert response.status_code == 201
    created, rid = response.json(), response.headers["x-request-id"]

    rows = await jobs(db)
    assert sorted(j.kind for j in rows) == ["b24.call", "event.publish", "onec.push"]
    assert {j.request_id for j in rows} == {rid}

    event = by_kind(rows, "event.publish")[0].payload["event"]
    assert event["type"] == "integration.return.created"
    assert event["source"] == "urn:b24mw:returns"
    assert event["subject"] == f"returns/{created['id']}"
    assert event["specversion"] == "1.0"
    assert (event["requestid"], event["dataversion"]) == (rid, "1")
    assert event["data"] == created

    push = by_kind(rows, "onec.push")[0].payload
    assert push["url"] == f"{ONEC}/returns"
    assert push["body"] == created
    assert push["idempotency_key"] == f"b24mw:returns:{created['id']}:created"

    comment = by_kind(rows, "b24.call")[0]
    assert comment.payload["method"] == "task.commentitem.add"
    assert comment.payload["params"]["TASKID"] == TASK_ID
    assert comment.ordering_key == f"task:{TASK_ID}"
    assert comment_text(comment) == (
        f"Возврат {created['id']} создан: позиций 2, штук 3. Статус: ожидает решения"
    )

    [history] = await task_events(db, created["id"])
    assert (history.type, history.status, history.actor_id) == ("status", "pending", "c-1")
    assert (history.task_id_b24, history.request_id) == (TASK_ID, rid)
    [log] = await log_rows(db, created["id"])
    assert (log.direction, log.endpoint, log.http_code) == ("in", "POST /api/v1/returns", 201)
    assert log.request_id == rid


@pytest.mark.parametrize("target", ["accepted", "rejected", "cancelled"])
async def test_decision_writes_history_log_and_jobs(
    make_client: ClientFactory, db: Database, target: str
) -> None:
    client = make_client(onec_url=ONEC)
    created = (await client.post(URL, headers=auth("courier", "c-1"), json=return_body())).json()
    before = len(await jobs(db))
    if target == "cancelled":
        response = await client.delete(f"{URL}/{created['id']}", headers=auth("admin", "alice"))
        actor = "alice"
    else:
        body = {"status": target, "comment": "checked by 1C"}
        response = await client.patch(
            f"{URL}/{created['id']}", headers=auth("1c", "onec"), json=body
        )
        actor = "onec"
    assert response.status_code in (200, 204)
    rid = response.headers["x-request-id"]
    rows = (await jobs(db))[before:]
    assert {j.request_id for j in rows} == {rid}

    event = by_kind(rows, "event.publish")[0].payload["event"]
    assert event["type"] == "integration.return.status_changed"
    assert event["data"]["status"] == target
    assert event["data"]["previous_status"] == "pending"
    assert event["subject"] == f"returns/{created['id']}"

    push = by_kind(rows, "onec.push")[0].payload
    assert push["url"] == f"{ONEC}/returns/{created['id']}/status"
    assert push["idempotency_key"] == f"b24mw:returns:{created['id']}:status:{target}"
    assert (push["body"]["status"], push["body"]["previous_status"]) == (target, "pending")

    label = {"accepted": "принят", "rejected": "отклонён", "cancelled": "отменён"}[target]
    first_comment = by_kind(rows, "b24.call")[0]
    expected = f"Возврат {created['id']}: ожидает решения → {label}"
    if target != "cancelled":
        expected += "\nКомментарий: checked by 1C"
    assert comment_text(first_comment) == expected
    assert b24_methods(rows) == (
        ["task.commentitem.add", "tasks.task.add"]
        if target == "rejected"
        else ["task.commentitem.add"]
    )

    history = await task_events(db, created["id"])
    assert [(e.status, e.actor_id) for e in history] == [("pending", "c-1"), (target, actor)]
    assert history[-1].request_id == rid
    assert history[-1].payload_json["from"] == "pending"
    logs = await log_rows(db, created["id"])
    assert logs[-1].request_id == rid
    assert logs[-1].http_code == (204 if target == "cancelled" else 200)


async def test_rejection_subtask_fields(make_client: ClientFactory, db: Database) -> None:
    client = make_client(return_subtask_deadline_hours=48)
    created = (await client.post(URL, headers=auth("admin"), json=return_body("c-2"))).json()
    decided_at = utcnow()
    await client.patch(
        f"{URL}/{created['id']}", headers=auth("1c", "onec"), json={"status": "rejected"}
    )
    [subtask] = [j for j in await jobs(db) if j.payload.get("method") == "tasks.task.add"]
    fields = subtask.payload["params"]["fields"]
    assert fields["TITLE"] == "Вернуть товар клиенту"
    assert fields["PARENT_ID"] == TASK_ID
    assert fields["RESPONSIBLE_ID"] == 502
    deadline = datetime.fromisoformat(fields["DEADLINE"])
    assert abs(deadline - (decided_at + timedelta(hours=48))) < timedelta(seconds=5)
    assert created["id"] in fields["DESCRIPTION"]
    assert "- SKU-1 × 2 (broken_screen)" in fields["DESCRIPTION"]
    assert subtask.ordering_key == f"task:{TASK_ID}"


async def test_english_locale(make_client: ClientFactory, db: Database) -> None:
    client = make_client(locale="en")
    created = (await client.post(URL, headers=auth("admin"), json=return_body())).json()
    await client.patch(
        f"{URL}/{created['id']}", headers=auth("1c", "onec"), json={"status": "rejected"}
    )
    calls = by_kind(await jobs(db), "b24.call")
    assert comment_text(calls[0]) == (
        f"Return {created['id']} created: 2 line(s), 3 item(s). Status: pending"
    )
    assert comment_text(calls[1]) == f"Return {created['id']}: pending → rejected"
    assert calls[2].payload["params"]["fields"]["TITLE"] == "Return the goods to the customer"


async def test_no_linked_task_means_no_bitrix24_jobs(
    make_client: ClientFactory, db: Database
) -> None:
    client = make_client(onec_url=ONEC)
    body = return_body(task_id_b24=None)
    created = (await client.post(URL, headers=auth("admin"), json=body)).json()
    await client.patch(
        f"{URL}/{created['id']}", headers=auth("1c", "onec"), json={"status": "rejected"}
    )
    rows = await jobs(db)
    assert by_kind(rows, "b24.call") == []
    assert len(by_kind(rows, "event.publish")) == 2
    assert len(by_kind(rows, "onec.push")) == 2


async def test_without_1c_url_no_hand_off(client: httpx.AsyncClient, db: Database) -> None:
    created = (await client.post(URL, headers=auth("admin"), json=return_body())).json()
    await client.patch(
        f"{URL}/{created['id']}", headers=auth("1c", "onec"), json={"status": "accepted"}
    )
    assert by_kind(await jobs(db), "onec.push") == []


async def test_one_event_job_per_sink(make_client: ClientFactory, db: Database) -> None:
    client = make_client(event_sinks="http://sink-a.test/e,http://sink-b.test/e")
    await client.post(URL, headers=auth("admin"), json=return_body())
    sinks = [j.payload["sink"] for j in by_kind(await jobs(db), "event.publish")]
    assert sorted(sinks) == ["http://sink-a.test/e", "http://sink-b.test/e"]
    events = {j.payload["event"]["id"] for j in by_kind(await jobs(db), "event.publish")}
    assert len(events) == 1, "every sink gets the same event id"


async def test_courier_without_bitrix24_user_gets_no_subtask_but_a_visible_note(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = (await client.post(URL, headers=auth("admin"), json=return_body("c-3"))).json()
    await client.patch(
        f"{URL}/{created['id']}", headers=auth("1c", "onec"), json={"status": "rejected"}
    )
    rows = await jobs(db)
    assert "tasks.task.add" not in b24_methods(rows)
    note = comment_text(by_kind(rows, "b24.call")[-1])
    assert "c-3" in note and "Битрикс24" in note
    skipped = [r for r in await log_rows(db, created["id"]) if r.status == "skipped"]
    assert [(r.endpoint, r.error_code) for r in skipped] == [
        ("tasks.task.add", "courier_without_b24_user")
    ]


async def test_annotation_only_patch_and_put_announce_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = (await client.post(URL, headers=auth("admin"), json=return_body())).json()
    before = len(await jobs(db))
    await client.patch(f"{URL}/{created['id']}", headers=auth("admin"), json={"manager_id": "m"})
    await client.put(f"{URL}/{created['id']}", headers=auth("admin"), json=return_body())
    assert len(await jobs(db)) == before
    assert len(await task_events(db, created["id"])) == 1
    assert [r.endpoint for r in await log_rows(db, created["id"])][-1] == "PUT /api/v1/returns/{id}"


async def test_refused_request_leaves_no_trace(client: httpx.AsyncClient, db: Database) -> None:
    created = (await client.post(URL, headers=auth("admin"), json=return_body())).json()
    await client.patch(
        f"{URL}/{created['id']}", headers=auth("1c", "onec"), json={"status": "accepted"}
    )
    before = (len(await jobs(db)), len(await task_events(db, created["id"])))
    refused = await client.patch(
        f"{URL}/{created['id']}", headers=auth("1c", "onec"), json={"status": "rejected"}
    )
    assert refused.status_code == 422
    assert (len(await jobs(db)), len(await task_events(db, created["id"]))) == before


async def test_failure_late_in_the_transaction_publishes_nothing(
    app: Any, client: httpx.AsyncClient, db: Database
) -> None:
    use_outbox(app, ExplodingOutbox(app.state.settings))
    response = await client.post(URL, headers=auth("admin"), json=return_body())
    assert response.status_code == 500
    assert response.json()["code"] == "internal"
    assert await jobs(db) == []
    listing = await client.get(URL, headers=auth("admin"))
    assert listing.json()["total_items"] == 0
