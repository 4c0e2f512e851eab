"""``POST /api/v1/ww/orders/{id}/status`` on PostgreSQL, against ``GET`` of the same order.

    python bench/orders_status.py [--duration 8]

Starts a throw-away PostgreSQL (as the tests do), migrates it, seeds ten
couriers and, for each, READY orders linked to a Bitrix24 task, then runs
``b24mw serve`` (one uvicorn process, pinned to core 0 when ``taskset``
exists) and, from this process (core 1), bounded phases with 10 concurrent
clients (one courier each):

- ``baseline_get_c10``: ``GET /api/v1/ww/orders/{id}`` of the order the client
  is about to move — auth, one read, the response;
- ``status_c10``: the courier walks each order READY → PICKED_UP → ON_ROUTE →
  DELIVERED → CASH_RETURNED → DONE, one request per move (each writes the
  status, a ``task_events`` row, the Bitrix24 comment and task-method jobs and
  the CloudEvent job, plus the idempotency record), each client sending as
  soon as it has its answer (closed loop: latency ≈ 10 / throughput);
- ``status_c10_paced``: the same moves offered at ``--paced-rps`` in total,
  below saturation: service time plus real queueing.

The load generator is a minimal keep-alive HTTP/1.1 client on asyncio streams.
Afterwards the database is checked against the 200s.  Prints one JSON document.
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
CLIENTS = 10
COURIERS = [f"bench-{i}" for i in range(CLIENTS)]
ORDERS_PER_COURIER = 900
MOVES = ["PICKED_UP", "ON_ROUTE", "DELIVERED", "CASH_RETURNED", "DONE"]
# Jobs each move writes with one event sink: comment + event, plus the task
# method on ON_ROUTE (start) and DONE (complete).
JOBS_PER_MOVE = {"PICKED_UP": 2, "ON_ROUTE": 3, "DELIVERED": 2, "CASH_RETURNED": 2, "DONE": 3}
TARGET_P95_MS = 25.0
SERVER_CORE, CLIENT_CORE = "0", "1"


def token(role: str, sub: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "role": role, "iat": now, "exp": now + 3600}, SECRET, "HS256")


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    moves: dict[str, int] = field(default_factory=dict)

    def summary(self, seconds: float) -> dict[str, Any]:
        ok = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(ok[min(len(ok) - 1, int(p / 100 * len(ok)))] * 1000, 2) if ok else None

        return {
            "concurrency": CLIENTS,
            "requests": len(ok),
            "duration_s": round(seconds, 2),
            "throughput_rps": round(len(ok) / seconds, 1),
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


class Courier:
    """One client: a courier walking their own orders through the moves."""

    def __init__(self, courier_id: str, order_ids: list[int]) -> None:
        self.auth = f"Authorization: Bearer {token('courier', courier_id)}\r\n"
        self.orders = order_ids
        self.position = 0  # index into orders × MOVES

    def current(self) -> tuple[int, str]:
        order, move = divmod(self.position, len(MOVES))
        return self.orders[order], MOVES[move]

    def get(self) -> bytes:
        order_id, _ = self.current()
        return (
            f"GET /api/v1/ww/orders/{order_id} HTTP/1.1\r\nHost: bench\r\n{self.auth}\r\n"
        ).encode()

    def move(self) -> bytes:
        order_id, status = self.current()
        body = json.dumps({"status": status}).encode()
        head = (
            f"POST /api/v1/ww/orders/{order_id}/status HTTP/1.1\r\nHost: bench\r\n{self.auth}"
            f"Idempotency-Key: {uuid.uuid4().hex}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


async def _client(
    port: int,
    stop_at: float,
    phase: Phase,
    courier: Courier,
    moving: bool,
    interval: float,
    offset: float,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    next_at = time.perf_counter() + offset
    try:
        while time.perf_counter() < stop_at:
            if interval:
                # Paced: one request per interval, so latency is service time
                # plus real queueing, not the closed loop's self-made backlog.
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            request = courier.move() if moving else courier.get()
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
            if moving and status == 200:
                _, move = courier.current()
                phase.moves[move] = phase.moves.get(move, 0) + 1
                courier.position += 1
    finally:
        writer.close()


async def run_phase(
    port: int, seconds: float, couriers: list[Courier], moving: bool, rate: float = 0.0
) -> Phase:
    """Closed loop (``rate`` 0: each client sends as soon as it has an answer)
    or paced at ``rate`` requests/s in total across the clients."""
    phase = Phase()
    stop_at = time.perf_counter() + seconds
    interval = len(couriers) / rate if rate else 0.0
    # Paced clients are spread over the interval instead of firing together.
    await asyncio.gather(
        *(
            _client(port, stop_at, phase, c, moving, interval, i * interval / len(couriers))
            for i, c in enumerate(couriers)
        )
    )
    return phase


def _pin(core: str) -> list[str]:
    return ["taskset", "-c", core] if shutil.which("taskset") else []


async def prepare_database(url: str) -> dict[str, list[int]]:
    from sqlalchemy import text

    from b24mw.kit.db import Database
    from b24mw.migrations import upgrade
    from b24mw.settings import Settings

    db = Database(Settings(_env_file=None, database_url=url, jwt_secret=SECRET))  # type: ignore[call-arg]
    orders: dict[str, list[int]] = {}
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
                rows = [
                    {"task": 100_000 * n + k, "courier": cid, "title": f"Order {n}-{k}"}
                    for k in range(ORDERS_PER_COURIER)
                ]
                await conn.execute(
                    text(
                        "INSERT INTO instant_orders (task_id_b24, courier_id, title,"
                        " customer_name, status, total_amount, currency_code, origin, version,"
                        " created_at, updated_at) VALUES (:task, :courier, :title, 'Bench',"
                        " 'READY', 990.00, 'RUB', 'api', 1, now(), now())"
                    ),
                    rows,
                )
                await conn.execute(
                    text(
                        "INSERT INTO instant_order_lines (order_id, line_no, sku, name, qty,"
                        " price) SELECT id, 1, 'SKU-1', 'Item', 1, 990.00 FROM instant_orders"
                        " WHERE courier_id = :courier"
                    ),
                    {"courier": cid},
                )
                ids = await conn.execute(
                    text("SELECT id FROM instant_orders WHERE courier_id = :c ORDER BY id"),
                    {"c": cid},
                )
                orders[cid] = [int(i) for i in ids.scalars()]
    finally:
        await db.dispose()
    return orders


async def count_rows(url: str) -> dict[str, int]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            out = {}
            for table in ("task_events", "outbox"):
                result = await conn.execute(text(f"SELECT count(*) FROM {table}"))
                out[table] = int(result.scalar_one())
            return out
    finally:
        await engine.dispose()


def start_api(url: str, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("B24MW_")}
    env.update(
        {
            "B24MW_DATABASE_URL": url,
            "B24MW_JWT_SECRET": SECRET,
            "B24MW_LOG_LEVEL": "WARNING",
            "B24MW_EVENT_SINKS": f"file://{tmp}/events.jsonl",
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
            writer.write(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n")
            await writer.drain()
            status = await _read_response(reader)
            writer.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("API did not start in 30 s")


async def main(duration: float, paced_rps: float) -> dict[str, Any]:
    server = PostgresServer.start()
    proc = None
    try:
        name = "bench_" + uuid.uuid4().hex[:8]
        server.createdb(name)
        url = server.url(name)
        orders = await prepare_database(url)
        couriers = [Courier(cid, ids) for cid, ids in orders.items()]
        port = free_port()
        proc = start_api(url, port, Path(server.root))
        await wait_ready(port, proc)
        await run_phase(port, 1.0, couriers, moving=True)  # warm-up: pool, caches
        before = await count_rows(url)

        started = time.perf_counter()
        base = await run_phase(port, duration, couriers, moving=False)
        base_summary = base.summary(time.perf_counter() - started)
        started = time.perf_counter()
        moved = await run_phase(port, duration, couriers, moving=True)
        moved_summary = moved.summary(time.perf_counter() - started)
        started = time.perf_counter()
        paced = await run_phase(port, duration, couriers, moving=True, rate=paced_rps)
        paced_summary = paced.summary(time.perf_counter() - started)
        paced_summary["offered_rps"] = paced_rps

        after = await count_rows(url)
        new = {k: after[k] - before[k] for k in after}
        moves = {m: moved.moves.get(m, 0) + paced.moves.get(m, 0) for m in MOVES}
        expected_jobs = sum(JOBS_PER_MOVE[m] * n for m, n in moves.items())
        ok = moved.statuses.get(200, 0) + paced.statuses.get(200, 0)
        return {
            "benchmark": "orders_status",
            "engine": "postgresql",
            "api_processes": 1,
            "pinned": bool(_pin(SERVER_CORE)),
            "baseline_get_c10": base_summary,
            "status_c10": moved_summary,
            "status_c10_paced": paced_summary,
            "status_vs_baseline_p95_x": (
                round(moved_summary["p95_ms"] / base_summary["p95_ms"], 1)
                if moved_summary["p95_ms"] and base_summary["p95_ms"]
                else None
            ),
            "target_p95_ms": TARGET_P95_MS,
            "p95_target_met": bool(
                moved_summary["p95_ms"] and moved_summary["p95_ms"] <= TARGET_P95_MS
            ),
            "paced_p95_target_met": bool(
                paced_summary["p95_ms"] and paced_summary["p95_ms"] <= TARGET_P95_MS
            ),
            "database_check": {
                "status_200": ok,
                "moves": moves,
                "new_rows": new,
                "one_status_event_per_200": new["task_events"] == ok,
                "jobs_match_moves": new["outbox"] == expected_jobs,
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per phase (≤ 15)")
    parser.add_argument(
        "--paced-rps", type=float, default=60.0, help="total rate of the paced status phase"
    )
    args = parser.parse_args()
    duration = min(max(args.duration, 1.0), 15.0)
    if _pin(CLIENT_CORE):
        os.sched_setaffinity(0, {int(CLIENT_CORE)})
    print(json.dumps(asyncio.run(main(duration, args.paced_rps)), indent=2))
