"""Drill: webhooks duplicated, replayed, changed in the same second, signed by a skewed clock.

The emulator posts its events through a proxy that sends every one twice (a
retrying proxy), and everything it delivered is sent again once processed
(a replay, with and without a fresh ``X-Request-Id``).  A person changes one
task twice inside one second (byte-identical events).  The signing proxy's
clock then drifts: 299 s either way is accepted, 301 s is refused (401, on
the SIEM stream) and that task's order arrives through reconciliation.
Every tagged task ends with exactly one order, answered once; replays cost
reads, never effects.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from b24mw.emulator.app import create_app as create_emulator
from b24mw.emulator.config import EmulatorConfig
from b24mw.kit.db import Database
from b24mw.outbox.worker import Worker
from b24mw.webhooks.reconcile import reconcile
from tests.drills.ledger import account_for_everything, read_events
from tests.support.clock import Clock
from tests.support.portal import COURIER_USER, EMULATOR, Portal, add_courier
from tests.support.webhooks import APP_TOKEN, SECRET, URL, open_hook

ORDER = "- SKU-1 | Чехол | 2 | 490,00\ncustomer: Иван Петров"


class Skewed:
    """The signing proxy's clock: ours plus an offset that can drift."""

    def __init__(self, base: Clock) -> None:
        self.base = base
        self.offset = 0.0

    def __call__(self) -> float:
        return self.base() + self.offset


@dataclass
class Storm(httpx.AsyncBaseTransport):
    """A proxy in front of the API that delivers every event twice, and keeps
    what it delivered for a replay."""

    inner: httpx.AsyncBaseTransport
    delivered: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = dict(request.headers)
        self.delivered.append((headers, body))
        first = await self._send(request.method, str(request.url), headers, body)
        await self._send(request.method, str(request.url), headers, body)
        return first

    async def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> httpx.Response:
        response = await self.inner.handle_async_request(
            httpx.Request(method, url, headers=headers, content=body)
        )
        await response.aread()
        self.answers[_answer(response)] += 1
        return response


def _answer(response: httpx.Response) -> str:
    if response.status_code == 200:
        return str(json.loads(response.content)["status"])
    return str(response.status_code)


@pytest.fixture
async def storm(db: Database, tmp_path: Path) -> AsyncIterator[tuple[Portal, Storm, Skewed]]:
    ours = Clock(float(int(time.time())) + 0.1)
    proxy = Skewed(ours)
    hook = await open_hook(
        db,
        tmp_path,
        clock=ours,
        b24_url=f"{EMULATOR}/rest/1/emulator/",
        b24_rps=200.0,
        b24_rpm=100_000,
        b24_burst=200,
        outbox_poll_s=0.01,
    )
    transport = Storm(httpx.ASGITransport(app=hook.app))
    config = EmulatorConfig(
        handler_url=f"http://testserver{URL}",
        handler_transport=transport,
        sign_secret=SECRET,
        application_token=APP_TOKEN,
        rps=0,  # the bucket would run on the manual clock
        burst=1000.0,
    )
    config.clock = proxy
    emulator = create_emulator(config)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator), base_url=EMULATOR)
    worker = Worker(hook.settings, db, http=http)
    await add_courier(db, "c-17", COURIER_USER, "Пётр Курьеров")
    portal = Portal(hook, emulator, http, worker, db, ours)
    try:
        yield portal, transport, proxy
    finally:
        await portal.close()


async def test_a_storm_of_webhooks_makes_each_order_once(
    storm: tuple[Portal, Storm, Skewed], db: Database, tmp_path: Path
) -> None:
    portal, proxy, skewed = storm
    tasks = [await portal.create_task(ORDER) for _ in range(3)]
    await portal.settle()
    assert proxy.answers["duplicate"] >= 3  # every second delivery

    # The same task changed twice within one second, read in between: the two
    # events are byte-identical, and the second change still counts.
    portal.clock.now = float(int(portal.clock.now) + 1) + 0.1  # type: ignore[union-attr]
    for action in ("start", "complete"):
        await portal.http.post(
            f"/_emulator/person/tasks/{tasks[0]}/status",
            json={"action": action, "actor_id": COURIER_USER},
        )
        await portal.settle()
        portal.clock.advance(0.4)  # type: ignore[union-attr]
    start, complete = [e for e in portal.portal.events.log if e["event"] == "ONTASKUPDATE"][-2:]
    assert start["form"] == complete["form"]

    # Everything delivered so far, once more: as it was, and under fresh ids.
    for headers, body in list(proxy.delivered):
        again = await portal.hook.client.post(URL, headers=headers, content=body)
        assert again.json() == {"status": "duplicate"}, again.text
        fresh = headers | {"x-request-id": str(uuid.uuid4())}
        attack = await portal.hook.client.post(URL, headers=fresh, content=body)
        assert attack.status_code in (200, 401), attack.text
    await portal.settle()

    # The proxy's clock drifts: within 300 s accepted, past it refused.
    for offset in (299.0, -299.0):
        skewed.offset = offset
        tasks.append(await portal.create_task(ORDER))
        await portal.settle()
    rejected_before = len(portal.hook.siem_lines())
    skewed.offset = 301.0
    late = await portal.create_task(ORDER)
    await portal.settle()
    stale = [line for line in portal.hook.siem_lines()[rejected_before:]]
    assert stale and {line["reason"] for line in stale} == {"stale_timestamp"}
    assert late not in {o["task_id_b24"] for o in await portal.orders()}
    # Bitrix24 never re-sends: reconciliation finds the task the proxy lost.
    skewed.offset = 0.0
    portal.clock.advance(5)  # type: ignore[union-attr]
    assert await reconcile(portal.worker.context) >= 1
    await portal.settle()
    tasks.append(late)

    ledger = await account_for_everything(
        db, portal.http, events=read_events(tmp_path / "events.jsonl")
    )
    assert ledger.orders == len(tasks) == 6
    history = await portal.history(
        next(o["id"] for o in await portal.orders() if o["task_id_b24"] == tasks[0])
    )
    b24_statuses = [
        e["payload"].get("b24_status_name")
        for e in history
        if e["payload"].get("source") == "bitrix24"
    ]
    assert b24_statuses[-2:] == ["in_progress", "completed"]
