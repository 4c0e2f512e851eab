"""1C POSTs 200 deliveries → each courier task present in the Bitrix24 emulator.

    python bench/deliveries_latency.py [--count 200] [--rate 20]

Starts a throw-away PostgreSQL (as the tests do), migrates it and seeds ten
couriers with Bitrix24 users, then three real processes: the emulator (its
leaky bucket on: 2 requests/s, burst 50), ``b24mw serve`` and ``b24mw worker``
with the default shared quota (2 requests/s, 120/min).  This process:

- ``baseline_direct_add``: ``tasks.task.add`` sent straight to the emulator,
  one at a time within its quota — what Bitrix24 itself costs;
- ``deliveries``: POSTs ``--count`` deliveries as 1C at ``--rate`` per second
  and polls the emulator's call log every 20 ms; a delivery's latency is from
  its 201 to the poll that first sees its task created (an upper bound).

Afterwards: every delivery carries its task id, and the wire never carried
more than the quota (max requests in any rolling second and minute).  Prints
one JSON document.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import httpx

from common import (  # bench/ is on sys.path when run as a script
    QUOTA,
    REST,
    arg_parser,
    count_statuses,
    deployment,
    latency_stats,
    p95_within,
    paced,
    print_json,
    produce_and_follow,
    quota_respected,
    token,
    wire_peaks,
)

COURIERS = {f"bench-{i}": 700 + i for i in range(10)}
TARGET_P95_S = 2.0
TITLE = re.compile(r"(BENCH-\d+)")


def summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), **latency_stats(values, unit="s")}


def body(n: int) -> dict[str, Any]:
    courier = list(COURIERS)[n % len(COURIERS)]
    return {
        "external_id_1c": f"BENCH-{n:06d}",
        "customer_name": f"Customer {n}",
        "address": f"Moscow, street {n}",
        "client_phone": "+79120000000",
        "cod_amount": "1490.00",
        "delivery_price": "0",
        "courier_id": courier,
        "items": [{"sku": "SKU-1", "name": "Item", "qty": 1, "price": "1490.00"}],
    }


async def baseline(emulator: str, n: int = 10) -> list[float]:
    """Direct ``tasks.task.add`` round trips, paced under the emulator's 2/s."""
    out = []
    async with httpx.AsyncClient(base_url=emulator) as client:
        for i in range(n):
            fields = {"TITLE": f"baseline {i}", "RESPONSIBLE_ID": 700}
            started = time.perf_counter()
            response = await client.post(f"{REST}/tasks.task.add", json={"fields": fields})
            out.append(time.perf_counter() - started)
            response.raise_for_status()
            await asyncio.sleep(0.5)
    return out


def created_titles(call: dict[str, Any]) -> list[str]:
    if call.get("status") != 200:
        return []
    if call["method"] == "tasks.task.add":
        return [str(call["args"]["fields"]["TITLE"])]
    if call["method"] == "batch":
        return [
            str(c["args"].get("fields", {}).get("TITLE", ""))
            for c in call.get("commands") or []
            if c.get("method") == "tasks.task.add" and not c.get("error")
        ]
    return []


async def count_linked(api: str, headers: dict[str, str], count: int) -> int:
    """Deliveries carrying their task id, once the worker's hooks have committed."""
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient(base_url=api) as client:
        while True:
            stored, page = 0, 1
            while True:
                response = await client.get(
                    "/api/v1/deliveries", params={"page": page, "page_size": 100}, headers=headers
                )
                data = response.json()
                stored += sum(1 for d in data["items"] if d["task_id_b24"] is not None)
                if not data["has_next"]:
                    break
                page += 1
            if stored >= count or time.monotonic() > deadline:
                return stored
            await asyncio.sleep(0.2)


async def run(api: str, emulator: str, count: int, rate: float) -> dict[str, Any]:
    posted: dict[str, float] = {}
    seen: dict[str, float] = {}
    statuses: dict[int, int] = {}
    wire_times: list[float] = []
    headers = {"Authorization": f"Bearer {token('1c', 'bench-1c')}"}

    def handle(calls: list[dict[str, Any]]) -> bool:
        now = time.perf_counter()
        for call in calls:
            if call["method"] in ("batch", "tasks.task.add", "task.commentitem.add"):
                wire_times.append(float(call["t"]))
            for title in created_titles(call):
                match = TITLE.search(title)
                if match and match.group(1) not in seen:
                    seen[match.group(1)] = now
        return len(seen) >= count

    async def post_all() -> None:
        async with httpx.AsyncClient(base_url=api, timeout=30) as client:
            async for n in paced(count, rate):
                response = await client.post(
                    "/api/v1/deliveries",
                    json=body(n),
                    headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
                )
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 201:
                    posted[f"BENCH-{n:06d}"] = time.perf_counter()

    elapsed = await produce_and_follow(emulator, 0, handle, post_all, settle_s=120)

    stored = await count_linked(api, headers, count)
    latencies = [seen[k] - posted[k] for k in posted if k in seen]
    return {
        "posted": len(posted),
        "post_statuses": count_statuses(statuses),
        "post_rate_per_s": rate,
        "tasks_seen": len(seen),
        "elapsed_s": round(elapsed, 2),
        "post_to_task": summary(latencies),
        "deliveries_with_task_id": stored,
        "wire_requests": len(wire_times),
        **wire_peaks(wire_times),
    }


async def main(count: int, rate: float) -> dict[str, Any]:
    async with deployment(COURIERS) as deployed:
        emulator, api = deployed.emulator, deployed.api
        base = summary(await baseline(emulator))
        deployed.start_worker()
        result = await run(api, emulator, count, rate)
    return {
        "benchmark": "deliveries_latency",
        "engine": "postgresql",
        "quota": QUOTA,
        "baseline_direct_add": base,
        **result,
        "target_p95_s": TARGET_P95_S,
        "p95_target_met": p95_within(result["post_to_task"], TARGET_P95_S)
        and result["tasks_seen"] == count,
        "quota_respected": quota_respected(result),
    }


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="deliveries POSTed per second")
    args = parser.parse_args()
    print_json(asyncio.run(main(args.count, args.rate)))
