"""Drill: the portal down for a while (every call a proxy's 502 page), then back.

A backlog of every kind of effect waits while Bitrix24 is away; each job keeps
its place on the retry schedule.  When the portal is back the backlog drains,
never faster than the quota on the wire, and the only dead letter is the one
job that deserved it (a comment on a task that does not exist): the outage
itself kills nothing.
"""

from __future__ import annotations

import math

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.drills.ledger import account_for_everything
from tests.drills.scale import SCALE
from tests.drills.workload import Workload
from tests.support.jobs import comments
from tests.support.outbound import *  # noqa: F403  (shared outbound fixtures)
from tests.support.outbound import (
    EmulatorHandle,
    RecordingSink,
    drain,
    jobs,
    outbound_settings_for,
)
from tests.support.timing import max_in_window

QUOTA = {"b24_rps": 4.0, "b24_burst": 4, "b24_rpm": 120}
OUTAGE_S = 2.5 * SCALE


# Overrides the shared fixture of the same name (star-imported above) for this module.
@pytest.fixture  # type: ignore[no-redef]
def outbound_settings(db: Database) -> Settings:
    """The worker's (and the API's) settings: a quota that paces the drain."""
    return outbound_settings_for(
        db.url,
        **QUOTA,
        b24_batch_max=5,  # more requests than jobs/50, so the quota is what paces the drain
        # 0.3 → 0.6 → 1.2 → 2.4 → 4.8 s (times the scale): it outlasts the outage.
        outbox_retry_delays=",".join(str(d * SCALE) for d in (0.3, 0.6, 1.2, 2.4, 4.8)),
    )


@pytest.fixture
def settings(outbound_settings: Settings) -> Settings:
    return outbound_settings


async def test_backlog_drains_within_the_quota_after_the_portal_comes_back(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    worker: Worker,
    emulator: EmulatorHandle,
    event_sink: RecordingSink,
) -> None:
    work = Workload(client, emulator.control)
    await work.courier()
    await work.mixed(rounds=3 * SCALE)
    [poison] = await comments(db, settings, (999_999, "a task nobody has"))
    await emulator.fault("html_502", duration_s=OUTAGE_S)

    await drain(worker, settle=True, timeout=60 * SCALE)

    calls = await emulator.calls()
    failed = [c for c in calls if c["status"] == 502]
    assert len(failed) >= 2, "the outage was not met"
    assert max_in_window([c["t"] for c in calls], 1.0) <= max(4, math.ceil(QUOTA["b24_rps"]))
    assert max_in_window([c["t"] for c in calls], 60.0) <= QUOTA["b24_rpm"]
    dead = [j for j in await jobs(db) if j.status == "dead"]
    assert [j.id for j in dead] == [poison] and "ERROR_CORE" in (dead[0].last_error or "")
    retried = [j for j in await jobs(db) if j.status == "done" and j.attempts > 1]
    assert retried, "no job waited out the outage"
    await account_for_everything(
        db, emulator.control, events=[r.json() for r in event_sink.requests], dead_allowed=1
    )
