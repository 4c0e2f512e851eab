"""``POST /api/v1/returns`` on PostgreSQL through one API process, against a baseline.

    python bench/returns_create.py [--duration 8] [--log-level WARNING]

Starts a throw-away PostgreSQL (as the tests do), migrates it, registers ten
couriers, then runs ``b24mw serve`` (one uvicorn process, pinned to core 0 when
``taskset`` exists) and, from this process (core 1), three bounded phases:

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

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.postgres import PostgresServer, free_port  # noqa: E402

SECRET = "bench-secret-that-is-long-enough-for-hs256!"
COURIERS = [f"bench-{i}" for i in range(10)]
TARGET_P95_MS = 25.0
SERVER_CORE, CLIENT_CORE = "0", "1"


def token(role: str, sub: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "role": role, "iat": now, "exp": now + 3600}, SECRET, "HS256")


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


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0

    def summary(self, seconds: float, concurrency: int) -> dict[str, Any]:
        ok = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not ok:
                return None
            return round(ok[min(len(ok) - 1, int(p / 100 * len(ok)))] * 1000, 2)

        return {
            "concurrency": concurrency,
            "requests": len(self.latencies),
            "duration_s": round(seconds, 2),
            "throughput_rps": round(len(self.latencies) / seconds, 1),
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "max_ms": round(ok[-1] * 1000, 2) if ok else None,
            "mean_ms": round(statistics.fmean(ok) * 1000, 2) if ok else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "transport_errors": self.transport_errors,
        }


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for raw in lines[1:]:
        name, _, value = raw.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def _worker(
    port: int, stop_at: float, phase: Phase, make_request: Any, worker_no: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.perf_counter() < stop_at:
            request = make_request(worker_no, n)
            n += 1
            started = time.perf_counter()
            try:
                writer.write(request)
                await writer.drain()
                status = await asyncio.wait_for(_read_response(reader), timeout=30)
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                phase.transport_errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            phase.latencies.append(time.perf_counter() - started)
            phase.statuses[status] = phase.statuses.get(status, 0) + 1
    finally:
        writer.close()


async def run_phase(port: int, concurrency: int, seconds: float, make_request: Any) -> Phase:
    phase = Phase()
    stop_at = time.perf_counter() + seconds
    await asyncio.gather(
        *(_worker(port, stop_at, phase, make_request, i) for i in range(concurrency))
    )
    return phase


def health_request(_: int, __: int) -> bytes:
    return b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n"


def make_create_request() -> Any:
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


def _pin(core: str) -> list[str]:
    return ["taskset", "-c", core] if shutil.which("taskset") and os.cpu_count() else []


async def prepare_database(url: str) -> None:
    from sqlalchemy import text

    from b24mw.kit.db import Database
    from b24mw.migrations import upgrade
    from b24mw.settings import Settings

    db = Database(Settings(_env_file=None, database_url=url, jwt_secret=SECRET))  # type: ignore[call-arg]
    try:
        await upgrade(db.engine)
        async with db.engine.begin() as conn:
            for n, cid in enumerate(COURIERS, start=1):
                await conn.execute(
                    text(
                        "INSERT INTO couriers (id, display_name, is_active, b24_user_id,"
                        " created_at, updated_at) VALUES (:id, :name, true, :uid, now(), now())"
                    ),
                    {"id": cid, "name": f"Bench {cid}", "uid": 900 + n},
                )
    finally:
        await db.dispose()


async def count_rows(url: str) -> dict[str, int]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            out = {}
            for table in ("returns", "return_lines", "task_events", "integration_log", "outbox"):
                result = await conn.execute(text(f"SELECT count(*) FROM {table}"))
                out[table] = result.scalar_one()
            return out
    finally:
        await engine.dispose()


def start_api(url: str, port: int, log_level: str, tmp: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("B24MW_")}
    env.update(
        {
            "B24MW_DATABASE_URL": url,
            "B24MW_JWT_SECRET": SECRET,
            "B24MW_LOG_LEVEL": log_level,
            "B24MW_EVENT_SINKS": f"file://{tmp}/events.jsonl",
            "B24MW_ONEC_URL": "http://127.0.0.1:9/1c",
        }
    )
    cmd = [*_pin(SERVER_CORE), sys.executable, "-m", "b24mw", "serve", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(health_request(0, 0))
            await writer.drain()
            status = await _read_response(reader)
            writer.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("API did not start in 30 s")


async def main(duration: float, log_level: str) -> dict[str, Any]:
    server = PostgresServer.start()
    proc = None
    try:
        name = "bench_" + uuid.uuid4().hex[:8]
        server.createdb(name)
        url = server.url(name)
        await prepare_database(url)
        port = free_port()
        proc = start_api(url, port, log_level, Path(server.root))
        await wait_ready(port, proc)
        create = make_create_request()
        await run_phase(port, 10, 1.0, create)  # warm-up: connections, caches
        before = await count_rows(url)

        started = time.perf_counter()
        base = await run_phase(port, 10, duration, health_request)
        base_s = time.perf_counter() - started
        started = time.perf_counter()
        c10 = await run_phase(port, 10, duration, create)
        c10_s = time.perf_counter() - started
        started = time.perf_counter()
        c200 = await run_phase(port, 200, duration, create)
        c200_s = time.perf_counter() - started

        after = await count_rows(url)
        created = c10.statuses.get(201, 0) + c200.statuses.get(201, 0)
        new = {k: after[k] - before[k] for k in after}
        c10_summary = c10.summary(c10_s, 10)
        c200_summary = c200.summary(c200_s, 200)
        errors_c200 = sum(v for k, v in c200.statuses.items() if k != 201) + c200.transport_errors
        return {
            "benchmark": "returns_create",
            "engine": "postgresql",
            "api_processes": 1,
            "log_level": log_level,
            "pinned": bool(_pin(SERVER_CORE)),
            "baseline_health": base.summary(base_s, 10),
            "create_c10": c10_summary,
            "create_c200": c200_summary,
            "create_vs_baseline_p95_x": (
                round(c10_summary["p95_ms"] / base.summary(base_s, 10)["p95_ms"], 1)
                if c10_summary["p95_ms"] and base.latencies
                else None
            ),
            "target_p95_ms": TARGET_P95_MS,
            "p95_target_met": bool(
                c10_summary["p95_ms"] and c10_summary["p95_ms"] <= TARGET_P95_MS
            ),
            "c200_errors": errors_c200,
            "database_check": {
                "created_201": created,
                "new_rows": new,
                "one_return_per_201": new["returns"] == created,
                # per return: 1 event (one sink) + 1 1C hand-off + 1 task comment
                "three_jobs_per_return": new["outbox"] == 3 * created,
            },
        }
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per phase (≤ 15)")
    parser.add_argument("--log-level", default="WARNING", choices=["INFO", "WARNING"])
    args = parser.parse_args()
    duration = min(max(args.duration, 1.0), 15.0)
    if _pin(CLIENT_CORE):
        os.sched_setaffinity(0, {int(CLIENT_CORE)})
    result = asyncio.run(main(duration, args.log_level))
    print(json.dumps(result, indent=2))
