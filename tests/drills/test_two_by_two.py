"""Drill: two API and two worker processes on one PostgreSQL, one Bitrix24 quota.

People work through both APIs at once (1C's deliveries and a courier's moves
through one, returns and the portal's events through the other) while two
workers deliver.  At the emulator — Bitrix24's side of the wire — no second
ever carries more than the quota and no minute more than its share, and the
workers use the quota rather than waste it.  Raising the quota (the workers
restarted with it) lets the backlog drain; then everything is accounted for.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus as S
from tests.drills.ledger import account_for_everything, quiet, read_events
from tests.drills.stack import HOOK_SECRET, control, settled, stack
from tests.drills.workload import Workload
from tests.support.outbound import jobs
from tests.support.timing import max_in_window

TIGHT = {
    "b24_rps": "2",
    "b24_burst": "2",
    "b24_rpm": "12",  # so the rolling minute is used up within the drill
    "b24_batch_max": "1",  # one job a request: the quota is what paces the work
    "b24_window_margin_s": "0.1",
}
OBSERVE_S = 14.0


async def _calls(portal: httpx.AsyncClient, since: int = 0) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = (
        await portal.get("/_emulator/calls", params={"since": since})
    ).json()
    return calls


async def test_two_apis_and_two_workers_share_one_quota(
    backend: str, db: Database, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("several processes share one database only on PostgreSQL")
    with stack(tmp_path, db.url, **TIGHT) as drill:
        drill.emulator()  # Bitrix24's own bucket on: 2/s, burst 50
        api_a, api_b = drill.api("api-a"), drill.api("api-b")
        async with (
            control(drill) as portal,
            httpx.AsyncClient(base_url=api_a.url or "", timeout=10) as a,
            httpx.AsyncClient(base_url=api_b.url or "", timeout=10) as b,
        ):
            hook = {"handler_url": f"{api_a.url}/api/v1/webhooks/bitrix24"}
            await portal.post("/_emulator/settings", json=hook | {"sign_secret": HOOK_SECRET})
            work_a, work_b = Workload(a, portal), Workload(b, portal)
            await work_a.courier()
            first = [drill.worker("w1"), drill.worker("w2")]
            started = time.monotonic()
            await asyncio.gather(
                *(work_b.delivery() for _ in range(4)),
                work_b.order_walked(await work_b.person_task(), to=S.DONE),
                work_a.return_decided(await work_a.person_task(), "rejected"),
                work_a.return_decided(await work_a.person_task(), "accepted"),
                *(work_a.person_task(tagged=True) for _ in range(3)),
            )
            await asyncio.sleep(max(0.0, OBSERVE_S - (time.monotonic() - started)))
            for proc in first:
                assert drill.stop(proc) == 0  # SIGTERM: they give back what they hold
            tight = await _calls(portal)
            times = [c["t"] for c in tight]
            timeline = [(round(c["t"] - times[0], 3), c["method"]) for c in tight]
            assert max_in_window(times, 1.0) <= 2, timeline
            assert max_in_window(times, 60.0) <= 12
            assert len(tight) == 12, "the quota was left unused"
            assert {row.leased_by for row in await jobs(db) if row.status == "done"} == {"w1", "w2"}

            # The operator raises the quota: the backlog drains, still within it.
            second = {"b24_rpm": "120"}
            drill.worker("w3", **second)
            drill.worker("w4", **second)
            # Jobs the tight workers gave back wait for the slot they were
            # promised (up to a minute): the drain takes about that long.
            await settled(lambda: quiet(db), within_s=90, what="the backlog to drain")
            calls = await _calls(portal)
            assert max_in_window([c["t"] for c in calls], 1.0) <= 2
            assert all(c["status"] == 200 for c in calls), "Bitrix24 refused a request"
            await account_for_everything(db, portal, events=read_events(drill.events_file))
