"""Reports on PostgreSQL: 1,000,000 orders and 5,000,000 history events.

    python bench/report.py [--orders 1000000] [--day-changes 50000] [--json-requests 200]

Starts a throw-away PostgreSQL (as the tests do), migrates it and loads a year
of orders (half Walking Warehouse orders, half 1C deliveries, 100 couriers)
and five status events per order with ``COPY``, then ``VACUUM ANALYZE``.
Runs one ``b24mw serve`` process pinned to core 0 (PostgreSQL and this load
generator share core 1) and samples its RSS every 20 ms for the whole run.
The three figures of the bar, each beside a baseline measured in the same run:

- ``json_month_courier``: ``GET /ww/report/deliveries`` for one courier and
  one month (about 830 rows), one client, sequential requests over couriers
  and months: p50/p95 (bar: p95 ≤ 250 ms); baseline ``GET /health`` the same
  way;
- ``csv_year``: ``format=csv`` for the whole year (1,000,000 rows), streamed
  and counted by this process: rows/s and the API's peak RSS while it streams
  (bar: ≥ 50,000 rows/s, < 200 MB); baseline ``COPY (the same query) TO
  STDOUT`` straight from PostgreSQL;
- ``kmp4_day``: after a day of changes (``--day-changes`` orders updated, 200
  to a transaction), ``GET /ww/export/kmp4`` pages of the default size (5,000)
  from the cursor 1C held the evening before until ``has_more`` is false:
  rows/s (bar: ≥ 20,000 rows/s); baseline ``COPY`` of the same rows.  Then the
  same day again in pages of 1,000.  The first export of everything (pages of
  10,000) is measured too: it gives that cursor.

Prints one JSON document.
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from common import (  # bench/ is on sys.path when run as a script
    SERVER_CORE,
    api_env,
    arg_parser,
    b24mw,
    can_pin,
    free_port,
    latency_stats,
    pin_self,
    pinned,
    prepare_database,
    print_json,
    running,
    throwaway_postgres,
    token,
)
from report_seed import FEED_SQL, REPORT_SQL, Year, change_day, copy_out, load_year

COURIERS = [f"b{n}" for n in range(1, 101)]
EVENTS_PER_ORDER = 5
TARGETS = {
    "json_p95_ms": 250.0,
    "csv_rows_per_s": 50_000,
    "csv_rss_mb": 200,
    "kmp4_rows_per_s": 20_000,
}


class RssSampler:
    """The peak resident memory of one process, sampled from ``/proc``, with
    marks so each phase gets its own peak."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.path = Path(f"/proc/{pid}/status")
        self.every = every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read_kb(self) -> int | None:
        try:
            for line in self.path.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            kb = self._read_kb()
            if kb is not None:
                self.samples.append((time.monotonic(), kb))
            time.sleep(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_mb(self, since: float, until: float | None = None) -> dict[str, Any]:
        until = until or time.monotonic()
        window = [kb for t, kb in self.samples if since <= t <= until]
        if not window:
            return {"samples": 0, "peak_mb": None, "start_mb": None}
        return {
            "samples": len(window),
            "start_mb": round(window[0] / 1024, 1),
            "peak_mb": round(max(window) / 1024, 1),
        }


@contextmanager
def api_process(url: str, tmp: Path) -> Any:
    port = free_port()
    command = pinned(b24mw("serve", "--port", str(port)), SERVER_CORE)
    with running(
        command,
        api_env(url, tmp),
        health=f"http://127.0.0.1:{port}/health",
        log=tmp / "api.err",
        stdout_to_log=False,
    ) as proc:
        yield port, proc.pid


async def sequential(
    client: httpx.AsyncClient, requests: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    latencies, statuses, rows = [], {}, 0
    for path, params in requests:
        started = time.perf_counter()
        response = await client.get(path, params=params)
        latencies.append(time.perf_counter() - started)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if path.endswith("deliveries") and response.status_code == 200:
            rows += len(response.json()["items"])
    return {
        "requests": len(requests),
        **latency_stats(latencies),
        "statuses": {str(k): v for k, v in statuses.items()},
        "rows_per_request": round(rows / len(requests), 1) if rows else None,
    }


async def json_phase(client: httpx.AsyncClient, count: int) -> dict[str, Any]:
    requests = []
    for n in range(count):
        month = 1 + n % 12
        end = f"2025-{month + 1:02d}-01" if month < 12 else "2026-01-01"
        params = {
            "courier_id": COURIERS[(n * 7) % len(COURIERS)],
            "created_from": f"2025-{month:02d}-01",
            "created_to": f"{end}T00:00:00Z",
        }
        requests.append(("/api/v1/ww/report/deliveries", params))
    await sequential(client, requests[:10])  # warm-up: pool, prepared statements
    return await sequential(client, requests)


async def csv_phase(client: httpx.AsyncClient, rss: RssSampler) -> dict[str, Any]:
    params = {"format": "csv", "created_from": "2025-01-01", "created_to": "2025-12-31"}
    mark = time.monotonic()
    started = time.perf_counter()
    lines = size = 0
    first_byte = None
    async with client.stream("GET", "/api/v1/ww/report/deliveries", params=params) as response:
        async for chunk in response.aiter_raw():
            if first_byte is None:
                first_byte = time.perf_counter() - started
            size += len(chunk)
            lines += chunk.count(b"\n")  # a CRLF may straddle two chunks
        status = response.status_code
    seconds = time.perf_counter() - started
    rows = lines - 2  # the header and TOTALS
    return {
        "status": status,
        "rows": rows,
        "seconds": round(seconds, 2),
        "first_byte_s": round(first_byte or 0, 2),
        "rows_per_s": round(rows / seconds),
        "mb": round(size / 1e6, 1),
        "api_rss": rss.peak_mb(mark),
    }


async def kmp4_pages(
    client: httpx.AsyncClient, cursor: str | None, limit: int | None
) -> dict[str, Any]:
    """Pages from ``cursor`` until ``has_more`` is false (``limit`` None: the
    API's default page size)."""
    rows = pages = 0
    started = time.perf_counter()
    while True:
        params: dict[str, Any] = {} if limit is None else {"limit": limit}
        if cursor is not None:
            params["after"] = cursor
        response = await client.get("/api/v1/ww/export/kmp4", params=params)
        response.raise_for_status()
        body = response.json()
        rows += len(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if not body["has_more"]:
            break
    seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "pages": pages,
        "page_size": limit or "default (5000)",
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds) if seconds else None,
        "cursor": cursor,
    }


async def max_change_seq(url: str) -> int:
    import asyncpg

    from report_seed import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        value = await conn.fetchval(
            "SELECT greatest((SELECT max(change_seq) FROM instant_orders),"
            " (SELECT max(change_seq) FROM orders))"
        )
    finally:
        await conn.close()
    return int(value)


async def main(orders: int, day_changes: int, json_requests: int) -> dict[str, Any]:
    year = Year(orders, COURIERS, EVENTS_PER_ORDER)
    with throwaway_postgres() as (url, tmp):
        started = time.perf_counter()
        await prepare_database(url, {c: 5000 + n for n, c in enumerate(COURIERS)})
        load = await load_year(url, year)
        load["total_s"] = round(time.perf_counter() - started, 1)
        with api_process(url, tmp) as (port, pid), RssSampler(pid) as rss:
            headers = {"Authorization": f"Bearer {token('admin', 'bench')}"}
            export_headers = {"Authorization": f"Bearer {token('1c', 'erp')}"}
            base = f"http://127.0.0.1:{port}"
            timeout = httpx.Timeout(300.0)
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout) as client:
                idle = rss.peak_mb(time.monotonic() - 1)
                health = await sequential(client, [("/health", {})] * json_requests)
                json_mark = time.monotonic()
                report = await json_phase(client, json_requests)
                report["api_rss"] = rss.peak_mb(json_mark)
                copy_year = await copy_out(url, REPORT_SQL)
                csv_year = await csv_phase(client, rss)
            async with httpx.AsyncClient(
                base_url=base, headers=export_headers, timeout=timeout
            ) as export:
                mark = time.monotonic()
                everything = await kmp4_pages(export, None, 10_000)
                everything["api_rss"] = rss.peak_mb(mark)
                evening = await max_change_seq(url)
                day_s = await change_day(url, year, day_changes)
                copy_day = await copy_out(url, FEED_SQL.format(after=evening))
                mark = time.monotonic()
                evening_cursor = everything.pop("cursor")
                day = await kmp4_pages(export, evening_cursor, None)
                day["api_rss"] = rss.peak_mb(mark)
                day.pop("cursor")
                day["changes_made_s"] = round(day_s, 1)
                # The same day again in pages of 1,000 (the cursor is reusable).
                day_1000 = await kmp4_pages(export, evening_cursor, 1000)
                day_1000.pop("cursor")
            whole_run = rss.peak_mb(0)
    return {
        "benchmark": "report",
        "engine": "postgresql",
        "api_processes": 1,
        "pinned": can_pin(SERVER_CORE),
        "data": {
            "orders": 2 * year.per_kind,
            "task_events": 2 * year.per_kind * EVENTS_PER_ORDER,
            "couriers": len(COURIERS),
            "load_s": load,
        },
        "api_rss_idle": idle,
        "api_rss_whole_run": whole_run,
        "baseline_health_sequential": health,
        "json_month_courier": report,
        "baseline_copy_year": copy_year,
        "csv_year": csv_year,
        "kmp4_everything": everything,
        "baseline_copy_day": copy_day,
        "kmp4_day": day,
        "kmp4_day_pages_of_1000": day_1000,
        "targets": TARGETS,
        "met": {
            "json_p95": bool(report["p95_ms"] and report["p95_ms"] <= TARGETS["json_p95_ms"]),
            "csv_rows_per_s": csv_year["rows_per_s"] >= TARGETS["csv_rows_per_s"],
            "csv_rss": bool(
                csv_year["api_rss"]["peak_mb"]
                and csv_year["api_rss"]["peak_mb"] < TARGETS["csv_rss_mb"]
            ),
            "kmp4_rows_per_s": bool(
                day["rows_per_s"] and day["rows_per_s"] >= TARGETS["kmp4_rows_per_s"]
            ),
        },
    }


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders, both kinds")
    parser.add_argument("--day-changes", type=int, default=50_000, help="orders changed in the day")
    parser.add_argument("--json-requests", type=int, default=200, help="report requests")
    args = parser.parse_args()
    pin_self()
    print_json(asyncio.run(main(args.orders, args.day_changes, args.json_requests)))
