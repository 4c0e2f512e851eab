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

import argparse
import asyncio
import json
import os
import re
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

SECRET = "bench-secret-that-is-long-enough-for-hs256!"
COURIERS = {f"bench-{i}": 700 + i for i in range(10)}
TARGET_P95_S = 2.0
REST = "/rest/1/emulator"
TITLE = re.compile(r"(BENCH-\d+)")


def token(role: str, sub: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "role": role, "iat": now, "exp": now + 3600}, SECRET, "HS256")


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

    db = Database(Settings(_env_file=None, database_url=url, jwt_secret=SECRET))  # type: ignore[call-arg]
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


def max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


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
    done = asyncio.Event()

    async def poll() -> None:
        since = 0
        async with httpx.AsyncClient(base_url=emulator) as client:
            while not done.is_set():
                calls = (await client.get("/_emulator/calls", params={"since": since})).json()
                now = time.perf_counter()
                for call in calls:
                    since = max(since, call["seq"])
                    if call["method"] in ("batch", "tasks.task.add", "task.commentitem.add"):
                        wire_times.append(float(call["t"]))
                    for title in created_titles(call):
                        match = TITLE.search(title)
                        if match and match.group(1) not in seen:
                            seen[match.group(1)] = now
                if len(seen) >= count:
                    done.set()
                await asyncio.sleep(0.02)

    async def post_all() -> None:
        async with httpx.AsyncClient(base_url=api, timeout=30) as client:
            start = time.perf_counter()
            for n in range(count):
                delay = start + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                response = await client.post(
                    "/api/v1/deliveries",
                    json=body(n),
                    headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
                )
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 201:
                    posted[f"BENCH-{n:06d}"] = time.perf_counter()

    poller = asyncio.create_task(poll())
    started = time.perf_counter()
    await post_all()
    try:
        await asyncio.wait_for(done.wait(), timeout=120)
    except TimeoutError:
        done.set()
    await poller
    elapsed = time.perf_counter() - started

    stored = await count_linked(api, headers, count)
    latencies = [seen[k] - posted[k] for k in posted if k in seen]
    wire_times.sort()
    return {
        "posted": len(posted),
        "post_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "post_rate_per_s": rate,
        "tasks_seen": len(seen),
        "elapsed_s": round(elapsed, 2),
        "post_to_task": summary(latencies),
        "deliveries_with_task_id": stored,
        "wire_requests": len(wire_times),
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
                "B24MW_JWT_SECRET": SECRET,
                "B24MW_LOG_LEVEL": "WARNING",
                "B24MW_EVENT_SINKS": f"file://{root}/events.jsonl",
                "B24MW_B24_URL": f"{emulator}{REST}/",
                "B24MW_SIEM_SINK": f"file://{root}/siem.jsonl",
            }
        )
        procs.append(spawn(["emulator", "--port", str(emulator_port)], env, root / "emulator.log"))
        await wait_http(f"{emulator}/_emulator/health", procs[-1], root / "emulator.log")
        procs.append(spawn(["serve", "--port", str(api_port)], env, root / "api.log"))
        await wait_http(f"{api}/health", procs[-1], root / "api.log")
        base = summary(await baseline(emulator))
        procs.append(spawn(["worker"], env, root / "worker.log"))
        result = await run(api, emulator, count, rate)
        return {
            "benchmark": "deliveries_latency",
            "engine": "postgresql",
            "quota": {"rps": 2, "rpm": 120, "emulator_bucket": "2/s, burst 50"},
            "baseline_direct_add": base,
            **result,
            "target_p95_s": TARGET_P95_S,
            "p95_target_met": bool(
                result["post_to_task"]["p95_s"] is not None
                and result["post_to_task"]["p95_s"] <= TARGET_P95_S
                and result["tasks_seen"] == count
            ),
            "quota_respected": result["wire_max_per_1s"] <= 2 and result["wire_max_per_60s"] <= 120,
        }
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="deliveries POSTed per second")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.count, args.rate)), indent=2))
