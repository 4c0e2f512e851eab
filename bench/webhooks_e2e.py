"""Tagged task created in Bitrix24 → order → answering comment back in Bitrix24.

    python bench/webhooks_e2e.py [--count 24] [--rate 0.4]

Starts a throw-away PostgreSQL (as the tests do), migrates it and seeds ten
couriers with Bitrix24 users, then three real processes: the emulator (its
leaky bucket on: 2 requests/s, burst 50; events signed as the HMAC proxy and
POSTed to the API), ``b24mw serve`` and ``b24mw worker`` with the default
shared quota (2 requests/s, 120/min).  This process:

- ``baseline_direct_comment``: ``task.commentitem.add`` sent straight to the
  emulator, paced within its quota — what Bitrix24 itself costs;
- ``tasks``: a person creates ``--count`` tasks tagged ``instant_order`` with
  an order in the description at ``--rate`` per second (under the quota: each
  task costs about three requests — the batched read, the answer, and the
  read of our own answer's event); the emulator's call log is polled every
  20 ms, and a task's latency runs from the person's 201 to the start of the
  REST call that posted its answer (both clocks are this machine's).

Afterwards: one order per task, and the wire never carried more than the
quota.  Prints one JSON document.  Bar: p95 ≤ 2 s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from common import (  # bench/ is on sys.path when run as a script
    QUOTA,
    REST,
    arg_parser,
    count_statuses,
    deployment,
    last_seq,
    latency_stats,
    p95_within,
    paced,
    print_json,
    produce_and_follow,
    quota_respected,
    token,
    wire_peaks,
)

WEBHOOK_SECRET = "bench-webhook-secret"
COURIERS = {f"bench-{i}": 700 + i for i in range(10)}
TARGET_P95_S = 2.0
PERSON = 42
ORDER = """Заказ с улицы #instant_order
- SKU-1 | Чехол | 2 | 490,00
- SKU-2 | Кабель USB-C | 1 | 390
customer: Покупатель {n}
phone: +7 912 000-00-{nn:02d}
"""


def summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), **latency_stats(values, unit="s")}


async def baseline(emulator: str, n: int = 10) -> list[float]:
    """Direct ``task.commentitem.add`` round trips, paced under the emulator's 2/s."""
    out = []
    async with httpx.AsyncClient(base_url=emulator) as client:
        task = await client.post(
            f"{REST}/tasks.task.add", json={"fields": {"TITLE": "baseline", "RESPONSIBLE_ID": 700}}
        )
        task_id = int(task.json()["result"]["task"]["id"])
        for i in range(n):
            await asyncio.sleep(0.6)
            body = {"TASKID": task_id, "FIELDS": {"POST_MESSAGE": f"baseline {i}"}}
            started = time.perf_counter()
            response = await client.post(f"{REST}/task.commentitem.add", json=body)
            out.append(time.perf_counter() - started)
            response.raise_for_status()
    return out


def answers(call: dict[str, Any]) -> list[int]:
    """Task ids whose answer comment this call posted."""
    if call.get("status") != 200:
        return []
    commands = [call] if call["method"] == "task.commentitem.add" else []
    if call["method"] == "batch":
        commands = [
            c
            for c in call.get("commands") or []
            if c.get("method") == "task.commentitem.add" and not c.get("error")
        ]
    found = []
    for command in commands:
        args = command.get("args") or {}
        text = str((args.get("FIELDS") or {}).get("POST_MESSAGE", ""))
        if "[b24mw:" in text and "Заказ" in text and "создан" in text:
            try:
                found.append(int(args.get("TASKID")))
            except (TypeError, ValueError):
                pass
    return found


async def count_orders(api: str, expected: int) -> int:
    headers = {"Authorization": f"Bearer {token('admin', 'bench-admin')}"}
    async with httpx.AsyncClient(base_url=api) as client:
        response = await client.get("/api/v1/ww/orders", params={"page_size": 1}, headers=headers)
        return int(response.json()["total_items"])


async def run(api: str, emulator: str, count: int, rate: float) -> dict[str, Any]:
    created: dict[int, float] = {}
    answered: dict[int, float] = {}
    wire_times: list[float] = []
    statuses: dict[int, int] = {}

    async with httpx.AsyncClient(base_url=emulator) as client:
        # Count only this phase's calls (not the baseline's).
        first_seq = await last_seq(client)

    def handle(calls: list[dict[str, Any]]) -> bool:
        for call in calls:
            wire_times.append(float(call["t"]))
            for task_id in answers(call):
                answered.setdefault(task_id, float(call["t"]))
        return bool(created) and len(answered) >= count

    async def create_all() -> None:
        async with httpx.AsyncClient(base_url=emulator, timeout=30) as client:
            async for n in paced(count, rate):
                uid = list(COURIERS.values())[n % len(COURIERS)]
                body = {
                    "title": f"Заказ {n}",
                    "description": ORDER.format(n=n, nn=n % 100),
                    "responsible_id": uid,
                    "tags": ["instant_order"],
                    "created_by": PERSON,
                }
                response = await client.post("/_emulator/person/tasks", json=body)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 201:
                    created[int(response.json()["id"])] = time.time()

    elapsed = await produce_and_follow(emulator, first_seq, handle, create_all, settle_s=60)
    latencies = [answered[t] - created[t] for t in created if t in answered]
    return {
        "tasks_created": len(created),
        "create_statuses": count_statuses(statuses),
        "create_rate_per_s": rate,
        "tasks_answered": len([t for t in created if t in answered]),
        "elapsed_s": round(elapsed, 2),
        "task_to_answer": summary(latencies),
        "orders": await count_orders(api, len(created)),
        "wire_requests": len(wire_times),
        "wire_requests_per_task": round(len(wire_times) / max(1, len(created)), 2),
        **wire_peaks(wire_times),
    }


async def main(count: int, rate: float) -> dict[str, Any]:
    async with deployment(COURIERS, WEBHOOK_SECRET) as deployed:
        emulator, api = deployed.emulator, deployed.api
        base = summary(await baseline(emulator))
        deployed.start_worker()
        await asyncio.sleep(1.0)  # the worker's first rounds (reconciliation's first scan)
        result = await run(api, emulator, count, rate)
        siem = deployed.root / "siem.jsonl"
        siem_lines = len(siem.read_text().splitlines()) if siem.exists() else 0
    return {
        "benchmark": "webhooks_e2e",
        "engine": "postgresql",
        "quota": QUOTA,
        "baseline_direct_comment": base,
        **result,
        "siem_lines": siem_lines,
        "target_p95_s": TARGET_P95_S,
        "p95_target_met": p95_within(result["task_to_answer"], TARGET_P95_S)
        and result["tasks_answered"] == count,
        "one_order_per_task": result["orders"] == result["tasks_created"],
        "quota_respected": quota_respected(result),
    }


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--rate", type=float, default=0.4, help="tasks per second")
    args = parser.parse_args()
    print_json(asyncio.run(main(max(1, args.count), min(max(args.rate, 0.05), 2.0))))
