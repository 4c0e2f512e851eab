"""Throughput through the 2 requests/s quota, with and without batching.

    python bench/outbound_quota.py [--jobs 5000] [--baseline-s 20]

5,000 pending comment jobs (1,000 tasks x 5 comments, per-task order kept)
against the emulator on a port with Bitrix24's standard bucket (drain 2/s,
burst 50), our limiter at the defaults (2/s, burst 2, 120 per minute).
Reports operations/s delivered, requests on the wire in the busiest 1 s and
60 s windows, QUERY_LIMIT_EXCEEDED answers, jobs lost and duplicated.

Baseline, same run: the same kind of jobs with batching off
(``B24MW_B24_BATCH_MAX=1``, one call per request), measured over
``--baseline-s`` seconds (all 5,000 would take 40 minutes at 2/s).
Target: >= 95 ops/s, zero limit errors, nothing lost or duplicated.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx

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
    make_due,
    max_in_window,
    print_json,
    running_worker,
    status_counts,
)

COMMENTS_PER_TASK = 5


async def enqueue(db: Database, outbox: Outbox, task_ids: list[int], per_task: int) -> None:
    async with db.unit_of_work() as session:
        for task_id in task_ids:
            for n in range(per_task):
                outbox.b24_comment(session, task_id, f"bench {task_id}/{n}")


async def delivered_comments(control: httpx.AsyncClient, task_ids: set[int]) -> Counter[str]:
    tasks = (await control.get("/_emulator/tasks")).json()
    seen: Counter[str] = Counter()
    for task in tasks:
        if task["id"] in task_ids:
            for comment in task["comments"]:
                seen[comment["text"].split("\n")[0]] += 1
    return seen


async def phase(
    base: str, control: httpx.AsyncClient, *, jobs: int, batch_max: int, limit_s: float | None
) -> dict[str, Any]:
    task_ids = await create_tasks(control, jobs // COMMENTS_PER_TASK)
    async with fresh_database() as url:
        settings = bench_settings(url, base, b24_batch_max=batch_max)
        db = Database(settings)
        await enqueue(db, Outbox(settings), task_ids, COMMENTS_PER_TASK)
        await make_due(db)
        seq = await last_seq(control)
        started = time.perf_counter()
        async with running_worker(settings, db):
            while True:
                counts = await status_counts(db)
                open_jobs = counts.get("pending", 0) + counts.get("in_flight", 0)
                elapsed = time.perf_counter() - started
                if open_jobs == 0 or (limit_s is not None and elapsed >= limit_s):
                    break
                await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        counts = await status_counts(db)
        await db.dispose()
    calls = await calls_since(control, seq)
    times = [c["t"] for c in calls]
    ops = sum(len(c["commands"]) if c["commands"] is not None else 1 for c in calls)
    limited = sum(
        1
        for c in calls
        for err in [c["error"], *(cmd["error"] for cmd in c["commands"] or [])]
        if err == "QUERY_LIMIT_EXCEEDED"
    )
    seen = await delivered_comments(control, set(task_ids))
    done = counts.get("done", 0)
    return {
        "batch_max": batch_max,
        "jobs": jobs,
        "jobs_done": done,
        "jobs_dead": counts.get("dead", 0),
        "seconds": round(elapsed, 2),
        "ops_per_s": round(done / elapsed, 2),
        "requests": len(calls),
        "commands": ops,
        "requests_per_s": round(len(calls) / elapsed, 3),
        "max_requests_in_1s": max_in_window(times, 1.0),
        "max_requests_in_60s": max_in_window(times, 60.0),
        "query_limit_exceeded": limited,
        "duplicated": sum(n - 1 for n in seen.values() if n > 1),
        "lost": (jobs - sum(1 for n in seen.values() if n)) if limit_s is None else None,
    }


async def main(jobs: int, baseline_s: float) -> dict[str, Any]:
    with emulator_process(rps=2, burst=50) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as control:
            batched = await phase(base, control, jobs=jobs, batch_max=50, limit_s=None)
            # Let the portal's bucket drain between the runs.
            await asyncio.sleep(5)
            baseline = await phase(base, control, jobs=jobs, batch_max=1, limit_s=baseline_s)
    return {
        "benchmark": "outbound_quota",
        "quota": {"rps": 2, "rpm": 120, "burst": 2, "portal_bucket": {"drain": 2, "burst": 50}},
        "batched": batched,
        "baseline_unbatched": baseline,
        "speedup": round(batched["ops_per_s"] / max(baseline["ops_per_s"], 1e-9), 1),
        "targets_met": {
            "ops_per_s_ge_95": batched["ops_per_s"] >= 95,
            "no_limit_errors": batched["query_limit_exceeded"] == 0,
            "none_lost": batched["lost"] == 0,
            "none_duplicated": batched["duplicated"] == 0,
            "within_2_per_s": batched["max_requests_in_1s"] <= 2,
            "within_120_per_60s": batched["max_requests_in_60s"] <= 120,
        },
    }


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--baseline-s", type=float, default=20.0)
    args = parser.parse_args()
    print_json(asyncio.run(main(args.jobs, args.baseline_s)))
