"""End-to-end fixtures for everything that leaves the service (issue 4).

Use them from your own ``tests/<domain>/conftest.py``::

    from tests.support.outbound import *  # noqa: F403  (fixtures + helpers)

    @pytest.fixture
    def settings(outbound_settings):  # the app enqueues to the same targets
        return outbound_settings

and in a test::

    async def test_comment_reaches_bitrix24(client, worker, emulator):
        task = await emulator.create_task(title="Delivery 1")
        ...  # call the API, which enqueues outbox jobs
        await drain(worker)
        assert (await emulator.comments(task["id"]))[0]["text"].startswith("Order")

Fixtures (function scope; every one runs on SQLite and PostgreSQL via ``db``):

``emulator_config``
    ``EmulatorConfig`` for the in-process portal: no leaky bucket (``rps=0``),
    so tests are limited only by our own throttle.  Override it to set a
    ``handler_url``/``handler_transport`` (outgoing events) or limits.
``emulator`` -> ``EmulatorHandle``
    ``.app`` (ASGI), ``.portal``, ``.control`` (httpx client on the control
    API) and helpers: ``calls(method=None, since=0)``, ``fault(kind, **spec)``,
    ``clear_faults()``, ``configure(**settings)``, ``reset()``,
    ``create_task(**fields)``, ``task(id)``, ``comments(task_id)``.
``event_sink`` / ``onec_sink`` -> ``RecordingSink``
    Small ASGI apps behind ``http://sink.test`` and ``http://onec.test``.
    ``.requests`` holds every received ``Recorded(method, path, headers,
    body)`` (``.json()``); ``.respond(status, body=None, times=1,
    delay_s=0)`` queues answers (default 200 ``{"ok": true}``).
``outbound_settings``
    ``Settings`` on the test database with ``b24_url`` =
    ``http://b24.test/rest/1/<secret>/``, event sink ``http://sink.test/events``,
    1C at ``http://onec.test/1c``, signing secret ``SIGNING_SECRET``, retry
    delays and the late-apply wait of 50 ms, short timeouts and pauses, and a
    generous quota (100/s).
``outbound_http``
    The one ``httpx.AsyncClient`` with the three hosts mounted on ASGI apps.
``worker``
    ``b24mw.outbox.worker.Worker`` wired with ``outbound_settings`` and
    ``outbound_http``.

Helpers: ``drain(worker, timeout=10, settle=False)`` processes until nothing
is due (``settle=True``: until no job is pending or in flight at all, waiting
out the short retry delays); ``jobs(db)`` lists every outbox row;
``text_of(message)`` is a comment as people read it, without our marker line.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from b24mw.emulator.app import create_app
from b24mw.emulator.config import EmulatorConfig
from b24mw.kit.db import Database
from b24mw.models.ops import OutboxJob
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.config import make_settings

__all__ = [
    "B24_BASE",
    "B24_SECRET",
    "SIGNING_SECRET",
    "EmulatorHandle",
    "Recorded",
    "RecordingSink",
    "drain",
    "emulator",
    "emulator_config",
    "event_sink",
    "jobs",
    "onec_sink",
    "outbound_http",
    "outbound_settings",
    "outbound_settings_for",
    "text_of",
    "worker",
]

B24_SECRET = "emulator"
B24_BASE = f"http://b24.test/rest/1/{B24_SECRET}/"
SIGNING_SECRET = "outbound-signing-secret"


@dataclass
class EmulatorHandle:
    app: Any
    control: httpx.AsyncClient

    @property
    def portal(self) -> Any:
        return self.app.state.portal

    async def calls(self, method: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since}
        if method:
            params["method"] = method
        response = await self.control.get("/_emulator/calls", params=params)
        response.raise_for_status()
        calls: list[dict[str, Any]] = response.json()
        return calls

    async def fault(self, kind: str, **spec: Any) -> dict[str, Any]:
        response = await self.control.post("/_emulator/faults", json={"kind": kind, **spec})
        response.raise_for_status()
        created: dict[str, Any] = response.json()
        return created

    async def clear_faults(self) -> None:
        (await self.control.delete("/_emulator/faults")).raise_for_status()

    async def configure(self, **settings: Any) -> dict[str, Any]:
        response = await self.control.post("/_emulator/settings", json=settings)
        response.raise_for_status()
        current: dict[str, Any] = response.json()
        return current

    async def reset(self) -> None:
        (await self.control.post("/_emulator/reset")).raise_for_status()

    async def create_task(self, **fields: Any) -> dict[str, Any]:
        body = {"title": "Task", "responsible_id": 1, **fields}
        response = await self.control.post("/_emulator/person/tasks", json=body)
        response.raise_for_status()
        task: dict[str, Any] = response.json()
        return task

    async def task(self, task_id: int) -> dict[str, Any]:
        response = await self.control.get(f"/_emulator/tasks/{task_id}")
        response.raise_for_status()
        task: dict[str, Any] = response.json()
        return task

    async def comments(self, task_id: int) -> list[dict[str, Any]]:
        comments: list[dict[str, Any]] = (await self.task(task_id))["comments"]
        return comments


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RecordingSink:
    """An ASGI receiver that records requests and answers as told."""

    requests: list[Recorded] = field(default_factory=list)
    _answers: deque[tuple[int, Any, float]] = field(default_factory=deque)

    def respond(self, status: int, body: Any = None, *, times: int = 1, delay_s: float = 0) -> None:
        for _ in range(times):
            self._answers.append((status, body, delay_s))

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append(Recorded(scope["method"], scope["path"], headers, b"".join(chunks)))
        status, body, delay = self._answers.popleft() if self._answers else (200, None, 0.0)
        if delay:
            await asyncio.sleep(delay)
        payload = json.dumps(body if body is not None else {"ok": status < 400}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def outbound_settings_for(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "b24_url": B24_BASE,
        "event_sinks": "http://sink.test/events",
        "onec_url": "http://onec.test/1c",
        "event_signing_secret": SIGNING_SECRET,
        "outbox_retry_delays": "0.05,0.05,0.05,0.05",
        # The emulator applies a write at once unless told to be late.
        "outbox_late_apply_s": 0.05,
        "outbox_poll_s": 0.02,
        "outbox_lease_s": 30.0,
        "b24_rps": 100.0,
        "b24_burst": 100,
        "b24_rpm": 100_000,
        "b24_pause_s": 0.05,
        "b24_operating_block_s": 1.0,
        "b24_timeout_s": 2.0,
        "b24_connect_timeout_s": 1.0,
        "outbound_timeout_s": 2.0,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(rest_secret=B24_SECRET, rps=0)


@pytest.fixture
async def emulator(emulator_config: EmulatorConfig) -> AsyncIterator[EmulatorHandle]:
    app = create_app(emulator_config)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://b24.test") as control:
        yield EmulatorHandle(app=app, control=control)
    await app.state.portal.aclose()


@pytest.fixture
def event_sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def onec_sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def outbound_settings(db: Database) -> Settings:
    return outbound_settings_for(db.url)


@pytest.fixture
async def outbound_http(
    emulator: EmulatorHandle, event_sink: RecordingSink, onec_sink: RecordingSink
) -> AsyncIterator[httpx.AsyncClient]:
    mounts = {
        "http://b24.test": httpx.ASGITransport(app=emulator.app),
        "http://sink.test": httpx.ASGITransport(app=event_sink),
        "http://onec.test": httpx.ASGITransport(app=onec_sink),
    }
    async with httpx.AsyncClient(mounts=mounts) as client:
        yield client


@pytest.fixture
async def worker(
    outbound_settings: Settings, db: Database, outbound_http: httpx.AsyncClient
) -> AsyncIterator[Worker]:
    w = Worker(outbound_settings, db, http=outbound_http, worker_id="test-worker")
    yield w
    await w.aclose()


def text_of(message: str) -> str:
    """A comment as people read it: without the de-duplication marker line."""
    return re.sub(r"\n\[b24mw:[0-9a-f]+\]$", "", message)


async def jobs(db: Database) -> list[OutboxJob]:
    async with db.reader() as session:
        return list((await session.execute(select(OutboxJob).order_by(OutboxJob.id))).scalars())


async def _open_jobs(db: Database) -> int:
    async with db.reader() as session:
        stmt = select(func.count()).where(OutboxJob.status.in_(("pending", "in_flight")))
        return int((await session.execute(stmt)).scalar_one())


async def drain(worker: Worker, *, timeout: float = 10.0, settle: bool = False) -> int:  # noqa: ASYNC109
    """Run the worker until nothing is due; ``settle``: until nothing is open at all."""
    deadline = time.monotonic() + timeout
    total = await worker.drain(timeout)
    while settle and await _open_jobs(worker.db):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"outbox jobs still open after {timeout} s")
        await asyncio.sleep(min(0.02, remaining))
        total += await worker.drain(remaining)
    return total
