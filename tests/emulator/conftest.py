"""In-process emulator fixtures: an ASGI app on a fake clock, driven through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from b24mw.emulator.app import create_app
from b24mw.emulator.config import EmulatorConfig
from b24mw.emulator.portal import Portal

REST = "/rest/1/emulator"
# Every REST answer's ``time`` block, including the operating-time fields.
ENVELOPE_TIME_KEYS = {
    "start",
    "finish",
    "duration",
    "processing",
    "date_start",
    "date_finish",
    "operating",
    "operating_reset_at",
}


class FakeClock:
    """Unix time that moves only when a test says so."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Emulator:
    client: httpx.AsyncClient
    portal: Portal
    clock: FakeClock

    async def call(self, method: str, payload: Any = None, **kwargs: Any) -> httpx.Response:
        if payload is not None:
            kwargs["json"] = payload
        return await self.client.post(f"{REST}/{method}", **kwargs)

    async def ok(self, method: str, payload: Any = None, **kwargs: Any) -> Any:
        response = await self.call(method, payload, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    async def add_task(self, **fields: Any) -> dict[str, Any]:
        body = {"TITLE": "task", "RESPONSIBLE_ID": 7, **fields}
        data = await self.ok("tasks.task.add", {"fields": body})
        task: dict[str, Any] = data["result"]["task"]
        return task


@dataclass
class Receiver:
    """An event handler: records every request, answers with `status`."""

    status: int = 200
    requests: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.requests.append((await request.body(), dict(request.headers.items())))
            return Response("ok", status_code=self.status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


EmulatorFactory = Callable[..., Awaitable[Emulator]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def make_emulator(clock: FakeClock) -> AsyncIterator[EmulatorFactory]:
    """Limits are off unless a test turns them on: the fake clock never drains the bucket."""
    created: list[Emulator] = []

    async def factory(**overrides: Any) -> Emulator:
        settings: dict[str, Any] = {"clock": clock, "rps": 0.0, "operating_limit_s": 0.0}
        settings.update(overrides)
        app = create_app(EmulatorConfig(**settings))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal")
        emulator = Emulator(client, app.state.portal, clock)
        created.append(emulator)
        return emulator

    yield factory
    for emulator in created:
        await emulator.client.aclose()
        await emulator.portal.aclose()


@pytest.fixture
async def emu(make_emulator: EmulatorFactory) -> Emulator:
    return await make_emulator()


@pytest.fixture
def make_hooked(make_emulator: EmulatorFactory, receiver: Receiver) -> EmulatorFactory:
    """Emulators whose events go to the in-process receiver, with further settings."""

    async def factory(**overrides: Any) -> Emulator:
        return await make_emulator(
            handler_url="http://handler/hook",
            handler_transport=httpx.ASGITransport(app=receiver.app()),
            **overrides,
        )

    return factory


@pytest.fixture
async def hooked(make_hooked: EmulatorFactory) -> Emulator:
    """An emulator whose events go to an in-process receiver."""
    return await make_hooked()
