"""``b24mw archive run`` on PostgreSQL: 2,000,000 task_events rows, against a raw COPY.

    python bench/archive.py [--rows 2000000] [--days 20] [--rate 40] [--parallel-days 1]

Starts a throw-away PostgreSQL (as the tests do, pinned to core 1), migrates
it and seeds, with ``COPY``, ``--rows`` task_events rows spread over
``--days`` UTC days more than 100 days ago, plus 200 orders with recent
history for the read load.  Then:

- ``baseline_copy``: ``COPY (SELECT * FROM task_events WHERE ts < boundary)
  TO STDOUT`` of the same rows, read and thrown away — the floor for getting
  the rows out of PostgreSQL at all;
- ``api_baseline``: ``GET /api/v1/ww/orders/{id}/events`` paced at ``--rate``
  requests/s from 4 clients against ``b24mw serve`` (pinned to core 0), alone;
- ``archive``: ``b24mw archive run --table task_events`` as its own process
  (local ``file://`` archive, scheduled by the OS on either core unless
  ``--pin-archive``), timed from spawn to exit, its peak RSS read from
  ``/proc`` while the same read load runs (``api_during_archive``);
- ``restore``: ``b24mw archive restore`` of one day, then that day read back
  with ``COPY ... ORDER BY id`` and compared byte for byte with the same
  ``COPY`` taken before archiving.

Prints one JSON document.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import (  # bench/ is on sys.path when run as a script
    CLIENT_CORE,
    SERVER_CORE,
    Phase,
    api_env,
    arg_parser,
    b24mw,
    can_pin,
    pin_self,
    pinned,
    pinned_api,
    prepare_database,
    print_json,
    run_phase,
    throwaway_postgres,
    token,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

TARGET_ROWS_PER_S = 50_000
ORDERS = 200
CLIENTS = 4
BATCH_ROWS = 20_000


def raw_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def seed_orders(conn: AsyncConnection) -> None:
    """Orders with a recent history of ten events each: what the read load reads."""
    from sqlalchemy import text

    await conn.execute(
        text(
            "INSERT INTO instant_orders (task_id_b24, title, customer_name, status,"
            " total_amount, currency_code, origin, version, created_at, updated_at)"
            " SELECT 500000 + g, 'Order ' || g, 'Bench', 'READY', 990.00, 'RUB', 'api', 1,"
            " now(), now() FROM generate_series(1, :n) AS g"
        ),
        {"n": ORDERS},
    )
    await conn.execute(
        text(
            "INSERT INTO task_events (task_id_b24, instant_order_id, ts, type, status,"
            " actor_id, payload_json, request_id) SELECT o.task_id_b24, o.id,"
            " now() - (k || ' minutes')::interval, 'status', 'READY', 'bench',"
            " json_build_object('event', 'status_changed', 'to', 'READY', 'k', k),"
            " 'req-' || o.id || '-' || k FROM instant_orders o, generate_series(1, 10) AS k"
        )
    )


def old_rows(count: int, days: int, first_day: datetime) -> Any:
    """Task history as COPY records, oldest first (ids follow time, as in life)."""
    per_day = count // days
    step = 86_400 / per_day
    kinds = ("status", "photo", "geo", "comment")
    for n in range(count):
        day, k = divmod(n, per_day)
        ts = first_day + timedelta(days=min(day, days - 1), seconds=k * step)
        payload = (
            {"event": "status_changed", "from": "PICKED_UP", "to": "ON_ROUTE", "note": "в пути"}
            if n % 2
            else {"lat": 55.7512 + n % 97 / 1e4, "lon": 37.6184, "accuracy_m": 12}
        )
        yield (
            700_000 + n % 50_000,
            ts,
            kinds[n % 4],
            "ON_ROUTE",
            f"courier-{n % 40}",
            json.dumps(payload),  # as SQLAlchemy's JSON type writes it
            "f3" * 32 if n % 4 == 1 else None,
            f"req-{n:09d}",
        )


async def seed_history(url: str, count: int, days: int, first_day: datetime) -> float:
    import asyncpg

    conn = await asyncpg.connect(raw_dsn(url))
    started = time.perf_counter()
    try:
        columns = [
            "task_id_b24",
            "ts",
            "type",
            "status",
            "actor_id",
            "payload_json",
            "photo_checksum",
            "request_id",
        ]
        rows = old_rows(count, days, first_day)
        while chunk := [row for _, row in zip(range(200_000), rows, strict=False)]:
            await conn.copy_records_to_table("task_events", records=chunk, columns=columns)
        await conn.execute("VACUUM ANALYZE task_events")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def copy_out(url: str, query: str) -> tuple[float, int, str]:
    """Seconds, bytes and SHA-256 of ``COPY (query) TO STDOUT``."""
    import asyncpg

    conn = await asyncpg.connect(raw_dsn(url))
    digest = hashlib.sha256()
    size = 0

    async def sink(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)
        digest.update(chunk)

    try:
        started = time.perf_counter()
        await conn.copy_from_query(query, output=sink)
        return time.perf_counter() - started, size, digest.hexdigest()
    finally:
        await conn.close()


async def scalar(url: str, query: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(raw_dsn(url))
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def reads(auth: str, order_ids: list[int]) -> Any:
    def build(client_no: int, n: int) -> bytes:
        order = order_ids[(client_no * 7919 + n) % len(order_ids)]
        return (
            f"GET /api/v1/ww/orders/{order}/events HTTP/1.1\r\nHost: bench\r\n{auth}\r\n"
        ).encode()

    return build


def peak_rss_kb(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


async def archive_under_load(
    env: dict[str, str], port: int, build: Any, rate: float, pin_archive: bool
) -> tuple[dict[str, Any], Phase]:
    """Run the archive process while the read load runs; its figures and the load's."""
    command = b24mw("archive", "run", "--table", "task_events")
    if pin_archive:
        command = pinned(command, CLIENT_CORE)
    started = time.perf_counter()
    proc = await asyncio.to_thread(
        subprocess.Popen, command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )

    # The exit is timed by a thread blocked on it, not by the load loop's slices.
    def wait() -> float:
        proc.wait()
        return time.perf_counter()

    waiter = asyncio.get_running_loop().run_in_executor(None, wait)
    load = Phase(concurrency=CLIENTS)
    peak = 0
    while not waiter.done():
        phase = await run_phase(port, CLIENTS, 0.5, build, rate=rate)
        load.latencies += phase.latencies
        load.seconds += phase.seconds
        load.transport_errors += phase.transport_errors
        for status, n in phase.statuses.items():
            load.statuses[status] = load.statuses.get(status, 0) + n
        peak = max(peak, peak_rss_kb(proc.pid) or 0)
    wall = await waiter - started
    out = proc.stdout.read() if proc.stdout else b""
    report = json.loads(out) if proc.returncode == 0 else {"error": out.decode()[-2000:]}
    return {
        "exit_code": proc.returncode,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak / 1024, 1),
        "report": report,
    }, load


