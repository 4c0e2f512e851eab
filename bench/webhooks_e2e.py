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

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.postgres import PostgresServer, free_port  # noqa: E402

JWT_SECRET = "bench-secret-that-is-long-enough-for-hs256!"
WEBHOOK_SECRET = "bench-webhook-secret"
COURIERS = {f"bench-{i}": 700 + i for i in range(10)}
TARGET_P95_S = 2.0
REST = "/rest/1/emulator"
PERSON = 42
ORDER = """Заказ с улицы #instant_order
- SKU-1 | Чехол | 2 | 490,00
- SKU-2 | Кабель USB-C | 1 | 390
customer: Покупатель {n}
phone: +7 912 000-00-{nn:02d}
"""


def token(role: str, sub: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "role": role, "iat": now, "exp": now + 3600}, JWT_SECRET)


def summary(values: list[float]) -> dict[str, Any]:
    ok = sorted(values)

    def pct(p: float) -> float | None:
        return round(ok[min(len(ok) - 1, int(p / 100 * len(ok)))], 3) if ok else None

    return {
        "n": len(ok),
        "p50_s": pct(50),
        "p95_s": pct(95),
        "p99_s": pct(99),
        "max_s": round(ok[-1], 3) if ok else None,
        "mean_s": round(statistics.fmean(ok), 3) if ok else None,
    }


async def prepare_database(url: str) -> None:
    from sqlalchemy import text

    from b24mw.kit.db import Database
    from b24mw.migrations import upgrade
    from b24mw.settings import Settings

    db = Database(Settings(_env_file=None, database_url=url, jwt_secret=JWT_SECRET))  # type: ignore[call-arg]
    try:
        await upgrade(db.engine)
        async with db.engine.begin() as conn:
            for cid, uid in COURIERS.items():
                await conn.execute(
                    text(
                        "INSERT INTO couriers (id, display_name, is_active, b24_user_id,"
                        " created_at, updated_at) VALUES (:id, :name, true, :uid, now(), now())"
                    ),
                    {"id": cid, "name": f"Bench {cid}", "uid": uid},
                )
    finally:
        await db.dispose()


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "b24mw", *args], env=env, stdout=out, stderr=subprocess.STDOUT
    )


async def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = await asyncio.to_thread(log.read_text)
                raise RuntimeError(f"{url}: process exited\n{tail[-2000:]}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not ready in 30 s")


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


def max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


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
    done = asyncio.Event()

    async with httpx.AsyncClient(base_url=emulator) as client:
        # Count only this phase's calls (not the baseline's).
        earlier = (await client.get("/_emulator/calls")).json()
    first_seq = max((c["seq"] for c in earlier), default=0)

    async def poll() -> None:
        since = first_seq
        async with httpx.AsyncClient(base_url=emulator) as client:
            while not done.is_set():
                calls = (await client.get("/_emulator/calls", params={"since": since})).json()
                for call in calls:
                    since = max(since, call["seq"])
                    wire_times.append(float(call["t"]))
                    for task_id in answers(call):
                        answered.setdefault(task_id, float(call["t"]))
                if created and len(answered) >= count:
                    done.set()
                await asyncio.sleep(0.02)

    async def create_all() -> None:
        async with httpx.AsyncClient(base_url=emulator, timeout=30) as client:
            start = time.perf_counter()
            for n in range(count):
                delay = start + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
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

    poller = asyncio.create_task(poll())
    started = time.perf_counter()
    await create_all()
    try:
        await asyncio.wait_for(done.wait(), timeout=60)
    except TimeoutError:
        done.set()
    await poller
    elapsed = time.perf_counter() - started
    latencies = [answered[t] - created[t] for t in created if t in answered]
    wire_times.sort()
    return {
        "tasks_created": len(created),
        "create_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "create_rate_per_s": rate,
        "tasks_answered": len([t for t in created if t in answered]),
        "elapsed_s": round(elapsed, 2),
        "task_to_answer": summary(latencies),
        "orders": await count_orders(api, len(created)),
        "wire_requests": len(wire_times),
        "wire_requests_per_task": round(len(wire_times) / max(1, len(created)), 2),
        "wire_max_per_1s": max_in_window(wire_times, 1.0),
        "wire_max_per_60s": max_in_window(wire_times, 60.0),
    }


async def main(count: int, rate: float) -> dict[str, Any]:
    server = PostgresServer.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        name = "bench_" + uuid.uuid4().hex[:8]
        server.createdb(name)
        url = server.url(name)
        await prepare_database(url)
        root = Path(server.root)
        emulator_port, api_port = free_port(), free_port()
        emulator = f"http://127.0.0.1:{emulator_port}"
        api = f"http://127.0.0.1:{api_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("B24MW_")}
        env.update(
            {
                "B24MW_DATABASE_URL": url,
                "B24MW_JWT_SECRET": JWT_SECRET,
                "B24MW_LOG_LEVEL": "WARNING",
                "B24MW_EVENT_SINKS": f"file://{root}/events.jsonl",
                "B24MW_B24_URL": f"{emulator}{REST}/",
                "B24MW_SIEM_SINK": f"file://{root}/siem.jsonl",
                "B24MW_WEBHOOK_SECRETS": WEBHOOK_SECRET,
            }
        )
        hook = f"{api}/api/v1/webhooks/bitrix24"
        emulator_args = [
            "emulator",
            "--port",
            str(emulator_port),
            "--handler-url",
            hook,
            "--sign-secret",
            WEBHOOK_SECRET,
        ]
        procs.append(spawn(emulator_args, env, root / "emulator.log"))
        await wait_http(f"{emulator}/_emulator/health", procs[-1], root / "emulator.log")
        procs.append(spawn(["serve", "--port", str(api_port)], env, root / "api.log"))
        await wait_http(f"{api}/health", procs[-1], root / "api.log")
        base = summary(await baseline(emulator))
        procs.append(spawn(["worker"], env, root / "worker.log"))
        await asyncio.sleep(1.0)  # the worker's first rounds (reconciliation's first scan)
        result = await run(api, emulator, count, rate)
        siem = root / "siem.jsonl"
        return {
            "benchmark": "webhooks_e2e",
            "engine": "postgresql",
            "quota": {"rps": 2, "rpm": 120, "emulator_bucket": "2/s, burst 50"},
            "baseline_direct_comment": base,
            **result,
            "siem_lines": len(siem.read_text().splitlines()) if siem.exists() else 0,
            "target_p95_s": TARGET_P95_S,
            "p95_target_met": bool(
                result["task_to_answer"]["p95_s"] is not None
                and result["task_to_answer"]["p95_s"] <= TARGET_P95_S
                and result["tasks_answered"] == count
            ),
            "one_order_per_task": result["orders"] == result["tasks_created"],
            "quota_respected": result["wire_max_per_1s"] <= 2 and result["wire_max_per_60s"] <= 120,
        }
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--rate", type=float, default=0.4, help="tasks per second")
    args = parser.parse_args()
    result = asyncio.run(main(max(1, args.count), min(max(args.rate, 0.05), 2.0)))
    print(json.dumps(result, indent=2))
