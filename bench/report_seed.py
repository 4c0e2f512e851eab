"""Data for ``bench/report.py``: a year of orders of both kinds and their
history, loaded with ``COPY``; a day of changes; the raw ``COPY ... TO STDOUT``
baselines.  Talks to PostgreSQL with asyncpg directly (COPY is a driver call).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_SECONDS = 365 * 86400
COPY_ROWS = 20_000  # rows per chunk handed to COPY
# Status by order number modulo 20: mostly closed, some open or failed.
STATUS_CYCLE = ["DONE"] * 14 + ["REFUSED"] * 2 + ["READY", "ON_ROUTE", "DELIVERED", "FAILED"]
STEPS = ("NEW", "READY", "PICKED_UP", "ON_ROUTE")  # the history before the last status
INSTANT_COLUMNS = [
    "id", "courier_id", "title", "customer_name", "status", "total_amount", "currency_code",
    "notes", "origin", "version", "created_at", "updated_at",
]  # fmt: skip
DELIVERY_COLUMNS = [
    "id", "external_id_1c", "courier_id", "title", "customer_name", "address", "cod_amount",
    "delivery_price", "total_amount", "currency_code", "status", "notes", "version",
    "created_at", "updated_at",
]  # fmt: skip
EVENT_COLUMNS = ["instant_order_id", "order_id", "ts", "type", "status", "payload_json"]


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _ts(value: datetime) -> str:
    return value.isoformat()


class Year:
    """``orders`` orders (half of each kind) created evenly over 2025 by
    ``couriers`` couriers, each with ``events`` history events."""

    def __init__(self, orders: int, couriers: list[str], events: int) -> None:
        self.per_kind = orders // 2
        self.couriers = couriers
        self.events = events
        self.step = YEAR_SECONDS / self.per_kind

    def order(self, n: int) -> tuple[datetime, datetime, str, str, list[tuple[datetime, str]]]:
        """(created_at, updated_at, status, courier, history) of order number ``n``."""
        created = YEAR_START + timedelta(seconds=n * self.step)
        status = STATUS_CYCLE[n % len(STATUS_CYCLE)]
        courier = self.couriers[n % len(self.couriers)]
        minutes = [*[0, 7, 15, 24][: self.events - 1], 30 + n % 90]
        names = [*STEPS[: self.events - 1], status]
        history = [(created + timedelta(minutes=m), s) for m, s in zip(minutes, names, strict=True)]
        return created, history[-1][0], status, courier, history

    def lines(self, kind: str) -> Iterator[str]:
        """COPY text rows of one order table, then of its events (two passes)."""
        for n in range(1, self.per_kind + 1):
            created, updated, status, courier, _ = self.order(n)
            name = f"Ivanov, Ivan {n % 977}" if n % 10 == 0 else f"Customer {n % 977}"
            amount = f"{(n * 37) % 9000 + 100}.{n % 100:02d}"
            if kind == "instant":
                yield (
                    f"{n}\t{courier}\tOrder {n}\t{name}\t{status}\t{amount}\tRUB\t\\N\tapi\t"
                    f"{len(STEPS)}\t{_ts(created)}\t{_ts(updated)}\n"
                )
            else:
                yield (
                    f"{n}\t1C-{n}\t{courier}\tDelivery {n}\t{name}\tMoscow, Tverskaya {n % 99}\t"
                    f"{amount}\t0\t{amount}\tRUB\t{status}\t\\N\t{len(STEPS)}\t"
                    f"{_ts(created)}\t{_ts(updated)}\n"
                )

    def event_lines(self, kind: str) -> Iterator[str]:
        for n in range(1, self.per_kind + 1):
            _, _, _, _, history = self.order(n)
            link = f"{n}\t\\N" if kind == "instant" else f"\\N\t{n}"
            for ts, status in history:
                yield f"{link}\t{_ts(ts)}\tstatus\t{status}\t{{}}\n"


async def _chunks(lines: Iterator[str]) -> AsyncIterator[bytes]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == COPY_ROWS:
            yield "".join(batch).encode()
            batch = []
    if batch:
        yield "".join(batch).encode()


async def vacuum(conn: Any) -> float:
    """VACUUM ANALYZE after a load, and VACUUM again: a transaction still open
    during the first pass (autovacuum's own) can keep it from marking the
    newest pages all-visible, and index-only lookups would visit the table
    (as the day after would).  Seconds taken."""
    started = time.perf_counter()
    await conn.execute("VACUUM ANALYZE")
    await conn.execute("VACUUM")
    return round(time.perf_counter() - started, 1)


async def load_year(url: str, year: Year) -> dict[str, float]:
    """COPY the year in; seconds per table."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(url))
    timings: dict[str, float] = {}
    try:
        for kind, table, columns in (
            ("instant", "instant_orders", INSTANT_COLUMNS),
            ("delivery", "orders", DELIVERY_COLUMNS),
        ):
            started = time.perf_counter()
            await conn.copy_to_table(table, source=_chunks(year.lines(kind)), columns=columns)
            await conn.execute(f"SELECT setval('{table}_id_seq', {year.per_kind})")
            timings[table] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        for kind in ("instant", "delivery"):
            await conn.copy_to_table(
                "task_events", source=_chunks(year.event_lines(kind)), columns=EVENT_COLUMNS
            )
        timings["task_events"] = round(time.perf_counter() - started, 1)
        timings["vacuum_analyze"] = await vacuum(conn)
    finally:
        await conn.close()
    return timings


async def change_day(url: str, year: Year, count: int, per_transaction: int = 200) -> float:
    """``count`` orders (alternating kinds) change status, ``per_transaction``
    to a transaction, as a day of work would; seconds taken."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(url))
    started = time.perf_counter()
    try:
        stride = max(1, year.per_kind // max(1, count // 2))
        ids = [1 + (i * stride) % year.per_kind for i in range(count // 2)]
        for table in ("instant_orders", "orders"):
            for start in range(0, len(ids), per_transaction):
                await conn.execute(
                    f"UPDATE {table} SET version = version + 1, updated_at = now()"
                    " WHERE id = ANY($1::bigint[])",
                    ids[start : start + per_transaction],
                )
    finally:
        await conn.close()
    return time.perf_counter() - started


class _Counter:
    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0

    async def __call__(self, data: bytes) -> None:
        self.bytes += len(data)
        self.lines += data.count(b"\n")


async def copy_out(url: str, query: str, *args: Any) -> dict[str, Any]:
    """``COPY (query) TO STDOUT`` as CSV into a counter: rows/s of PostgreSQL
    alone, without the API."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        counter = _Counter()
        started = time.perf_counter()
        await conn.copy_from_query(query, *args, output=counter, format="csv")
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return {
        "rows": counter.lines,
        "seconds": round(seconds, 2),
        "rows_per_s": round(counter.lines / seconds),
        "mb": round(counter.bytes / 1e6, 1),
    }


# The report's rows as the API selects them (reports/repository.py), for COPY.
REPORT_SQL = """
SELECT * FROM (
  SELECT o.id, 'instant' AS kind, o.courier_id, c.display_name, o.status, o.title,
         o.customer_name, o.total_amount, o.currency_code, o.created_at, o.updated_at,
         (SELECT min(ts) FROM task_events e WHERE e.instant_order_id = o.id) AS first_at,
         CASE WHEN o.status IN ('DONE', 'REFUSED') THEN
           (SELECT max(ts) FROM task_events e WHERE e.instant_order_id = o.id
              AND e.type = 'status' AND e.status IN ('DONE', 'REFUSED')) END AS final_at
  FROM instant_orders o LEFT JOIN couriers c ON c.id = o.courier_id
  WHERE o.created_at >= '2025-01-01Z' AND o.created_at < '2026-01-01Z'
  UNION ALL
  SELECT o.id, 'delivery', o.courier_id, c.display_name, o.status, o.title,
         o.customer_name, o.total_amount, o.currency_code, o.created_at, o.updated_at,
         (SELECT min(ts) FROM task_events e WHERE e.order_id = o.id),
         CASE WHEN o.status IN ('DONE', 'REFUSED') THEN
           (SELECT max(ts) FROM task_events e WHERE e.order_id = o.id
              AND e.type = 'status' AND e.status IN ('DONE', 'REFUSED')) END
  FROM orders o LEFT JOIN couriers c ON c.id = o.courier_id
  WHERE o.created_at >= '2025-01-01Z' AND o.created_at < '2026-01-01Z'
) AS r ORDER BY created_at, kind, id
"""

# The KMP4 feed's rows after a change sequence, for COPY.
FEED_SQL = """
SELECT * FROM (
  SELECT 'instant' AS kind, id, title, customer_name, status, total_amount, currency_code,
         courier_id, notes, created_at, updated_at, version, NULL AS external_id_1c, change_seq
  FROM instant_orders WHERE change_seq > {after}
  UNION ALL
  SELECT 'delivery', id, title, customer_name, status, total_amount, currency_code,
         courier_id, notes, created_at, updated_at, version, external_id_1c, change_seq
  FROM orders WHERE change_seq > {after}
) AS f ORDER BY change_seq, kind, id
"""
