"""Flow 2 end to end: API → outbox → worker → the Bitrix24 emulator, an event sink, 1C."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.outbox import Outbox
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.returns.helpers import URL, ExplodingOutbox, return_body, use_outbox
from tests.support.auth import auth
from tests.support.outbound import *  # noqa: F403  (shared outbound fixtures)
from tests.support.outbound import (
    SIGNING_SECRET,
    EmulatorHandle,
    Recorded,
    RecordingSink,
    drain,
    jobs,
    outbound_settings_for,
    text_of,
)

pytestmark = pytest.mark.usefixtures("couriers")

# RFC 3339 date-time (section 5.6), as CloudEvents 1.0 requires for `time`.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")


@pytest.fixture
def settings(outbound_settings: Settings) -> Settings:
    """The API enqueues to the emulator, the recording sink and the recording 1C."""
    return outbound_settings


@pytest.fixture
async def task(emulator: EmulatorHandle) -> int:
    created = await emulator.create_task(title="Delivery 77", responsible_id=501)
    return int(created["id"])


async def _b24_calls(emulator: EmulatorHandle) -> list[tuple[str, dict[str, Any]]]:
    return [(c["method"], c["args"]) for c in await emulator.calls()]


async def _create(client: httpx.AsyncClient, task: int | None, courier: str = "c-1") -> Any:
    body = return_body(courier, task_id_b24=task)
    response = await client.post(URL, headers=auth("courier", courier), json=body)
    assert response.status_code == 201, response.text
    return response


async def _decide(
    client: httpx.AsyncClient, rid: str, status: str, comment: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"status": status}
    if comment:
        body["comment"] = comment
    response = await client.patch(f"{URL}/{rid}", headers=auth("1c", "onec"), json=body)
    assert response.status_code == 200, response.text
    return response


async def test_create_posts_one_comment_on_the_linked_task(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, task: int
) -> None:
    created = (await _create(client, task)).json()
    await drain(worker, settle=True)
    [(method, args)] = await _b24_calls(emulator)
    assert method == "task.commentitem.add"
    assert args["TASKID"] == task
    expected = f"Возврат {created['id']} создан: позиций 2, штук 3. Статус: ожидает решения"
    assert text_of(args["FIELDS"]["POST_MESSAGE"]) == expected
    assert [text_of(c["text"]) for c in await emulator.comments(task)] == [expected]


async def test_accept_posts_the_decision_and_nothing_else(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, task: int
) -> None:
    rid = (await _create(client, task)).json()["id"]
    await drain(worker, settle=True)
    seen = len(await emulator.calls())
    await _decide(client, rid, "accepted", "ok, restocked")
    await drain(worker, settle=True)
    calls = (await _b24_calls(emulator))[seen:]
    assert [m for m, _ in calls] == ["task.commentitem.add"]
    assert text_of(calls[0][1]["FIELDS"]["POST_MESSAGE"]) == (
        f"Возврат {rid}: ожидает решения → принят\nКомментарий: ok, restocked"
    )


async def test_reject_posts_the_decision_and_a_subtask_for_the_courier(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, task: int
) -> None:
    rid = (await _create(client, task, "c-2")).json()["id"]
    await drain(worker, settle=True)
    seen = len(await emulator.calls())
    decided_at = utcnow()
    await _decide(client, rid, "rejected", "seal broken by the customer")
    await drain(worker, settle=True)

    calls = (await _b24_calls(emulator))[seen:]
    assert [m for m, _ in calls] == ["task.commentitem.add", "tasks.task.add"]
    assert text_of(calls[0][1]["FIELDS"]["POST_MESSAGE"]) == (
        f"Возврат {rid}: ожидает решения → отклонён\nКомментарий: seal broken by the customer"
    )
    fields = calls[1][1]["fields"]
    assert fields["TITLE"] == "Вернуть товар клиенту"
    assert (fields["PARENT_ID"], fields["RESPONSIBLE_ID"]) == (task, 502)
    deadline = datetime.fromisoformat(fields["DEADLINE"])
    assert abs(deadline - (decided_at + timedelta(hours=24))) < timedelta(seconds=10)
    assert fields["DESCRIPTION"].startswith(f"Возврат {rid} отклонён.")

    subtask = await emulator.task(task + 1)
    assert (subtask["title"], subtask["parent_id"]) == ("Вернуть товар клиенту", task)
    assert subtask["responsible_id"] == 502


async def test_lost_subtask_answer_is_found_not_created_twice(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, task: int, db: Database
) -> None:
    rid = (await _create(client, task, "c-2")).json()["id"]
    await drain(worker, settle=True)
    # The portal creates the subtask, then the answer is lost.
    await emulator.fault("http_500", method="tasks.task.add", count=1, phase="after")
    await _decide(client, rid, "rejected")
    await drain(worker, settle=True)

    subtasks = [
        t for t in (await emulator.control.get("/_emulator/tasks")).json() if t["parent_id"]
    ]
    assert [(t["title"], t["parent_id"], t["tags"]) for t in subtasks] == [
        ("Вернуть товар клиенту", task, [])
    ]
    [lookup] = [c for c in await emulator.calls() if c["method"] == "tasks.task.list"]
    assert (lookup["args"]["filter"]["PARENT_ID"], lookup["args"]["filter"]["RESPONSIBLE_ID"]) == (
        task,
        502,
    )
    [add] = [j for j in await jobs(db) if j.payload.get("method") == "tasks.task.add"]
    assert add.status == "done" and add.result is not None
    assert add.result["task"]["id"] == str(subtasks[0]["id"])


async def test_english_portal_gets_english_texts(
    db: Database, worker: Worker, emulator: EmulatorHandle, task: int
) -> None:
    from b24mw.app import create_app

    app = create_app(outbound_settings_for(db.url, locale="en"), database=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        rid = (await _create(client, task)).json()["id"]
        await _decide(client, rid, "rejected")
    await drain(worker, settle=True)
    calls = await _b24_calls(emulator)
    texts = [text_of(a["FIELDS"]["POST_MESSAGE"]) for m, a in calls if m == "task.commentitem.add"]
    assert texts == [
        f"Return {rid} created: 2 line(s), 3 item(s). Status: pending",
        f"Return {rid}: pending → rejected",
    ]
    [subtask] = [a["fields"] for m, a in calls if m == "tasks.task.add"]
    assert subtask["TITLE"] == "Return the goods to the customer"


def _assert_valid_cloudevent(request: Recorded) -> dict[str, Any]:
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/cloudevents+json"
    event: dict[str, Any] = request.json()
    for attribute in ("id", "source", "specversion", "type"):
        assert isinstance(event.get(attribute), str) and event[attribute], attribute
    assert event["specversion"] == "1.0"
    assert RFC3339.match(event["time"]), event["time"]
    assert event["datacontenttype"] == "application/json"
    core = {"id", "source", "specversion", "type", "time", "subject", "datacontenttype", "data"}
    assert {k for k in event if k not in core} == {"requestid", "dataversion"}
    assert all(EXTENSION_NAME.match(name) for name in ("requestid", "dataversion"))
    # The official SDK reads it back (and validates it on the way).
    parsed = from_http_event(HTTPMessage(headers=request.headers, body=request.body))
    assert parsed.get_id() == event["id"]
    assert parsed.get_type() == event["type"]
    assert parsed.get_time() is not None
    assert parsed.get_data() == event["data"]
    assert parsed.get_extension("requestid") == event["requestid"]
    # Delivery contract: stable idempotency key, request id, our HMAC signature.
    assert request.headers["idempotency-key"] == (
        f"{event['source']}:{event['type']}:{event['id']}"
    )
    assert request.headers["x-request-id"] == event["requestid"]
    signed = request.headers["x-request-timestamp"].encode() + b"." + request.body
    digest = hmac.new(SIGNING_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert request.headers["x-signature"] == f"sha256={digest}"
    return event


async def test_cloudevents_reach_the_sink_valid_and_in_order(
    client: httpx.AsyncClient, worker: Worker, event_sink: RecordingSink, task: int
) -> None:
    created = await _create(client, task)
    decided = await _decide(client, created.json()["id"], "accepted")
    await drain(worker, settle=True)

    events = [_assert_valid_cloudevent(r) for r in event_sink.requests]
    assert [e["type"] for e in events] == [
        "integration.return.created",
        "integration.return.status_changed",
    ]
    assert {e["source"] for e in events} == {"urn:b24mw:returns"}
    assert {e["subject"] for e in events} == {f"returns/{created.json()['id']}"}
    assert [e["requestid"] for e in events] == [
        created.headers["x-request-id"],
        decided.headers["x-request-id"],
    ]
    assert events[0]["data"] == created.json()
    assert events[1]["data"] == {**decided.json(), "previous_status": "pending"}
    assert events[0]["id"] != events[1]["id"]


async def test_1c_receives_the_return_and_the_decision(
    client: httpx.AsyncClient, worker: Worker, onec_sink: RecordingSink
) -> None:
    created = await _create(client, None)
    rid = created.json()["id"]
    decided = await _decide(client, rid, "rejected", "no receipt")
    await drain(worker, settle=True)

    first, second = onec_sink.requests
    assert (first.method, first.path) == ("POST", "/1c/returns")
    assert first.headers["content-type"] == "application/json"
    assert first.headers["idempotency-key"] == f"b24mw:returns:{rid}:created"
    assert first.headers["x-request-id"] == created.headers["x-request-id"]
    assert first.json() == created.json()

    assert (second.method, second.path) == ("POST", f"/1c/returns/{rid}/status")
    assert second.headers["idempotency-key"] == f"b24mw:returns:{rid}:status:rejected"
    assert second.headers["x-request-id"] == decided.headers["x-request-id"]
    assert second.json() == {**decided.json(), "previous_status": "pending"}


async def test_1c_retry_after_5xx_reuses_the_idempotency_key(
    client: httpx.AsyncClient, worker: Worker, onec_sink: RecordingSink
) -> None:
    onec_sink.respond(503)
    rid = (await _create(client, None)).json()["id"]
    await drain(worker, settle=True)
    keys = [r.headers["idempotency-key"] for r in onec_sink.requests]
    assert keys == [f"b24mw:returns:{rid}:created"] * 2
    [push] = [j for j in await jobs(worker.db) if j.kind == "onec.push"]
    assert (push.status, push.attempts) == ("done", 2)


async def test_1c_decision_comes_back_through_patch(
    client: httpx.AsyncClient, worker: Worker, onec_sink: RecordingSink
) -> None:
    """What 1C does with the hand-off: PATCH with role 1c, and is told its own decision."""
    await _create(client, None)
    await drain(worker, settle=True)
    handed_off = onec_sink.requests[0].json()
    response = await client.patch(
        f"{URL}/{handed_off['id']}",
        headers=auth("1c", "1c-accounting"),
        json={"status": "accepted", "manager_id": "1c-manager-9"},
    )
    assert response.status_code == 200
    await drain(worker, settle=True)
    echoed = onec_sink.requests[-1].json()
    assert (echoed["status"], echoed["manager_id"]) == ("accepted", "1c-manager-9")


async def test_no_linked_task_no_bitrix24_calls(
    client: httpx.AsyncClient,
    worker: Worker,
    emulator: EmulatorHandle,
    event_sink: RecordingSink,
    onec_sink: RecordingSink,
) -> None:
    rid = (await _create(client, None)).json()["id"]
    await _decide(client, rid, "rejected")
    await drain(worker, settle=True)
    assert await emulator.calls() == []
    assert len(event_sink.requests) == len(onec_sink.requests) == 2


async def test_nothing_is_published_when_the_transaction_rolls_back(
    app: Any,
    client: httpx.AsyncClient,
    worker: Worker,
    emulator: EmulatorHandle,
    event_sink: RecordingSink,
    onec_sink: RecordingSink,
    task: int,
    settings: Settings,
) -> None:
    use_outbox(app, ExplodingOutbox(settings))
    response = await client.post(
        URL, headers=auth("courier", "c-1"), json=return_body(task_id_b24=task)
    )
    assert response.status_code == 500
    use_outbox(app, Outbox(settings))
    await drain(worker, settle=True)
    assert await jobs(worker.db) == []
    assert await emulator.calls() == []
    assert event_sink.requests == [] and onec_sink.requests == []
