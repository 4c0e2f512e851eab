"""CloudEvents to sinks and hand-offs to 1C: signed, idempotent, retried, dead-lettered."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path

from sqlalchemy import select

from b24mw.integration_events.cloudevents import build_event
from b24mw.kit.db import Database
from b24mw.kit.request_context import set_request_id
from b24mw.kit.staging import flush
from b24mw.models.history import IntegrationLog
from b24mw.outbox import Outbox
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.jobs import job
from tests.support.outbound import SIGNING_SECRET, RecordingSink, drain, outbound_settings_for


def _signature_ok(headers: dict[str, str], body: bytes) -> bool:
    signed = headers["x-request-timestamp"].encode() + b"." + body
    expected = hmac.new(SIGNING_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-signature"], f"sha256={expected}")


async def _event(db: Database, settings: Settings) -> tuple[dict[str, object], list[int]]:
    set_request_id("req-event")
    event = build_event(
        type="integration.return.created", system="returns", subject="returns/1", data={"id": 1}
    )
    async with db.unit_of_work() as session:
        made = Outbox(settings).event(session, event)
        await flush(session)
        return event, [j.id for j in made]


async def test_event_is_posted_structured_signed_and_idempotent(
    db: Database, outbound_settings: Settings, worker: Worker, event_sink: RecordingSink
) -> None:
    event, _ = await _event(db, outbound_settings)
    await drain(worker)
    (received,) = event_sink.requests
    assert received.path == "/events"
    assert received.headers["content-type"] == "application/cloudevents+json"
    assert received.headers["idempotency-key"] == (
        f"urn:b24mw:returns:integration.return.created:{event['id']}"
    )
    assert received.headers["x-request-id"] == "req-event"
    assert abs(int(received.headers["x-request-timestamp"]) - time.time()) < 60
    assert _signature_ok(received.headers, received.body)
    assert received.json() == event
    async with db.reader() as session:
        (log,) = (await session.execute(select(IntegrationLog))).scalars()
    assert (log.system, log.endpoint, log.status, log.http_code, log.resource_ref) == (
        "events",
        "http://sink.test/events",
        "ok",
        200,
        "returns/1",
    )


async def test_sink_5xx_is_retried_and_4xx_is_dead_with_the_answer_kept(
    db: Database, outbound_settings: Settings, worker: Worker, event_sink: RecordingSink
) -> None:
    event_sink.respond(503, times=2)
    _, (retried,) = await _event(db, outbound_settings)
    await drain(worker, settle=True)
    assert (await job(db, retried)).status == "done"
    assert len(event_sink.requests) == 3
    assert {r.headers["idempotency-key"] for r in event_sink.requests} == {
        event_sink.requests[0].headers["idempotency-key"]
    }

    event_sink.respond(422, {"errors": [{"field": "data", "message": "unknown schema"}]})
    _, (refused,) = await _event(db, outbound_settings)
    await drain(worker, settle=True)
    dead = await job(db, refused)
    assert dead.status == "dead" and dead.attempts == 1
    assert dead.error_history[0]["response"] == {
        "errors": [{"field": "data", "message": "unknown schema"}]
    }


async def test_file_sink_appends_whole_lines_under_concurrency(
    db: Database, worker: Worker, tmp_path: Path
) -> None:
    sink = tmp_path / "out" / "events.jsonl"
    settings = outbound_settings_for(db.url, event_sinks=f"file://{sink}")
    outbox = Outbox(settings)
    async with db.unit_of_work() as session:
        for i in range(40):
            event = build_event(type="t.x", system="test", subject=f"s/{i}", data={"n": i})
            outbox.event(session, event)

    # Two workers append at once; every line must stay a whole JSON document.
    second = Worker(settings, db, http=worker.http, worker_id="second")
    await asyncio.gather(drain(worker), drain(second))
    lines = sink.read_text().splitlines()
    assert sorted(json.loads(line)["data"]["n"] for line in lines) == list(range(40))


async def test_onec_push_carries_body_and_keys_and_keeps_a_refusal(
    db: Database, outbound_settings: Settings, worker: Worker, onec_sink: RecordingSink
) -> None:
    outbox = Outbox(outbound_settings)
    set_request_id("req-1c")

    async def push(body: dict[str, str], key: str) -> int:
        async with db.unit_of_work() as session:
            created = outbox.onec(session, "returns", body, idempotency_key=key)
            assert created is not None
            await flush(session)
            return created.id

    onec_sink.respond(500)
    accepted = await push({"return_id": "r1"}, "r1:created")
    await drain(worker, settle=True)
    first, second = onec_sink.requests
    assert first.path == "/1c/returns"
    assert first.json() == {"return_id": "r1"}
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == "r1:created"
    assert first.headers["x-request-id"] == "req-1c"
    assert first.headers["content-type"] == "application/json"
    assert (await job(db, accepted)).status == "done"

    onec_sink.respond(409, {"error": "document closed"})
    refused = await push({"return_id": "r2"}, "r2:created")
    await drain(worker, settle=True)
    dead = await job(db, refused)
    assert dead.status == "dead" and dead.attempts == 1
    assert dead.error_history[-1]["response"] == {"error": "document closed"}
    async with db.reader() as session:
        logs = (await session.execute(select(IntegrationLog).order_by(IntegrationLog.id))).all()
    assert [(log.system, log.status, log.http_code) for (log,) in logs] == [
        ("1c", "error", 500),
        ("1c", "ok", 200),
        ("1c", "error", 409),
    ]
