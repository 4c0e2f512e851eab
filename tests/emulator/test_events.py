from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.net import free_port

from .conftest import Emulator, EmulatorFactory, Receiver

# What a task's life (add, update, start, comment, delete) sends, by either API.
ADD_UPDATE_START_COMMENT_DELETE = [
    "ONTASKADD",
    "ONTASKUPDATE",
    "ONTASKUPDATE",
    "ONTASKCOMMENTADD",
    "ONTASKDELETE",
]


def _form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))


async def _delivered(emu: Emulator, receiver: Receiver) -> list[dict[str, str]]:
    await emu.portal.events.join()
    return [_form(body) for body, _ in receiver.requests]


async def test_task_add_event_is_a_php_style_form(hooked: Emulator, receiver: Receiver) -> None:
    await hooked.add_task()
    [form] = await _delivered(hooked, receiver)
    assert form == {
        "event": "ONTASKADD",
        "event_handler_id": "1",
        "data[FIELDS_BEFORE]": "undefined",
        "data[FIELDS_AFTER][ID]": "1",
        "data[IS_ACCESSIBLE_BEFORE]": "N",
        "data[IS_ACCESSIBLE_AFTER]": "undefined",
        "ts": str(int(hooked.clock.now)),
        "auth[domain]": "127.0.0.1:8090",
        "auth[client_endpoint]": "http://127.0.0.1:8090/rest/",
        "auth[server_endpoint]": "https://oauth.bitrix.info/rest/",
        "auth[member_id]": hooked.portal.config.portal_member_id,
        "auth[application_token]": "emulator-application-token",
    }
    _, headers = receiver.requests[0]
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert "x-signature" not in headers


async def test_update_delete_and_comment_events(hooked: Emulator, receiver: Receiver) -> None:
    await hooked.add_task()
    await hooked.ok("tasks.task.update", {"taskId": 1, "fields": {"TITLE": "y"}})
    await hooked.ok("tasks.task.start", {"taskId": 1})
    await hooked.ok("task.commentitem.add", {"TASKID": 1, "FIELDS": {"POST_MESSAGE": "hi"}})
    await hooked.ok("tasks.task.delete", {"taskId": 1})
    forms = await _delivered(hooked, receiver)
    assert [f["event"] for f in forms] == ADD_UPDATE_START_COMMENT_DELETE
    update, comment, delete = forms[1], forms[3], forms[4]
    assert update["data[FIELDS_BEFORE][ID]"] == update["data[FIELDS_AFTER][ID]"] == "1"
    assert update["data[IS_ACCESSIBLE_AFTER]"] == "undefined"
    assert comment["data[FIELDS_AFTER][ID]"] == "1"
    assert comment["data[FIELDS_AFTER][TASK_ID]"] == "1"
    assert comment["data[FIELDS_BEFORE]"] == "undefined"
    assert delete["data[FIELDS_BEFORE][ID]"] == "1"
    assert delete["data[FIELDS_AFTER]"] == "undefined"


async def test_person_api_fires_the_same_events(hooked: Emulator, receiver: Receiver) -> None:
    created = await hooked.client.post(
        "/_emulator/person/tasks",
        json={
            "title": "Order",
            "description": "- A | a | 1 | 10",
            "responsible_id": 5,
            "tags": ["instant_order"],
        },
    )
    assert created.status_code == 201
    task_id = created.json()["id"]
    base = f"/_emulator/person/tasks/{task_id}"
    assert (await hooked.client.patch(base, json={"tags": ["x"]})).status_code == 200
    assert (await hooked.client.post(f"{base}/status", json={"action": "start"})).status_code == 200
    assert (
        await hooked.client.post(f"{base}/comments", json={"author_id": 5, "text": "hi"})
    ).status_code == 201
    assert (await hooked.client.delete(base)).status_code == 200
    forms = await _delivered(hooked, receiver)
    assert [f["event"] for f in forms] == ADD_UPDATE_START_COMMENT_DELETE


