"""Latency under quota: one job enqueued -> the Bitrix24 call on the wire.

    python bench/outbound_latency.py [--samples 40]

A running worker (default poll interval) and the emulator on a port with the
standard bucket; one comment job is committed, and the latency is the time
until the emulator starts handling its call.  Samples are spaced 0.6 s apart,
so the 2 requests/s quota never makes a job wait.  Baseline, same run: the
same call made directly with the client (no outbox, no limiter), i.e. the
transport floor.  Target: p95 <= 300 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx

from b24mw.bitrix24.client import Bitrix24Client, Target
from b24mw.kit.db import Database
from b24mw.outbox import Outbox
from common import (  # bench/ is on sys.path when run as a script
    arg_parser,
    bench_settings,
    calls_since,
    create_tasks,
    emulator_process,
    fresh_database,
    last_seq,
    print_json,
    running_worker,
)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def arrival(control: httpx.AsyncClient, seq: int) -> dict[str, Any]:
    while True:
        calls = await calls_since(control, seq)
        if calls:
            return calls[0]
        await asyncio.sleep(0.005)


async def main(samples: int) -> dict[str, Any]:
    with emulator_process(rps=2, burst=50) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as control:
            task_ids = await create_tasks(control, samples)
            async with fresh_database() as url:
                settings = bench_settings(url, base)
                db = Database(settings)
                outbox = Outbox(settings)
                through_outbox: list[float] = []
                async with running_worker(settings, db):
                    await asyncio.sleep(1.0)
                    for task_id in task_ids:
                        seq = await last_seq(control)
                        async with db.unit_of_work() as session:
                            outbox.b24_comment(session, task_id, "latency probe")
                        committed = time.time()
                        call = await arrival(control, seq)
                        through_outbox.append(call["t"] - committed)
                        await asyncio.sleep(0.6)
                await db.dispose()

            target = Target.from_settings(settings)
            assert target is not None
            direct: list[float] = []
            async with httpx.AsyncClient() as http:
                client = Bitrix24Client(settings, http, target)
                for task_id in task_ids:
                    seq = await last_seq(control)
                    started = time.time()
                    await client.call(
                        "task.commentitem.add",
                        {"TASKID": task_id, "FIELDS": {"POST_MESSAGE": "direct probe"}},
                    )
                    direct.append((await arrival(control, seq))["t"] - started)
                    await asyncio.sleep(0.6)
    outbox_stats = summary(through_outbox)
    return {
        "benchmark": "outbound_latency",
        "samples": samples,
        "poll_interval_ms": settings.outbox_poll_s * 1000,
        "enqueue_to_bitrix24": outbox_stats,
        "baseline_direct_call": summary(direct),
        "target_p95_le_300ms": outbox_stats["p95_ms"] <= 300,
    }


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    print_json(asyncio.run(main(args.samples)))
