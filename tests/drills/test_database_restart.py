"""Drill: PostgreSQL stopped and started again under load.

Couriers keep creating returns and moving orders through one API process
while a worker delivers; the database goes away for a couple of seconds in
the middle.  Clients see 503 (never a 500), retry with the same key, and every
request ends with exactly one effect; the API and the worker recover by
themselves (the same processes, never restarted) and the backlog drains.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.migrations import upgrade
from b24mw.models.enums import OrderStatus as S
from tests.drills.ledger import account_for_everything, quiet, read_events
from tests.drills.scale import SCALE
from tests.drills.stack import control, settled, stack
from tests.drills.workload import COURIER, Workload, return_body
from tests.support.auth import auth
from tests.support.config import make_settings
from tests.support.postgres import PostgresServer

CLIENTS = 6
RETURNS_EACH = 5
MOVES = ("PICKED_UP", "ON_ROUTE", "DELIVERED", "DONE")


async def _until_done(
    api: httpx.AsyncClient, url: str, body: dict[str, Any], seen: Counter[int]
) -> dict[str, Any]:
    """One request, retried with its key until it has an answer (as a client should)."""
    headers = auth("courier", COURIER, key=uuid.uuid4().hex)
    deadline = time.monotonic() + 60 * SCALE
    while True:
        try:
            response = await api.post(url, headers=headers, json=body)
        except httpx.TransportError:
            seen[0] += 1
        else:
            seen[response.status_code] += 1
            if response.status_code != 503:
                assert response.status_code in (200, 201), response.text
                answer: dict[str, Any] = response.json()
                return answer
            assert response.json()["code"] == "dependency.database_unavailable"
        assert time.monotonic() < deadline, f"{url} never answered: {seen}"
        await asyncio.sleep(0.1)


async def test_the_database_going_away_under_load_loses_and_doubles_nothing(
    own_pg_server: PostgresServer, tmp_path: Path
) -> None:
    url = own_pg_server.url("own")
    db = Database(make_settings(url))
    await upgrade(db.engine)
    with stack(tmp_path, url) as drill:
        drill.emulator("--rps", "0")
        api_proc = drill.api()
        worker = drill.worker()
        async with (
            control(drill) as portal,
            httpx.AsyncClient(base_url=api_proc.url or "", timeout=10) as api,
        ):
            work = Workload(api, portal)
            await work.courier()
            tasks = [await work.person_task() for _ in range(CLIENTS)]
            orders = [await work.order_walked(task, to=S.READY) for task in tasks]
            seen: Counter[int] = Counter()
            created: list[str] = []

            back = asyncio.Event()

            async def courier(n: int) -> None:
                # At least RETURNS_EACH, and on until the database is back: on
                # a quiet machine the first few are done before it goes away.
                i = 0
                while i < RETURNS_EACH or not back.is_set():
                    made = await _until_done(api, "/api/v1/returns", return_body(tasks[n]), seen)
                    created.append(made["id"])
                    if i < len(MOVES):
                        status = {"status": MOVES[i]}
                        await _until_done(
                            api, f"/api/v1/ww/orders/{orders[n]}/status", status, seen
                        )
                    i += 1
                    await asyncio.sleep(0.1)

            async def outage() -> None:
                await asyncio.sleep(0.5)
                await asyncio.to_thread(own_pg_server.finish_shutdown)
                await asyncio.sleep(2 * SCALE)
                await asyncio.to_thread(own_pg_server.start_again)
                back.set()

            await asyncio.gather(outage(), *(courier(n) for n in range(CLIENTS)))
            assert seen[503] > 0, f"the load never met the outage: {seen}"
            assert set(seen) <= {0, 200, 201, 503}, seen  # never a 500

            await settled(lambda: quiet(db), within_s=60 * SCALE, what="the backlog to drain")
            for order in orders:
                read = await api.get(f"/api/v1/ww/orders/{order}", headers=auth("admin", "a"))
                assert read.json()["status"] == "DONE"
            assert api_proc.alive() and worker.alive()  # recovered by themselves
            ledger = await account_for_everything(db, portal, events=read_events(drill.events_file))
    await db.dispose()
    assert len(created) >= CLIENTS * RETURNS_EACH
    assert len(set(created)) == len(created) == ledger.returns  # each request, one return


@pytest.fixture(autouse=True)
def _postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("the SQLite file cannot be restarted")