async def main(
    rows: int, days: int, rate: float, duration: float, pin_archive: bool, parallel_days: int
) -> dict[str, Any]:
    load_at_start = os.getloadavg()[0]
    now = datetime.now(UTC)
    first_day = datetime.combine((now - timedelta(days=100 + days)).date(), datetime.min.time())
    first_day = first_day.replace(tzinfo=UTC)
    boundary = first_day + timedelta(days=days)
    check_day = first_day + timedelta(days=days // 2)
    next_day = check_day + timedelta(days=1)
    day_query = (
        f"SELECT * FROM task_events WHERE ts >= '{check_day.isoformat()}'"
        f" AND ts < '{next_day.isoformat()}' ORDER BY id"
    )
    with throwaway_postgres() as (url, tmp):
        await prepare_database(url, None, seed_orders)
        seed_s = await seed_history(url, rows, days, first_day)
        copy_s, copy_bytes, _ = await copy_out(
            url, f"SELECT * FROM task_events WHERE ts < '{boundary.isoformat()}'"
        )
        day_before = await copy_out(url, day_query)
        day_rows = await scalar(
            url,
            f"SELECT count(*) FROM ({day_query}) AS d",
        )
        order_ids = [
            int(r)
            for r in (
                await scalar(url, "SELECT string_agg(id::text, ',') FROM instant_orders")
            ).split(",")
        ]
        build = reads(f"Authorization: Bearer {token('admin', 'bench')}\r\n", order_ids)
        archive = tmp / "archive"
        env = api_env(
            url,
            tmp,
            archive_url=f"file://{archive}",
            archive_batch_rows=str(BATCH_ROWS),
            archive_parallel_days=str(parallel_days),
            siem_sink=f"file://{tmp}/siem.jsonl",
        )
        with pinned_api(url, tmp) as port:
            await run_phase(port, CLIENTS, 1.0, build, rate=rate)  # warm-up
            baseline = await run_phase(port, CLIENTS, duration, build, rate=rate)
            archived, during = await archive_under_load(env, port, build, rate, pin_archive)
            after = await run_phase(port, CLIENTS, duration, build, rate=rate)
        left = await scalar(
            url, f"SELECT count(*) FROM task_events WHERE ts < '{boundary.isoformat()}'"
        )
        in_manifests = await scalar(url, "SELECT coalesce(sum(row_count), 0) FROM archive_manifest")
        archive_bytes = sum(p.stat().st_size for p in archive.rglob("*.jsonl.gz"))
        day = check_day.date().isoformat()
        restore_cmd = b24mw(
            "archive", "restore", "--table", "task_events", "--from", day, "--to", day
        )
        started = time.perf_counter()
        restored = await asyncio.to_thread(
            subprocess.run, restore_cmd, env=env, capture_output=True, check=False
        )
        restore_s = time.perf_counter() - started
        day_after = await copy_out(url, day_query)
    archive_s = archived["wall_s"]
    base = baseline.summary()
    load = during.summary()
    restore_report = json.loads(restored.stdout) if restored.returncode == 0 else None
    return {
        "benchmark": "archive",
        "engine": "postgresql",
        "pinned": can_pin(SERVER_CORE),
        "archive_pinned_to_core": CLIENT_CORE if pin_archive and can_pin(CLIENT_CORE) else None,
        # 1-minute load averages; this benchmark itself adds about 2.
        "load_average": {"start": round(load_at_start, 2), "end": round(os.getloadavg()[0], 2)},
        "rows": rows,
        "days": days,
        "batch_rows": BATCH_ROWS,
        "parallel_days": parallel_days,
        "seed_copy_s": round(seed_s, 1),
        "baseline_copy": {
            "seconds": round(copy_s, 2),
            "rows_per_s": round(rows / copy_s),
            "mb": round(copy_bytes / 2**20, 1),
        },
        "archive": {
            **archived,
            "rows_per_s_end_to_end": round(rows / archive_s) if archive_s else None,
            "archive_mb": round(archive_bytes / 2**20, 1),
            "vs_copy_x": round(archive_s / copy_s, 1),
            "rows_left_before_boundary": left,
            "rows_in_manifests": in_manifests,
        },
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "rows_per_s_target_met": bool(archive_s and rows / archive_s >= TARGET_ROWS_PER_S),
        "api_baseline": base,
        "api_during_archive": load,
        "api_after_archive": after.summary(),
        "api_p95_x": round(load["p95_ms"] / base["p95_ms"], 2)
        if load["p95_ms"] and base["p95_ms"]
        else None,
        "api_p95_at_most_doubled": bool(
            load["p95_ms"] and base["p95_ms"] and load["p95_ms"] <= 2 * base["p95_ms"]
        ),
        "restore_one_day": {
            "day": day,
            "rows": day_rows,
            "seconds": round(restore_s, 2),
            "report": restore_report,
            "copy_identical_row_for_row": day_before[2] == day_after[2]
            and day_before[1] == day_after[1],
        },
    }


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--rate", type=float, default=40.0, help="read requests/s in total")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of each API phase")
    parser.add_argument(
        "--pin-archive",
        action="store_true",
        help="pin the archive process to core 1 with PostgreSQL (default: the OS schedules it)",
    )
    parser.add_argument("--parallel-days", type=int, default=1, help="B24MW_ARCHIVE_PARALLEL_DAYS")
    args = parser.parse_args()
    pin_self()
    result = asyncio.run(
        main(args.rows, args.days, args.rate, args.duration, args.pin_archive, args.parallel_days)
    )
    print_json(result)
    sys.exit(0)