async def test_sign_mode_adds_a_verifiable_hmac(
    make_hooked: EmulatorFactory, receiver: Receiver
) -> None:
    emu = await make_hooked(sign_secret="s3cret", application_token="tok")
    await emu.add_task()
    await emu.add_task()
    await emu.portal.events.join()
    request_ids = set()
    for body, headers in receiver.requests:
        timestamp = headers["x-request-timestamp"]
        assert timestamp == str(int(emu.clock.now))
        expected = hmac.new(b"s3cret", f"{timestamp}.".encode() + body, hashlib.sha256)
        assert headers["x-signature"] == "sha256=" + expected.hexdigest()
        request_ids.add(headers["x-request-id"])
        assert _form(body)["auth[application_token]"] == "tok"
    assert len(request_ids) == 2


async def test_a_tampered_body_would_not_verify(
    make_hooked: EmulatorFactory, receiver: Receiver
) -> None:
    emu = await make_hooked(sign_secret="s3cret")
    await emu.add_task()
    await emu.portal.events.join()
    body, headers = receiver.requests[0]
    forged = hmac.new(
        b"s3cret", headers["x-request-timestamp"].encode() + b"." + body + b"x", hashlib.sha256
    )
    assert headers["x-signature"] != "sha256=" + forged.hexdigest()


async def test_disabled_events_are_lost_but_changes_happen(
    hooked: Emulator, receiver: Receiver
) -> None:
    await hooked.client.post("/_emulator/settings", json={"events_enabled": False})
    await hooked.add_task()
    await hooked.portal.events.join()
    assert receiver.requests == []
    assert len(hooked.portal.store.tasks) == 1
    [logged] = (await hooked.client.get("/_emulator/events")).json()
    assert (logged["event"], logged["error"], logged["delivered"]) == (
        "ONTASKADD",
        "events_disabled",
        False,
    )


async def test_a_failed_delivery_is_not_retried(hooked: Emulator, receiver: Receiver) -> None:
    receiver.status = 500
    await hooked.add_task()
    await hooked.portal.events.join()
    await asyncio.sleep(0.05)
    assert len(receiver.requests) == 1
    [logged] = (await hooked.client.get("/_emulator/events")).json()
    assert (logged["status"], logged["delivered"]) == (500, False)


async def test_delivery_is_outside_the_rest_response(make_emulator: EmulatorFactory) -> None:
    release = asyncio.Event()
    seen: list[str] = []

    async def slow_hook(request: Request) -> Response:
        seen.append((await request.body()).decode())
        await release.wait()
        return Response("ok")

    handler = Starlette(routes=[Route("/hook", slow_hook, methods=["POST"])])
    emu = await make_emulator(
        handler_url="http://handler/hook", handler_transport=httpx.ASGITransport(app=handler)
    )
    response = await asyncio.wait_for(
        emu.call("tasks.task.add", {"fields": {"TITLE": "x", "RESPONSIBLE_ID": 1}}), 1.0
    )
    assert response.status_code == 200
    release.set()
    await emu.portal.events.join()
    assert len(seen) == 1


@pytest.fixture
def tcp_receiver() -> Iterator[tuple[str, list[tuple[bytes, dict[str, str]]]]]:
    """A real HTTP server on 127.0.0.1, in a thread."""
    received: list[tuple[bytes, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(
                (self.rfile.read(length), {k.lower(): v for k, v in self.headers.items()})
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/b24/events", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_events_reach_a_real_tcp_handler(
    make_emulator: EmulatorFactory,
    tcp_receiver: tuple[str, list[tuple[bytes, dict[str, str]]]],
) -> None:
    url, received = tcp_receiver
    emu = await make_emulator(handler_url=url, sign_secret="k")
    await emu.add_task()
    await emu.portal.events.join()
    [(body, headers)] = received
    assert _form(body)["data[FIELDS_AFTER][ID]"] == "1"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["x-signature"].startswith("sha256=")
    [logged] = (await emu.client.get("/_emulator/events")).json()
    assert (logged["status"], logged["delivered"], logged["url"]) == (200, True, url)
    assert logged["headers"]["x-request-id"] == headers["x-request-id"]


async def test_unreachable_handler_is_logged_once(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(handler_url=f"http://127.0.0.1:{free_port()}/hook")
    await emu.add_task()
    await emu.portal.events.join()
    [logged] = (await emu.client.get("/_emulator/events")).json()
    assert logged["status"] is None
    assert "ConnectError" in logged["error"]
