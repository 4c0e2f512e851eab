"""``POST /api/v1/returns`` on PostgreSQL through one API process, against a baseline.

    python bench/returns_create.py [--duration 8] [--log-level WARNING]

Starts a throw-away PostgreSQL (as the tests do), migrates it, registers ten
couriers, then runs ``b24mw serve`` (one uvicorn process, pinned to core 0 when
``taskset`` exists; PostgreSQL shares core 1 with this process) and, from
this process, three bounded phases:

- ``baseline_health``: ``GET /health`` with 10 concurrent clients — what the
  framework, the middlewares and the load generator cost with no work at all;
- ``create_c10``: ``POST /api/v1/returns`` (2 lines, linked task, Idempotency-Key
  per request) with 10 concurrent clients — throughput and p50/p95/p99;
- ``create_c200``: the same with 200 concurrent clients — must finish with no
  error (the pool queues requests; nothing blocks the event loop).

The load generator is a minimal keep-alive HTTP/1.1 client on asyncio streams,
light enough not to be what is measured.  Afterwards the database is checked:
one return and its outbox jobs per 201.  Prints one JSON document.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from common import (  # bench/ is on sys.path when run as a script
    SERVER_CORE,
    Build,
    arg_parser,
    can_pin,
    count_rows,
    health_request,
    pin_self,
    pinned_api,
    prepare_database,
    print_json,
    run_phase,
    throwaway_postgres,
    token,
)

COURIERS = [f"bench-{i}" for i in range(10)]
TARGET_P95_MS = 25.0
TABLES = ("returns", "return_lines", "task_events", "integration_log", "outbox")


def return_body(courier_id: str, n: int) -> bytes:
    line = {
        "sku": f"SKU-{n % 50}",
        "qty": 1 + n % 3,
        "quality": "defect",
        "reason_code": "broken_screen",
        "photos": [1000 + n],
        "imei": "490154203237518",
    }
    body = {
        "source": "widget",
        "courier_id": courier_id,
        "task_id_b24": 10_000 + n % 500,
        "comment": "bench",
        "items": [line, {**line, "sku": "SKU-X", "imei": None, "photos": []}],
    }
    return json.dumps(body).encode()


def make_create_request() -> Build:
    tokens = {c: token("courier", c) for c in COURIERS}

    def build(worker_no: int, n: int) -> bytes:
        courier = COURIERS[worker_no % len(COURIERS)]
        body = return_body(courier, worker_no * 100_000 + n)
        head = (
            "POST /api/v1/returns HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Bearer {tokens[courier]}\r\n"
            f"Idempotency-Key: {uuid.uuid4().hex}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    return build


async def main(duration: float, log_level: str) -> dict[str, Any]:
    with throwaway_postgres() as (url, tmp):
        await prepare_database(url, {cid: 900 + n for n, cid in enumerate(COURIERS, start=1)})
        api = pinned_api(url, tmp, log_level, onec_url="http://127.0.0.1:9/1c")
        with api as port:
            create = make_create_request()
            await run_phase(port, 10, 1.0, create)  # warm-up: connections, caches
            before = await count_rows(url, TABLES)
            base = await run_phase(port, 10, duration, health_request)
            c10 = await run_phase(port, 10, duration, create)
            c200 = await run_phase(port, 200, duration, create)
            after = await count_rows(url, TABLES)
    created = c10.statuses.get(201, 0) + c200.statuses.get(201, 0)
    new = {k: after[k] - before[k] for k in after}
    base_summary = base.summary()
    c10_summary = c10.summary()
    errors_c200 = sum(v for k, v in c200.statuses.items() if k != 201) + c200.transport_errors
    return {
        "benchmark": "returns_create",
        "engine": "postgresql",
        "api_processes": 1,
        "log_level": log_level,
        "pinned": can_pin(SERVER_CORE),
        "baseline_health": base_summary,
        "create_c10": c10_summary,
        "create_c200": c200.summary(),
        "create_vs_baseline_p95_x": (
            round(c10_summary["p95_ms"] / base_summary["p95_ms"], 1)
            if c10_summary["p95_ms"] and base.latencies
            else None
        ),
        "target_p95_ms": TARGET_P95_MS,
        "p95_target_met": bool(c10_summary["p95_ms"] and c10_summary["p95_ms"] <= TARGET_P95_MS),
        "c200_errors": errors_c200,
        "database_check": {
            "created_201": created,
            "new_rows": new,
            "one_return_per_201": new["returns"] == created,
            # per return: 1 event (one sink) + 1 1C hand-off + 1 task comment
            "three_jobs_per_return": new["outbox"] == 3 * created,
        },
    }


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per phase (≤ 15)")
    parser.add_argument("--log-level", default="WARNING", choices=["INFO", "WARNING"])
    args = parser.parse_args()
    duration = min(max(args.duration, 1.0), 15.0)
    pin_self()
    print_json(asyncio.run(main(duration, args.log_level)))
