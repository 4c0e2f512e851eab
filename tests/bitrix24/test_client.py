"""The client against the emulator: envelopes, typed failures, redirects, batch mapping."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest

from b24mw.bitrix24.client import Bitrix24Client, Target
from b24mw.bitrix24.errors import Outcome
from b24mw.settings import Settings
from tests.support.net import free_port
from tests.support.outbound import B24_BASE, EmulatorHandle, outbound_settings_for


@pytest.fixture
def client(outbound_settings: Settings, outbound_http: httpx.AsyncClient) -> Bitrix24Client:
    target = Target.from_settings(outbound_settings)
    assert target is not None
    return Bitrix24Client(outbound_settings, outbound_http, target)


async def test_success_returns_result_and_time_and_sends_request_id(
    client: Bitrix24Client, emulator: EmulatorHandle
) -> None:
    task = await emulator.create_task(title="Check")
    reply = await client.call("tasks.task.get", {"taskId": task["id"]}, request_id="req-42")
    assert reply.ok and reply.http_status == 200
    assert reply.result["task"]["title"] == "Check"
    assert reply.time is not None and "operating" in reply.time
    (call,) = await emulator.calls("tasks.task.get")
    assert call["headers"]["x-request-id"] == "req-42"


async def test_portal_error_keeps_code_and_description(client: Bitrix24Client) -> None:
    reply = await client.call("tasks.task.add", {"fields": {"RESPONSIBLE_ID": 1}})
    assert reply.error is not None
    assert reply.error.outcome is Outcome.PERMANENT
    assert reply.error.code == "ERROR_CORE"
    assert "title" in reply.error.description
    assert reply.http_status == 400


async def test_unknown_method_is_permanent(client: Bitrix24Client) -> None:
    reply = await client.call("tasks.task.nope", {})
    assert reply.error is not None and reply.error.code == "ERROR_METHOD_NOT_FOUND"
    assert reply.error.outcome is Outcome.PERMANENT


@pytest.mark.parametrize(
    ("kind", "code", "outcome", "may_have_run"),
    [
        ("http_500", "INTERNAL_SERVER_ERROR", Outcome.RETRYABLE, True),
        ("html_502", "HTML_RESPONSE", Outcome.RETRYABLE, True),
        ("query_limit", "QUERY_LIMIT_EXCEEDED", Outcome.THROTTLED, False),
        ("operation_limit", "OPERATION_TIME_LIMIT", Outcome.OPERATING_LIMITED, False),
    ],
)
async def test_faults_become_typed_outcomes(
    client: Bitrix24Client,
    emulator: EmulatorHandle,
    kind: str,
    code: str,
    outcome: Outcome,
    may_have_run: bool,
) -> None:
    await emulator.fault(kind, count=1, duration_s=30)
    reply = await client.call("user.current", {})
    assert reply.error is not None
    assert (reply.error.code, reply.error.outcome) == (code, outcome)
    assert reply.error.may_have_run is may_have_run
    if kind == "operation_limit":
        # The documented 429 names no reset: the limiter takes the last success's.
        assert reply.error.reset_at is None


async def test_a_hanging_portal_times_out(
    db: Any, outbound_http: httpx.AsyncClient, emulator: EmulatorHandle
) -> None:
    settings = outbound_settings_for(db.url, b24_timeout_s=0.2, b24_connect_timeout_s=0.1)
    target = Target.from_settings(settings)
    assert target is not None
    client = Bitrix24Client(settings, outbound_http, target)
    await emulator.fault("hang", count=1, latency_s=5)
    reply = await client.call("user.current", {})
    assert reply.error is not None and reply.error.code == "HTTP_TIMEOUT"
    assert reply.error.outcome is Outcome.RETRYABLE and reply.error.may_have_run
    assert reply.duration_s < 2


async def test_refused_connection_never_ran(db: Any) -> None:
    settings = outbound_settings_for(db.url, b24_url=f"http://127.0.0.1:{free_port()}/rest/1/x/")
    target = Target.from_settings(settings)
    assert target is not None
    async with httpx.AsyncClient() as http:
        reply = await Bitrix24Client(settings, http, target).call("user.current", {})
    assert reply.error is not None and reply.error.code == "NETWORK_ERROR"
    assert reply.error.may_have_run is False


async def _redirector(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """A renamed portal: every call answers 302 to the same path on the new host."""
    location = f"http://b24.test{scope['path']}".encode()
    await send({"type": "http.response.start", "status": 302, "headers": [(b"location", location)]})
    await send({"type": "http.response.body", "body": b""})


async def test_302_is_re_posted_to_location(db: Any, emulator: EmulatorHandle) -> None:
    settings = outbound_settings_for(db.url, b24_url=B24_BASE.replace("b24.test", "old.test"))
    target = Target.from_settings(settings)
    assert target is not None
    mounts = {
        "http://old.test": httpx.ASGITransport(app=_redirector),
        "http://b24.test": httpx.ASGITransport(app=emulator.app),
    }
    async with httpx.AsyncClient(mounts=mounts) as http:
        task = await emulator.create_task(title="Moved")
        reply = await Bitrix24Client(settings, http, target).call(
            "task.commentitem.add", {"TASKID": task["id"], "FIELDS": {"POST_MESSAGE": "hi"}}
        )
    assert reply.ok, reply.error
    assert [c["text"] for c in await emulator.comments(task["id"])] == ["hi"]


async def test_batch_maps_each_command_and_isolates_failures(
    client: Bitrix24Client, emulator: EmulatorHandle
) -> None:
    task = await emulator.create_task(title="Batch")
    answer = await client.batch(
        {
            "j1": ("task.commentitem.add", {"TASKID": task["id"], "FIELDS": {"POST_MESSAGE": "a"}}),
            "j2": ("task.commentitem.add", {"TASKID": 999999, "FIELDS": {"POST_MESSAGE": "b"}}),
            "j3": ("tasks.task.get", {"taskId": task["id"], "select": ["ID", "TITLE"]}),
        }
    )
    assert answer.reply.ok
    ok, bad, read = answer.commands["j1"], answer.commands["j2"], answer.commands["j3"]
    assert ok.ok and isinstance(ok.result, int)
    assert bad.error is not None and bad.error.code == "ERROR_CORE"
    assert bad.error.outcome is Outcome.PERMANENT
    assert read.result["task"]["title"] == "Batch"
    assert [c["id"] for c in await emulator.comments(task["id"])] == [ok.result]
    (call,) = await emulator.calls("batch")
    assert len(call["commands"]) == 3


async def test_batch_rejects_more_than_50_commands(client: Bitrix24Client) -> None:
    with pytest.raises(ValueError, match=r"1\.\.50"):
        await client.batch({f"k{i}": ("user.current", {}) for i in range(51)})


async def test_whole_batch_failure_reaches_every_command(
    client: Bitrix24Client, emulator: EmulatorHandle
) -> None:
    await emulator.fault("html_502", method="batch", count=1)
    answer = await client.batch({"a": ("user.current", {}), "b": ("user.current", {})})
    assert {k: c.error.code for k, c in answer.commands.items() if c.error} == {
        "a": "HTML_RESPONSE",
        "b": "HTML_RESPONSE",
    }


async def test_codeless_errors_are_refusals_or_retries_by_their_description(
    client: Bitrix24Client, emulator: EmulatorHandle
) -> None:
    task = await emulator.create_task(title="Batch")
    await emulator.fault("no_code", method="tasks.task.get", count=1)
    await emulator.fault("no_code", method="user.current", count=1, description="Internal error")
    answer = await client.batch(
        {"a": ("tasks.task.get", {"taskId": task["id"]}), "b": ("user.current", {})}
    )
    refused, transient = answer.commands["a"].error, answer.commands["b"].error
    assert refused is not None and transient is not None
    assert (refused.code, refused.description) == ("ERROR_WITHOUT_CODE", "Not found")
    assert refused.outcome is Outcome.PERMANENT
    assert transient.outcome is Outcome.RETRYABLE
    # At the top level too: a falsy `error` is an error, judged by description and status.
    await emulator.fault("no_code", method="tasks.task.get", count=1)
    reply = await client.call("tasks.task.get", {"taskId": task["id"]})
    assert reply.error is not None
    assert (reply.error.code, reply.error.outcome, reply.http_status) == (
        "ERROR_WITHOUT_CODE",
        Outcome.PERMANENT,
        400,
    )
