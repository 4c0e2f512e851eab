"""Adaptive throttle: the portal's drain rate is cut from 2/s to 1/s mid-run.

    python bench/outbound_adaptive.py [--before-s 10] [--after-s 40]

The emulator runs on a port with a small bucket (burst 10) so an overrun shows
within seconds; a worker drains 6,000 read jobs (``user.current``, 50 to a
batch).  After ``--before-s`` the emulator's drain is set to 1/s.  Reported:
503 ``QUERY_LIMIT_EXCEEDED`` answers per 10 s after the cut, our shared rate
over time, jobs dead, and the request rate once converged.

Baseline, same run: the same timeline with adaptation off (the rate floor
equals the quota and no pause), i.e. a fixed-rate client such as the
existing Python SDKs.  Retry delays are shortened to 1-2-4-8 s in both runs
so a job that keeps hitting 503 would reach the DLQ within the run.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from sqlalchemy import select

from b24mw.kit.db import Database
from b24mw.models.ops import RateLimitState
from b24mw.outbox import Outbox
from common import (  # bench/ is on sys.path when run as a script
    arg_parser,
    bench_settings,
    calls_since,
    emulator_process,
    fresh_database,
    last_seq,
    make_due,
    print_json,
    running_worker,
    status_counts,
)

JOBS = 6000


async def shared_rate(db: Database) -> float | None:
    async with db.reader() as session:
        row = (await session.execute(select(RateLimitState))).scalar_one_or_none()
        return round(row.rate_per_s, 3) if row is not None else None


async def run(
    base: str, control: httpx.AsyncClient, *, adaptive: bool, before_s: float, after_s: float
) -> dict[str, Any]:
    await control.post("/_emulator/reset")
    await control.post("/_emulator/settings", json={"rps": 2, "burst": 10})
    async with fresh_database() as url:
        overrides: dict[str, Any] = {"outbox_retry_delays": "1,2,4,8"}
        if not adaptive:
            overrides.update(b24_rate_floor=2.0, b24_pause_s=0.0)
        settings = bench_settings(url, base, **overrides)
        db = Database(settings)
        outbox = Outbox(settings)
        async with db.unit_of_work() as session:
            for _ in range(JOBS):
                outbox.b24_call(session, "user.current", {})
        await make_due(db)
        seq = await last_seq(control)
        rates: list[tuple[float, float | None]] = []
        started = time.monotonic()
        cut_at = None
        async with running_worker(settings, db):
            while (elapsed := time.monotonic() - started) < before_s + after_s:
                if cut_at is None and elapsed >= before_s:
                    await control.post("/_emulator/settings", json={"rps": 1})
                    cut_at = time.time()
                rates.append((round(elapsed, 1), await shared_rate(db)))
                await asyncio.sleep(1.0)
        counts = await status_counts(db)
        await db.dispose()
    calls = await calls_since(control, seq)
    assert cut_at is not None
    limited = [c["t"] - cut_at for c in calls if c["error"] == "QUERY_LIMIT_EXCEEDED"]
    buckets = [sum(1 for t in limited if lo <= t < lo + 10) for lo in range(0, int(after_s), 10)]
    tail = [c for c in calls if c["t"] - cut_at >= after_s - 15]
    tail_span = 15.0
    return {
        "adaptive": adaptive,
        "requests": len(calls),
        "query_limit_before_cut": sum(1 for c in calls if c["error"] and c["t"] < cut_at),
        "query_limit_after_cut_per_10s": buckets,
        "query_limit_after_cut_total": len(limited),
        "requests_per_s_last_15s": round(len(tail) / tail_span, 3),
        "ok_requests_per_s_last_15s": round(
            sum(1 for c in tail if c["status"] == 200) / tail_span, 3
        ),
        # "t_s:rate" every ~4 s, compact enough to read in the JSON.
        "shared_rate_over_time": [f"{t:g}:{r}" for t, r in rates[:: max(1, len(rates) // 12)]],
        "final_rate": rates[-1][1] if rates else None,
        "jobs_done": counts.get("done", 0),
        "jobs_dead": counts.get("dead", 0),
    }


async def main(before_s: float, after_s: float) -> dict[str, Any]:
    with emulator_process(rps=2, burst=10) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as control:
            adaptive = await run(base, control, adaptive=True, before_s=before_s, after_s=after_s)
            baseline = await run(base, control, adaptive=False, before_s=before_s, after_s=after_s)
    return {
        "benchmark": "outbound_adaptive",
        "portal": {"burst": 10, "drain_before": 2, "drain_after": 1, "cut_at_s": before_s},
        "adaptive": adaptive,
        "baseline_fixed_rate": baseline,
        "targets_met": {
            "no_job_dead": adaptive["jobs_dead"] == 0,
            "fewer_503_than_fixed_rate": adaptive["query_limit_after_cut_total"]
            < baseline["query_limit_after_cut_total"],
        },
    }


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--before-s", type=float, default=10.0)
    parser.add_argument("--after-s", type=float, default=40.0)
    args = parser.parse_args()
    print_json(asyncio.run(main(args.before_s, args.after_s)))
